"""The analysis pipeline on real footage: storage, idempotency, bad input, atomic store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from capstone.core.detections import Detections
from capstone.core.video import iter_frames, probe
from capstone.errors import InputError, ModelNotFoundError
from capstone.models.weights import resolve_model
from capstone.runtime.pipeline import analyze
from capstone.stages.params import AnalysisParams
from capstone.store import analyses
from tests.conftest import MODELS, ROOT, VIDEOS, require

PETS = VIDEOS / "pets09-s2l1.avi"
BIKES = VIDEOS / "bikes.mp4"


def _count(url: str, sql: str, **params: object) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(sql), params).scalar_one()
    engine.dispose()
    return int(value)


def _result_counts(url: str, analysis_id: int) -> dict[str, int]:
    return {
        table: _count(url, f"SELECT count(*) FROM {table} WHERE analysis_id = :a", a=analysis_id)
        for table in ("apps_db_event", "apps_db_track")
    }


def test_probe_reads_real_metadata() -> None:
    info = probe(require(PETS))
    assert (info.width, info.height, info.frame_count) == (768, 576, 795)
    assert info.fps == pytest.approx(10.0)
    assert info.codec == "msmpeg4" and len(info.sha256) == 64


def test_decode_samples_by_stride_and_fps_with_timestamps() -> None:
    frames = list(iter_frames(require(BIKES), stride=5, max_frames=6))
    assert [f.index for f in frames] == [0, 5, 10, 15, 20, 25]
    assert frames[1].timestamp == pytest.approx(5 / 25, abs=1e-3)
    assert frames[0].image.shape == (272, 640, 3)
    by_fps = list(iter_frames(BIKES, target_fps=5, max_frames=3))
    assert [f.index for f in by_fps] == [0, 5, 10]


def test_default_detector_resolves_from_models_dir() -> None:
    require(MODELS)
    assert Path(resolve_model("yolo11n")).name == "yolo11n_int8_openvino_model"


def test_missing_model_lists_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("yolo99x")
    message = str(err.value)
    assert "yolo99x" in message and "looked in" in message and str(MODELS) in message


def test_detections_filter_and_index() -> None:
    dets = Detections(
        np.array([[0, 0, 10, 10], [0, 0, 4, 4], [1, 1, 2, 2]]),
        np.array([0.9, 0.3, 0.6]),
        np.array([0, 2, 0]),
        class_names={0: "person", 2: "car"},
    )
    people = dets.filter_classes({0})
    assert len(people) == 2 and people.labels == ["person", "person"]
    assert dets[dets.confidence > 0.5].confidence.tolist() == pytest.approx([0.9, 0.6])
    assert Detections.from_array(dets.as_array()).xyxy.tolist() == dets.xyxy.tolist()
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros(2))


def test_analyze_stores_people_and_tracks_and_rerun_is_idempotent(db_url: str) -> None:
    params = AnalysisParams(max_frames=40)
    first = analyze(require(PETS), video_id="pets", params=params)
    assert first.status == "completed", first.error
    assert first.frames_processed == 40
    counts = _result_counts(db_url, first.analysis_id)
    assert counts["apps_db_event"] > 100 and counts["apps_db_track"] >= 3
    people = _count(
        db_url,
        "SELECT count(*) FROM apps_db_event WHERE video_id='pets' AND class_name='person' "
        "AND track_id IS NOT NULL",
    )
    assert people > 100
    assert first.tracks_per_class.get("person", 0) >= 3

    again = analyze(PETS, video_id="pets", params=params)
    assert again.analysis_id == first.analysis_id
    assert _result_counts(db_url, first.analysis_id) == counts

    other = analyze(PETS, video_id="pets", params=AnalysisParams(max_frames=40, stride=2))
    assert other.analysis_id != first.analysis_id
    assert _result_counts(db_url, first.analysis_id) == counts
    assert _count(db_url, "SELECT count(*) FROM apps_db_videoanalysis WHERE video_id='pets'") == 2
    status = _count(
        db_url,
        "SELECT count(*) FROM apps_db_videoanalysis WHERE video_id='pets' "
        "AND status='completed' AND progress=100",
    )
    assert status == 2


def test_failure_inside_store_leaves_no_rows(db_url: str) -> None:
    result = analyze(
        require(BIKES),
        video_id="bikes",
        params=AnalysisParams(max_frames=40),
        fail_store_after="apps_db_track",
    )
    assert result.status == "failed" and "injected failure" in (result.error or "")
    assert _result_counts(db_url, result.analysis_id) == {"apps_db_event": 0, "apps_db_track": 0}
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, error FROM apps_db_videoanalysis WHERE id = :a"),
            {"a": result.analysis_id},
        ).one()
    engine.dispose()
    assert row.status == "failed" and "injected failure" in row.error


def test_failed_store_keeps_the_previous_complete_result(db_url: str) -> None:
    params = AnalysisParams(max_frames=40)
    good = analyze(require(BIKES), video_id="bikes", params=params)
    before = _result_counts(db_url, good.analysis_id)
    assert before["apps_db_event"] > 0
    bad = analyze(BIKES, video_id="bikes", params=params, fail_store_after="apps_db_event")
    assert bad.status == "failed" and bad.analysis_id == good.analysis_id
    assert _result_counts(db_url, good.analysis_id) == before


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("notes.mp4", b"this is plain text, not a video\n" * 10, "not a readable video"),
        ("empty.mp4", b"", "empty file"),
    ],
)
def test_bad_files_end_failed_with_reason(
    db_url: str, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = analyze(path, video_id="bad")
    assert result.status == "failed" and reason in (result.error or "")
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, error FROM apps_db_videoanalysis WHERE video_id = 'bad'")
        ).one()
        video_status = conn.execute(
            text("SELECT status FROM apps_db_video WHERE video_id = 'bad'")
        ).scalar_one()
        events = conn.execute(text("SELECT count(*) FROM apps_db_event")).scalar_one()
    engine.dispose()
    assert row.status == "failed" and reason in row.error
    assert video_status == "failed" and events == 0


def test_missing_path_fails_cleanly(db_url: str, tmp_path: Path) -> None:
    result = analyze(tmp_path / "nope.mp4")
    assert result.status == "failed" and "no such file" in (result.error or "")


def test_truncated_file_finishes_with_what_decodes(db_url: str) -> None:
    path = require(VIDEOS / "edge-truncated-tree.avi")
    result = analyze(path, video_id="tree")
    assert result.status == "completed", result.error
    assert result.frames_processed == 68 and result.frames_expected == 444
    assert any("68 of 444" in w for w in result.warnings)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT frames_processed, summary FROM apps_db_videoanalysis WHERE video_id='tree'"
            )
        ).one()
        fps, duration = conn.execute(
            text("SELECT fps, duration FROM apps_db_video WHERE video_id = 'tree'")
        ).one()
    engine.dispose()
    assert row.frames_processed == 68 and "68 of 444" in row.summary["warnings"][0]
    # the time it covers: what windows from the end and averages over time are read on
    assert row.summary["analysed_s"] == round(68 / fps, 3) < duration
    from capstone.search.ask import _clock, ask

    length = ask("how long is the video?", "tree")
    assert f"of which the first {_clock(68 / fps)} was analysed" in length.text
    assert length.items[0].t_end == duration


def test_decoder_crashing_file_does_not_kill_the_caller(db_url: str) -> None:
    result = analyze(require(VIDEOS / "edge-48x48-rawvideo.avi"), video_id="raw48")
    assert result.status in ("completed", "failed")
    if result.status == "failed":
        assert result.error
    else:
        assert result.frames_processed > 0


def test_live_lease_blocks_a_second_runner(db_url: str) -> None:
    params = AnalysisParams(max_frames=5)
    info = probe(require(BIKES))
    analyses.claim_analysis("busy", params, "worker-a", info=info)
    with pytest.raises(analyses.AnalysisBusyError):
        analyses.claim_analysis("busy", params, "worker-b", info=info)
    # an expired lease (killed worker) can be taken over
    analyses.claim_analysis("busy2", params, "worker-a", info=info, lease_seconds=-1)
    analyses.claim_analysis("busy2", params, "worker-b", info=info)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "capstone", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=300,
    )


def test_cli_analyze_prints_summary_and_rejects_bad_input(db_url: str, tmp_path: Path) -> None:
    ok = _cli("analyze", str(require(BIKES)), "--video-id", "cli-bikes", "--max-frames", "10")
    assert ok.returncode == 0, ok.stderr
    assert "cli-bikes" in ok.stdout and "frames" in ok.stdout and "10 of 10" in ok.stdout

    listed = _cli("videos", "--json")
    assert listed.returncode == 0, listed.stderr
    videos = json.loads(listed.stdout)
    assert [v["video_id"] for v in videos["items"]] == ["cli-bikes"]
    assert videos["items"][0]["status"] == "completed"
    missing = _cli("events", "nope")
    assert missing.returncode != 0 and "unknown video" in missing.stderr

    bad = tmp_path / "text.mp4"
    bad.write_text("hello")
    failed = _cli("analyze", str(bad))
    assert failed.returncode != 0
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a readable video" in lines[0], failed.stderr

    wrong = _cli("analyze", str(BIKES), "--tracker", "nosuch")
    assert wrong.returncode != 0 and "tracker" in wrong.stderr.strip().splitlines()[-1]


def test_input_error_is_a_capstone_error() -> None:
    with pytest.raises(InputError):
        probe(ROOT / "README.md")


def test_still_image_is_not_a_video(tmp_path: Path) -> None:
    import cv2

    path = tmp_path / "frame.mp4"
    ok, buf = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))
    assert ok
    path.write_bytes(buf.tobytes())
    with pytest.raises(InputError, match="still image"):
        probe(path)


def test_cli_line_option_counts_crossings(db_url: str) -> None:
    result = _cli(
        "analyze",
        str(require(VIDEOS / "highway-cctv.avi")),
        "--video-id",
        "hw",
        "--stages",
        "detect,track,events",
        "--line",
        "A:0,100,320,100",
        "--stride",
        "2",
        "--max-frames",
        "60",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["events_per_type"].get("line_cross", 0) >= 1
    bad = _cli("analyze", str(VIDEOS / "highway-cctv.avi"), "--line", "A:1,2,3")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
