"""Offline identity repair: synthetic fragments, the pipeline stage, and MOT ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from capstone.identity import FeatureRows, Observation, RepairConfig, repair_identities
from capstone.params import AnalysisParams
from capstone.pipeline import analyze
from tests.conftest import MOT, VIDEOS, require


def _walk(
    track_id: int, frames: range, x0: float, vx: float, y: float = 100.0
) -> list[Observation]:
    return [
        Observation(f, track_id, (x0 + vx * f, y, x0 + vx * f + 20, y + 50), 0.9, "person")
        for f in frames
    ]


def test_fragments_of_one_walker_are_linked_and_gap_interpolated() -> None:
    # one person walking right, occluded for frames 20-25: the tracker gave two ids
    obs = _walk(1, range(0, 20), 10, 2.0) + _walk(2, range(26, 50), 10, 2.0)
    result = repair_identities(obs, fps=25)
    assert result.identity_of[1] == result.identity_of[2]
    filled = sorted(o.frame for o in result.interpolated)
    assert filled == list(range(20, 26))
    box = next(o for o in result.interpolated if o.frame == 23).xyxy
    assert box[0] == pytest.approx(10 + 2.0 * 23, abs=0.5)


def test_a_different_person_far_away_is_not_linked() -> None:
    obs = _walk(1, range(0, 20), 10, 2.0) + _walk(2, range(26, 50), 400, -2.0, y=300)
    result = repair_identities(obs, fps=25)
    assert result.identity_of[1] != result.identity_of[2]
    assert result.links == []


def test_appearance_vetoes_a_motion_plausible_link() -> None:
    obs = _walk(1, range(0, 20), 10, 2.0) + _walk(2, range(26, 50), 10, 2.0)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=512), rng.normal(size=512)
    feats = np.array([a if o.track_id == 1 else b for o in obs])
    result = repair_identities(obs, fps=25, appearance=FeatureRows(obs, feats))
    assert result.identity_of[1] != result.identity_of[2]
    same = np.array([a for _ in obs])
    linked = repair_identities(obs, fps=25, appearance=FeatureRows(obs, same))
    assert linked.identity_of[1] == linked.identity_of[2]


def test_overlapping_fragments_and_other_classes_never_merge() -> None:
    overlapping = _walk(1, range(0, 30), 10, 2.0) + _walk(2, range(25, 50), 60, 2.0)
    assert repair_identities(overlapping, fps=25).links == []
    car = [Observation(o.frame, 2, o.xyxy, 0.9, "car") for o in _walk(2, range(26, 50), 10, 2.0)]
    assert repair_identities(_walk(1, range(0, 20), 10, 2.0) + car, fps=25).links == []
    strict = RepairConfig(max_gap_s=0.1)
    gap = _walk(1, range(0, 20), 10, 2.0) + _walk(2, range(26, 50), 10, 2.0)
    assert repair_identities(gap, fps=25, config=strict).links == []


def test_identity_stage_stores_identity_next_to_raw_track_id(db_url: str) -> None:
    result = analyze(
        require(VIDEOS / "pets09-s2l1.avi"),
        video_id="pets-identity",
        params=AnalysisParams(stages=("detect", "track", "identity"), max_frames=120),
    )
    assert result.status == "completed", result.error
    engine = create_engine(db_url)
    with engine.connect() as conn:
        tracks = conn.execute(
            text("SELECT track_id, identity_id FROM apps_db_track WHERE analysis_id = :a"),
            {"a": result.analysis_id},
        ).all()
        interpolated = conn.execute(
            text(
                "SELECT count(*) FROM apps_db_event WHERE analysis_id = :a "
                "AND (attributes->>'interpolated')::boolean"
            ),
            {"a": result.analysis_id},
        ).scalar_one()
    engine.dispose()
    assert tracks and all(identity is not None for _, identity in tracks)
    identities = {identity for _, identity in tracks}
    assert identities <= {track for track, _ in tracks}
    assert len(identities) <= len(tracks)
    assert interpolated >= 0
    assert "identity" in result.timings


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sequence", "video"),
    [
        ("PETS09-S2L1", VIDEOS / "pets09-s2l1.avi"),
        ("TUD-Campus", MOT / "TUD-Campus" / "TUD-Campus.mp4"),
    ],
)
def test_repair_beats_stock_trackers_on_mot_ground_truth(sequence: str, video: Path) -> None:
    """Our detector at stride 1; stock ByteTrack and BoT-SORT against their repaired tracks."""
    from capstone import evaluate
    from capstone.identity import repair_mot_rows

    seq = evaluate.load_sequence(require(MOT / sequence))
    detections, numbers, _ = evaluate.detect_video(require(video), AnalysisParams(stride=1))
    rows: dict[str, list[evaluate.MotRow]] = {}
    for kind in ("bytetrack", "botsort"):
        images = evaluate.video_images(video, numbers) if kind == "botsort" else None
        rows[kind] = evaluate.track_detections(
            detections, kind, seq.frame_rate, images, frame_numbers=numbers
        )
        frames = zip(numbers, evaluate.video_images(video, numbers), strict=False)
        rows[f"{kind}+repair"], _ = repair_mot_rows(rows[kind], seq.frame_rate, frames)
    scores = evaluate.evaluate_many(seq.root, rows)
    print(
        sequence,
        {k: {m: v[m] for m in ("MOTA", "IDF1", "HOTA", "IDSW")} for k, v in scores.items()},
    )
    best_stock_idf1 = max(scores[k]["IDF1"] for k in ("bytetrack", "botsort"))
    best_repaired_idf1 = max(scores[k]["IDF1"] for k in ("bytetrack+repair", "botsort+repair"))
    assert best_repaired_idf1 >= best_stock_idf1 + 0.03
    for kind in ("bytetrack", "botsort"):
        assert scores[f"{kind}+repair"]["IDSW"] < scores[kind]["IDSW"]
        assert scores[f"{kind}+repair"]["MOTA"] >= scores[kind]["MOTA"] - 0.005


@pytest.mark.slow
def test_find_this_person_in_other_videos(db_url: str) -> None:
    """Cross-video identity search: a PETS09 person's re-id embedding ranks people of another
    recording of the same scene above the people of another scene."""
    from capstone.search import SearchFilters, SearchQuery, TrackRef, search

    stages = ("detect", "track", "embed")
    pets = require(VIDEOS / "pets09-s2l1.avi")
    tud = require(MOT / "TUD-Campus" / "TUD-Campus.mp4")
    for video_id, params in (
        ("pets-a", AnalysisParams(stages=stages, max_frames=60, classes=("person",))),
        ("pets-b", AnalysisParams(stages=stages, max_frames=60, stride=2, classes=("person",))),
        ("tud", AnalysisParams(stages=stages, classes=("person",))),
    ):
        source = pets if video_id.startswith("pets") else tud
        assert analyze(source, video_id=video_id, params=params).status == "completed"
    engine = create_engine(db_url)
    with engine.connect() as conn:
        longest = conn.execute(
            text(
                "SELECT track_id FROM apps_db_track WHERE video_id = 'pets-a' "
                "AND reid_embedding IS NOT NULL ORDER BY length DESC LIMIT 1"
            )
        ).scalar_one()
    engine.dispose()
    hits = search(
        SearchQuery(
            track=TrackRef(video_id="pets-a", track_id=longest),
            target="tracks",
            space="reid",
            k=5,
            filters=SearchFilters(video_ids=["pets-b", "tud"]),
        )
    )
    assert hits, "no tracks found in the other videos"
    assert hits[0].video_id == "pets-b"
    assert sum(h.video_id == "pets-b" for h in hits) >= 3
