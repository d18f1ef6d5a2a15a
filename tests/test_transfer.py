"""Export (MOT, COCO, CSV, Parquet; CLI and HTTP download) and import of MOTChallenge
results, on real data: TUD-Campus's public detections tracked by our tracker, and a short
analysis of a real clip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from capstone.cli import app
from capstone.eval.mot import evaluate_mot, track_detections
from capstone.io.mot import iter_mot_file, load_mot_detections, load_sequence, write_mot
from capstone.runtime.pipeline import analyze
from capstone.stages.params import AnalysisParams
from capstone.store import transfer
from tests.conftest import MOT, VIDEOS, require, start_api_server

TUD = MOT / "TUD-Campus"
PETS = VIDEOS / "pets09-s2l1.avi"


def _count(url: str, sql: str, **params: object) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(sql), params).scalar_one()
    engine.dispose()
    return int(value)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _tracked_tud(tmp_path: Path) -> Path:
    """TUD-Campus's public detections tracked by ByteTrack: an 'external tracker's' output."""
    seq = load_sequence(require(TUD))
    frames = load_mot_detections(seq.det_path, num_frames=seq.length)  # type: ignore[arg-type]
    rows = track_detections(frames, "bytetrack", seq.frame_rate)
    assert rows
    return write_mot(rows, tmp_path / "bytetrack.txt")


def test_mot_round_trip_scores_identically(db_url: str, tmp_path: Path) -> None:
    original = _tracked_tud(tmp_path)
    _cli("import", str(original), "--video-id", "tud", "--fps", "25")
    out1 = tmp_path / "one"
    _cli("export", "tud", "--format", "mot", "--out", str(out1))
    exported = out1 / "tud.mot.txt"
    assert exported.read_text() == original.read_text()  # the same file, byte for byte
    # export -> import (as another video) -> export gives the same file again
    _cli("import", str(exported), "--video-id", "tud-again", "--fps", "25")
    out2 = tmp_path / "two"
    _cli("export", "tud-again", "--format", "mot", "--out", str(out2))
    assert (out2 / "tud-again.mot.txt").read_bytes() == exported.read_bytes()
    scores = evaluate_mot(TUD, list(iter_mot_file(original)))
    assert evaluate_mot(TUD, list(iter_mot_file(exported))) == scores
    assert scores["MOTA"] > 0.3  # it is a real tracker's output
    tracks = _count(db_url, "SELECT count(*) FROM apps_db_track t JOIN apps_db_videoanalysis a "
                    "ON a.id = t.analysis_id WHERE a.video_id = 'tud'")  # fmt: skip
    assert tracks == len({r.track_id for r in iter_mot_file(original)})
    # importing the same file again replaces that analysis, it does not add one
    _cli("import", str(original), "--video-id", "tud", "--fps", "25")
    assert _count(db_url, "SELECT count(*) FROM apps_db_videoanalysis WHERE video_id = 'tud'") == 1


def test_detections_import_keeps_id_minus_one(db_url: str, tmp_path: Path) -> None:
    seq = load_sequence(require(TUD))
    source = write_mot(list(iter_mot_file(seq.det_path)), tmp_path / "det.txt")  # type: ignore[arg-type]
    out = _cli("import", str(source), "--video-id", "tud-det", "--fps", "25")
    assert "and 0 tracks" in out
    _cli("export", "tud-det", "--format", "mot", "--out", str(tmp_path))
    exported = (tmp_path / "tud-det.mot.txt").read_text()
    assert exported == source.read_text()
    assert all(line.split(",")[1] == "-1" for line in exported.splitlines())


@pytest.mark.slow
def test_export_formats_of_an_analysis_and_http_download(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = {"name": "A", "points": [[0, 350], [768, 350]]}
    params = AnalysisParams(stages=("track", "events", "depth"), max_frames=20,
                            options={"lines": [line]})  # fmt: skip
    result = analyze(require(PETS), video_id="pets", params=params)
    assert result.status == "completed", result.error
    a = result.analysis_id
    events = _count(db_url, "SELECT count(*) FROM apps_db_event WHERE analysis_id = :a", a=a)
    detections = _count(
        db_url,
        "SELECT count(*) FROM apps_db_event WHERE analysis_id = :a AND event_type = 'detection'",
        a=a,
    )
    tracks = _count(db_url, "SELECT count(*) FROM apps_db_track WHERE analysis_id = :a", a=a)
    depth = _count(db_url, "SELECT count(*) FROM apps_db_depthdata WHERE analysis_id = :a", a=a)
    assert detections and tracks and depth

    written = transfer.export("pets", "csv", tmp_path / "csv")
    with (tmp_path / "csv" / "pets-events.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == events and rows[0].keys() >= {"frame_number", "event_type", "x1"}
    assert {r["event_type"] for r in rows} >= {"detection", "enter"}
    assert [p.name for p in written] == ["pets-events.csv", "pets-tracks.csv", "pets-depth.csv"]

    import pyarrow.parquet as pq

    transfer.export("pets", "parquet", tmp_path / "pq", analysis_id=a)
    parquet_events = pq.read_table(tmp_path / "pq" / "pets-events.parquet").to_pylist()
    assert len(parquet_events) == events
    for got, want in zip(parquet_events, rows, strict=True):  # the CSV's rows, typed
        assert (got["event_type"], got["frame_number"], got["track_id"]) == (
            want["event_type"], int(want["frame_number"]),
            int(want["track_id"]) if want["track_id"] else None)  # fmt: skip
        assert got["description"] == (want["description"] or None)
        assert got["x1"] == pytest.approx(float(want["x1"]))
    assert pq.read_table(tmp_path / "pq" / "pets-tracks.parquet").num_rows == tracks
    assert pq.read_table(tmp_path / "pq" / "pets-depth.parquet").num_rows == depth

    (coco_path,) = transfer.export("pets", "coco", tmp_path / "coco")
    coco = json.loads(coco_path.read_text())
    assert [img["frame_number"] for img in coco["images"]] == list(range(20))  # every sample
    assert len(coco["annotations"]) == detections
    assert {c["name"] for c in coco["categories"]} >= {"person"}
    image_ids = {img["id"] for img in coco["images"]}
    assert all(ann["image_id"] in image_ids and ann["track_id"] for ann in coco["annotations"])

    (mot_path,) = transfer.export("pets", "mot", tmp_path / "mot")
    assert len(mot_path.read_text().splitlines()) == detections
    _cli("import", str(mot_path), "--video-id", "pets-mot", "--fps", "10")
    (again,) = transfer.export("pets-mot", "mot", tmp_path / "again")
    assert again.read_bytes() == mot_path.read_bytes()

    monkeypatch.delenv("REQUIRE_AUTH_FOR_READS", raising=False)
    url, server, thread = start_api_server()
    try:
        got = httpx.get(f"{url}/videos/pets/export", params={"format": "mot"}, timeout=30)
        assert got.status_code == 200, got.text
        assert got.content == mot_path.read_bytes()
        assert 'filename="pets.mot.txt"' in got.headers["content-disposition"]
        query = {"format": "csv", "table": "tracks", "analysis_id": a}
        got = httpx.get(f"{url}/videos/pets/export", params=query, timeout=30)
        assert got.status_code == 200
        assert got.content == (tmp_path / "csv" / "pets-tracks.csv").read_bytes()
        got = httpx.get(f"{url}/videos/pets/export", params={"format": "parquet"}, timeout=30)
        assert got.status_code == 200 and got.content[:4] == b"PAR1"
        got = httpx.get(f"{url}/videos/nope/export", timeout=30)
        assert got.status_code == 404
        got = httpx.get(f"{url}/videos/pets/export", params={"format": "xml"}, timeout=30)
        assert got.status_code == 422
        got = httpx.get(f"{url}/videos/pets/export", params={"path": "/etc/passwd"}, timeout=30)
        assert "root:" not in got.text  # no client path is ever read
    finally:
        server.should_exit = True
        thread.join(timeout=10)
