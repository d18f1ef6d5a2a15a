"""Reuse of stored detections and tracks when only derived (event) options change.

Every comparison is between runs made on this machine in the same test: a reuse run's
rows must equal those of a full run with the same parameters, apart from ids.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from capstone.runtime.pipeline import analyze
from capstone.stages.params import AnalysisParams
from tests.conftest import VIDEOS, require

PETS = VIDEOS / "pets09-s2l1.avi"  # 768x576, 10 fps
L1 = {"name": "L1", "points": [[0, 350], [768, 350]]}
L2 = {"name": "L2", "points": [[400, 0], [400, 576]]}
TABLES = ("apps_db_event", "apps_db_track", "apps_db_depthdata", "apps_db_displaydata",
          "frame_embeddings")  # fmt: skip


def _value(v: Any) -> Any:
    if isinstance(v, bytes | memoryview):
        return "sha:" + hashlib.sha256(bytes(v)).hexdigest()
    if isinstance(v, float):
        return round(v, 9)
    if isinstance(v, list):
        return tuple(_value(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _value(x)) for k, x in v.items()))
    return v


def rows_of(url: str, analysis_id: int) -> dict[str, list[tuple]]:
    """Every result row of an analysis, without ids, as sorted comparable tuples."""
    engine = create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            result = conn.execute(
                text(f"SELECT * FROM {table} WHERE analysis_id = :a"), {"a": analysis_id}
            ).mappings()
            skip = {"id", "analysis_id", "description_tsv"}
            out[table] = sorted(
                (tuple((k, _value(v)) for k, v in sorted(r.items()) if k not in skip)
                 for r in result),
                key=repr,
            )  # fmt: skip
    engine.dispose()
    return out


def _status(url: str, analysis_id: int) -> tuple[str, dict]:
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, summary FROM apps_db_videoanalysis WHERE id = :a"),
            {"a": analysis_id},
        ).one()
    engine.dispose()
    return row.status, row.summary or {}


def line_across_a_stored_path(url: str, analysis_id: int, name: str) -> dict:
    """A vertical line halfway along the stored track whose box bottom centre travels
    furthest left or right: some track crosses it whatever this machine's detector saw."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT track_id, bbox FROM apps_db_event WHERE analysis_id = :a "
                "AND event_type = 'detection' AND track_id IS NOT NULL ORDER BY frame_number"
            ),
            {"a": analysis_id},
        ).all()
    engine.dispose()
    paths: dict[int, list[float]] = {}
    for track_id, (x1, _, x2, _) in rows:
        paths.setdefault(track_id, []).append((x1 + x2) / 2)
    start, end = max(((p[0], p[-1]) for p in paths.values()), key=lambda p: abs(p[1] - p[0]))
    assert abs(end - start) > 20, "no track moved sideways in the first frames"
    x = round((start + end) / 2) + 0.5
    return {"name": name, "points": [[x, 0], [x, 576]]}


def params(lines: list[dict], **kw: Any) -> AnalysisParams:
    return AnalysisParams(max_frames=kw.pop("max_frames", 60), chunk_s=2.0,
                          options={"lines": lines}, **kw)  # fmt: skip


@pytest.mark.slow
def test_moving_a_line_reuses_tracks_and_equals_a_full_run(db_url: str) -> None:
    """A: every default stage with line L1. B: line L2, reusing A's detections and tracks.
    C: line L2 again, --no-reuse. B's rows equal C's; A's result stays as it was."""
    video = require(PETS)
    t = time.perf_counter()
    a = analyze(video, video_id="pets", params=params([L1]))
    first = time.perf_counter() - t
    assert a.status == "completed", a.error
    assert a.reused_from is None and a.frames_run == 60
    rows_a = rows_of(db_url, a.analysis_id)
    crossed = line_across_a_stored_path(db_url, a.analysis_id, "L2")

    t = time.perf_counter()
    b = analyze(video, video_id="pets", params=params([crossed]))
    second = time.perf_counter() - t
    assert b.status == "completed", b.error
    assert b.analysis_id != a.analysis_id
    assert b.reused_from == a.analysis_id and b.frames_run == 0
    assert b.recomputed == ["events", "embed"]
    status, summary = _status(db_url, b.analysis_id)
    assert status == "completed"
    assert summary["reuse"]["from_analysis"] == a.analysis_id
    assert "identity" in summary["reuse"]["reused"]
    rows_b = rows_of(db_url, b.analysis_id)
    lines_b = {dict(r)["attributes"] for r in rows_b["apps_db_event"]
               if dict(r)["event_type"] == "line_cross"}  # fmt: skip
    assert lines_b and all(("line", "L2") in attrs for attrs in lines_b)
    assert rows_of(db_url, a.analysis_id) == rows_a  # the source is untouched
    assert second < first / 2, (first, second)

    c = analyze(video, video_id="pets", params=params([crossed]), reuse=False)
    assert c.status == "completed", c.error
    assert c.analysis_id == b.analysis_id and c.reused_from is None and c.frames_run == 60
    rows_c = rows_of(db_url, c.analysis_id)
    for table in TABLES:
        assert rows_b[table] == rows_c[table], table
    # what A and B share is the upstream part: equal detections and tracks
    detections_a = [r for r in rows_a["apps_db_event"] if dict(r)["event_type"] == "detection"]
    detections_b = [r for r in rows_b["apps_db_event"] if dict(r)["event_type"] == "detection"]
    assert detections_a == detections_b and rows_a["apps_db_track"] == rows_b["apps_db_track"]


@pytest.mark.slow
def test_reuse_is_refused_when_an_upstream_parameter_changed(db_url: str) -> None:
    video = require(PETS)
    light = {"stages": ("track", "events"), "max_frames": 20}
    a = analyze(video, video_id="pets", params=params([L1], **light))
    assert a.status == "completed" and a.reused_from is None
    conf = analyze(video, video_id="pets", params=params([L2], conf=0.4, **light))
    assert conf.status == "completed" and conf.reused_from is None and conf.frames_run == 20
    stride = analyze(video, video_id="pets", params=params([L2], stride=2, **light))
    assert stride.reused_from is None and stride.frames_run == 20
    # only derived options differ: confirm_s, the counts' bucket, a zone
    derived = params([L2], confirm_s=1.0, **light).model_copy(
        update={"options": {"lines": [L2], "count_every_s": 2.0}}
    )
    d = analyze(video, video_id="pets", params=derived)
    assert d.status == "completed", d.error
    assert d.reused_from == a.analysis_id and d.frames_run == 0
    full = analyze(video, video_id="pets", params=derived, reuse=False)
    assert full.analysis_id == d.analysis_id and full.reused_from is None
    assert rows_of(db_url, full.analysis_id) == rows_of(db_url, d.analysis_id) or pytest.fail(
        "reuse with other confirm_s / count_every_s differs from a full run"
    )


@pytest.mark.slow
def test_a_failed_recompute_leaves_the_previous_result_visible(db_url: str) -> None:
    video = require(PETS)
    light = {"stages": ("track", "events"), "max_frames": 20}
    a = analyze(video, video_id="pets", params=params([L1], **light))
    assert a.status == "completed"
    b = analyze(video, video_id="pets", params=params([L2], **light))
    assert b.status == "completed" and b.reused_from == a.analysis_id
    rows_a, rows_b = rows_of(db_url, a.analysis_id), rows_of(db_url, b.analysis_id)

    moved = {"name": "L2", "points": [[300, 0], [300, 576]]}
    failed = analyze(
        video, video_id="pets", params=params([moved], **light), fail_store_after="apps_db_event"
    )
    assert failed.status == "failed" and "injected" in (failed.error or "")
    assert rows_of(db_url, failed.analysis_id) == {t: [] for t in TABLES}
    assert rows_of(db_url, a.analysis_id) == rows_a and rows_of(db_url, b.analysis_id) == rows_b
    assert _status(db_url, b.analysis_id)[0] == "completed"
    again = analyze(video, video_id="pets", params=params([moved], **light))
    assert again.status == "completed" and again.analysis_id == failed.analysis_id
    assert again.reused_from in (a.analysis_id, b.analysis_id)


def test_upstream_hash_splits_derived_from_upstream_options() -> None:
    from capstone.stages.params import derived_option_keys, derived_stage_names

    assert derived_stage_names() == ("events",)
    assert {"lines", "zones", "count_every_s", "anchor"} <= derived_option_keys()
    assert not derived_option_keys() & {"keyframe_every_s", "identity_max_gap_s", "depth_model"}
    base = params([L1])
    assert params([L2]).upstream_hash() == base.upstream_hash()
    assert params([L2]).params_hash() != base.params_hash()
    assert params([L1], confirm_s=2.0).upstream_hash() == base.upstream_hash()
    for changed in (
        params([L1], conf=0.3),
        params([L1], max_frames=61),
        params([L1], tracker="bytetrack"),
        params([L1], detect_every=2),
        base.model_copy(update={"chunk_s": 5.0}),
        base.model_copy(update={"options": {"lines": [L1], "keyframe_every_s": 1.0}}),
        base.model_copy(update={"options": {"lines": [L1], "identity_max_gap_s": 1.0}}),
        params([L1], stages=("track", "events", "display")),
    ):
        assert changed.upstream_hash() != base.upstream_hash(), changed
    # the stored hash of existing results is what it always was
    assert (
        AnalysisParams().params_hash()
        == AnalysisParams.model_validate(AnalysisParams().canonical()).params_hash()
    )


def test_results_stored_without_a_frame_log_are_not_reused(db_url: str) -> None:
    from capstone.store import reuse
    from tests.conftest import store_result

    box = {"frame_number": 0, "timestamp": 0.0, "event_type": "detection",
           "class_name": "person", "confidence": 0.9, "bbox": [1, 2, 30, 40],
           "track_id": 1}  # fmt: skip
    analysis = store_result("old", {"apps_db_event": [box]})
    assert _status(db_url, analysis)[0] == "completed"
    assert reuse.find_source("old", AnalysisParams(max_frames=1).upstream_hash()) is None
