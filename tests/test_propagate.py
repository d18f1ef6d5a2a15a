"""Detecting on some frames only (`detect_every`): the schedule, carried boxes, all stages fed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, text

from capstone.stages.params import AnalysisParams
from capstone.tracking.propagate import DetectionSchedule, _groups
from tests.conftest import VIDEOS, require

BIKES = VIDEOS / "bikes.mp4"


@pytest.mark.parametrize("value", [0, 31, -2, "fast", "", True, 2.5, None, [3]])
def test_bad_detect_every_is_refused_with_the_rule(value: object) -> None:
    with pytest.raises(ValidationError, match="detect_every"):
        AnalysisParams(detect_every=value)


def test_detect_every_accepts_numbers_digits_and_auto() -> None:
    assert AnalysisParams(detect_every="3").detect_every == 3
    assert AnalysisParams(detect_every="auto").detect_every == "auto"
    assert AnalysisParams().params_hash() != AnalysisParams(detect_every=2).params_hash()


def test_the_schedule_is_a_function_of_the_frame_index() -> None:
    """Every Nth *sampled* frame counted from frame 0 plus every chunk's warm-up start:
    a stream that starts mid-video decides the same frames as one from the start."""
    import numpy as np

    from capstone.core.video import Frame

    def frames(start: int, stop: int, step: int):
        image = np.zeros((8, 8, 3), np.uint8)
        return (Frame(i, i / 10, image) for i in range(start, stop) if i % step == 0)

    def detected(start: int, step: int) -> list[int]:
        schedule = DetectionSchedule.of(3)
        groups = _groups(frames(start, 60, step), schedule, step, restarts=[22])
        return [g.frames[0].index for g in groups]

    whole = detected(0, 2)
    assert whole == [0, 6, 12, 18, 22, 24, 30, 36, 42, 48, 54]
    assert detected(22, 2) == [i for i in whole if i >= 22]


@pytest.mark.slow
def test_carried_boxes_are_flagged_and_feed_every_stage(db_url: str) -> None:
    from capstone.runtime.pipeline import analyze

    video = require(BIKES)
    params = AnalysisParams(detect_every=3, chunk_s=4.0)
    result = analyze(video, video_id="carried", params=params)
    assert result.status == "completed", result.error
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT frame_number, confidence, coalesce((attributes->>'propagated')::bool, "
                "false) AS carried, (attributes->>'interpolated') IS NOT NULL AS filled "
                "FROM apps_db_event WHERE analysis_id = :a AND event_type = 'detection'"
            ),
            {"a": result.analysis_id},
        ).all()
        depth_frames = set(
            conn.execute(
                text(
                    "SELECT DISTINCT frame_number FROM apps_db_depthdata WHERE analysis_id = :a "
                    "AND track_id IS NOT NULL"
                ),
                {"a": result.analysis_id},
            ).scalars()
        )
        kinds = set(
            conn.execute(
                text("SELECT DISTINCT kind FROM apps_db_displaydata WHERE analysis_id = :a"),
                {"a": result.analysis_id},
            ).scalars()
        )
        tables = {
            t: conn.execute(
                text(f"SELECT count(*) FROM {t} WHERE analysis_id = :a"),
                {"a": result.analysis_id},
            ).scalar_one()
            for t in ("apps_db_track", "frame_embeddings")
        }
    engine.dispose()
    # chunk warm-ups start at frames 50, 150 (4 s chunks at 25 fps, 2 s overlap): detected too
    scheduled = {f for f in range(250) if f % 3 == 0} | {50, 150}
    carried = {r.frame_number for r in rows if r.carried}
    detected = {r.frame_number for r in rows if not r.carried and not r.filled}
    assert carried and detected
    assert detected <= scheduled and not carried & scheduled
    assert all(r.confidence is None for r in rows if r.carried)
    assert all(r.confidence is not None for r in rows if not r.carried and not r.filled)
    assert depth_frames & carried  # depth saw the carried boxes
    assert {"thumbnail", "trails", "heatmap", "counts"} <= kinds
    assert tables["apps_db_track"] > 0 and tables["frame_embeddings"] > 0
    assert result.events_per_type.get("enter", 0) > 0
    assert result.timings.get("propagate", 0) > 0
