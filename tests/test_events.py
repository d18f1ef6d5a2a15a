"""Semantic events: line math, config parsing, the stage on synthetic tracks, the real pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from capstone.core.detections import Detections
from capstone.core.geometry import Line, load_geometry, parse_line_spec, parse_zone_spec
from capstone.core.records import TrackSummary
from capstone.core.video import VideoInfo
from capstone.errors import ConfigError
from capstone.stages.base import RunContext
from capstone.stages.events import EventsStage, format_time
from capstone.stages.params import AnalysisParams
from tests.conftest import VIDEOS, require

LINE_Y = 100.0


def _ctx(options: dict, size: tuple[int, int] = (320, 240)) -> RunContext:
    info = VideoInfo(Path("synthetic.avi"), 10.0, 10.0, 100, size[0], size[1], "none", 0, "")
    params = AnalysisParams(stages=("detect", "track", "events"), options=options)
    return RunContext("synthetic", info, params, 10.0, {0: "person", 2: "car"})


@dataclass
class Track:
    """A synthetic track: its summary and its boxes (one per frame)."""

    summary: TrackSummary
    boxes: Detections


def _make_track(tid: int, cls: int, name: str, boxes: list, first: int, fps: float, conf: float):
    n = len(boxes)
    summary = TrackSummary(tid, cls, name, first, first + n - 1, first / fps, (first + n - 1) / fps)
    summary.length, summary.confidence_sum = n, conf * n
    frames = np.arange(first, first + n)
    data = {"frame": frames, "timestamp": frames / fps}
    dets = Detections(np.array(boxes, np.float64), [conf] * n, [cls] * n, [tid] * n, data=data)
    return Track(summary, dets)


def _track(tid: int, centres: list[tuple[float, float]], fps: float = 10.0, first: int = 0):
    """A car track whose box bottom centre follows `centres`, one observation per frame."""
    boxes = [(x - 10, y - 20, x + 10, y) for x, y in centres]
    return _make_track(tid, 2, "car", boxes, first, fps, 0.8)


def _events(stage: EventsStage, ctx: RunContext, tracks: list[Track]) -> list[dict]:
    ctx.tracks = {t.summary.track_id: t.summary for t in tracks}
    boxes = Detections.merge([t.boxes for t in tracks]).sorted_by_track()
    return stage.events(ctx, boxes)


def _finish(ctx: RunContext, tracks: list[Track]) -> list[dict]:
    stage = EventsStage(ctx)
    stage.first_frame = min(t.summary.first_frame for t in tracks) - 1  # start mid-video
    stage.last_frame = max(t.summary.last_frame for t in tracks) + 1
    return _events(stage, ctx, tracks)


def test_line_crossing_direction_and_extent() -> None:
    line = Line("A", (0.0, LINE_Y), (320.0, LINE_Y))
    up = line.crossing((50.0, 150.0), (50.0, 50.0))
    down = line.crossing((50.0, 50.0), (50.0, 150.0))
    assert up is not None and down is not None
    assert line.direction_name(up[0]) == "northbound"
    assert line.direction_name(down[0]) == "southbound"
    assert up[1] == pytest.approx(0.5)
    assert line.crossing((400.0, 50.0), (400.0, 150.0)) is None  # beyond the segment's end
    assert line.crossing((10.0, 50.0), (20.0, 60.0)) is None  # same side
    # touching the line and going back is not a crossing; touching and going on is one
    assert line.crossing((10.0, 120.0), (10.0, LINE_Y)) is not None
    assert line.crossing((10.0, LINE_Y), (10.0, 80.0)) is None
    vertical = Line("V", (100.0, 0.0), (100.0, 240.0), ("in", "out"))
    hit = vertical.crossing((50.0, 10.0), (150.0, 10.0))
    assert hit is not None and vertical.direction_name(hit[0]) == "in"  # left of p1->p2
    assert Line("V", (100.0, 0.0), (100.0, 240.0)).direction_name(hit[0]) == "eastbound"


def test_fast_object_jumping_over_the_line_is_counted_once() -> None:
    ctx = _ctx({"lines": [{"name": "A", "points": [[0, LINE_Y], [320, LINE_Y]]}]})
    path = [(160, 20), (160, 40), (160, 230), (160, 235), (160, 236), (160, 237)]
    fast = _track(7, path)  # jumps 40 -> 230
    events = _finish(ctx, [fast])
    crossings = [e for e in events if e["event_type"] == "line_cross"]
    assert len(crossings) == 1
    cross = crossings[0]
    assert cross["attributes"]["direction"] == "southbound"
    assert cross["attributes"]["between_frames"] == [1, 2]
    # interpolated where the path meets the line
    assert cross["attributes"]["point"][1] == pytest.approx(LINE_Y)
    assert 0.1 < cross["timestamp"] < 0.2
    assert cross["description"] == f"car 7 crossed line A southbound at {format_time(0.1316)}"


def test_jitter_on_the_line_is_not_traffic() -> None:
    ctx = _ctx({"lines": [{"name": "A", "points": [[0, LINE_Y], [320, LINE_Y]]}]})
    ys = [60, 80, 101, 99, 102, 98, 120, 140]  # crosses down, jitters, ends below
    events = _finish(ctx, [_track(3, [(100, y) for y in ys])])
    crossings = [e for e in events if e["event_type"] == "line_cross"]
    assert [e["attributes"]["direction"] for e in crossings] == ["southbound"]


def test_dwell_enter_exit_and_descriptions() -> None:
    zone = {"name": "Z", "polygon": [[100, 100], [200, 100], [200, 200], [100, 200]]}
    ctx = _ctx({"zones": [zone], "dwell_seconds": 2.0})
    stays = [(150, 150)] * 25 + [(50, 50)] * 5 + [(150, 150)] * 10  # 2.4 s, out, 0.9 s
    tracks = [_track(1, stays, first=10), _track(2, [(150, 150)] * 8, first=10)]
    events = _finish(ctx, tracks)
    dwells = [e for e in events if e["event_type"] == "dwell"]
    assert [(e["track_id"], e["attributes"]["zone"]) for e in dwells] == [(1, "Z")]
    assert dwells[0]["attributes"]["duration"] == pytest.approx(2.4)
    assert dwells[0]["frame_number"] == 10 + 20  # the moment the threshold is reached
    assert "dwelled in zone Z for 2.4 s" in dwells[0]["description"]
    for tid in (1, 2):
        kinds = [e["event_type"] for e in events if e["track_id"] == tid]
        assert kinds.count("enter") == 1 and kinds.count("exit") == 1
    enter = next(e for e in events if e["event_type"] == "enter" and e["track_id"] == 1)
    # mid-frame, not at an edge: it appeared (and was lost) in view
    assert enter["description"] == "car 1 appeared in view at 00:01.0"
    exit_ = next(e for e in events if e["event_type"] == "exit" and e["track_id"] == 2)
    assert exit_["attributes"]["edge"] is None
    assert exit_["description"] == "car 2 lost in view at 00:01.7 after 0.7 s"


def test_geometry_config_files_and_cli_specs(tmp_path: Path) -> None:
    spec = {
        "lines": [{"name": "A", "points": [[0, 100], [320, 100]], "directions": ["up", "down"]}],
        "zones": [{"name": "Z", "polygon": [[0, 0], [10, 0], [10, 10]], "dwell_seconds": 3}],
    }
    (tmp_path / "g.json").write_text(json.dumps(spec))
    (tmp_path / "g.yaml").write_text(
        "lines:\n  - name: A\n    points: [[0, 100], [320, 100]]\n    directions: [up, down]\n"
        "zones:\n  - name: Z\n    polygon: [[0, 0], [10, 0], [10, 10]]\n    dwell_seconds: 3\n"
    )
    assert load_geometry(tmp_path / "g.json") == spec
    assert load_geometry(tmp_path / "g.yaml") == spec
    assert parse_line_spec("A:0,100,320,100:up,down") == spec["lines"][0]
    assert parse_zone_spec("Z:0,0,10,0,10,10:3") == spec["zones"][0]
    (tmp_path / "bad.yaml").write_text("lines: [[[")
    bad = {
        "A:1,2,3": "expected 4 coordinates",
        "A:0,0,0,0": "two points are the same",
        "A:x,0,1,1": "comma-separated numbers",
    }
    for text_spec, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            parse_line_spec(text_spec)
    with pytest.raises(ConfigError, match="at least 3"):
        parse_zone_spec("Z:0,0,1,1")
    with pytest.raises(ConfigError, match="not valid YAML/JSON"):
        load_geometry(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_geometry(tmp_path / "missing.yaml")
    # bad geometry is refused when the parameters are made, not when a chunk starts
    with pytest.raises(ValueError, match="line names must be unique"):
        EventsStage(_ctx({"lines": [spec["lines"][0], spec["lines"][0]]}))


def _rows(db_url: str, sql: str, **params) -> list:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def test_highway_line_crossings_in_the_expected_direction(db_url: str) -> None:
    """A line across both carriageways: traffic comes down the left one, goes up the right."""
    from capstone.runtime.pipeline import analyze

    video = require(VIDEOS / "highway-cctv.avi")
    line = {"name": "A", "points": [[0, LINE_Y], [320, LINE_Y]]}
    params = AnalysisParams(
        stages=("detect", "track", "events"),
        stride=2,
        max_frames=100,
        options={"lines": [line], "count_every_s": 2.0},
    )
    result = analyze(video, video_id="highway", params=params)
    assert result.status == "completed", result.error
    crossings = _rows(
        db_url,
        "SELECT track_id, attributes, description FROM apps_db_event"
        " WHERE video_id = 'highway' AND event_type = 'line_cross'",
    )
    south = [c for c in crossings if c.attributes["direction"] == "southbound"]
    north = [c for c in crossings if c.attributes["direction"] == "northbound"]
    assert len(south) >= 3 and len(north) >= 3
    # southbound traffic is on the left carriageway, northbound on the right
    assert max(c.attributes["point"][0] for c in south) < min(
        c.attributes["point"][0] for c in north
    )
    # each track whose path starts on one side and ends on the other crossed once, that way
    by_track: dict[int, list[str]] = {}
    for c in crossings:
        by_track.setdefault(c.track_id, []).append(c.attributes["direction"])
    # a track is an object once seen >= 0.5 s (the default confirm_s) in >= 3 samples
    stored = _rows(
        db_url,
        "SELECT track_id, length, last_timestamp - first_timestamp AS span FROM apps_db_track"
        " WHERE video_id = 'highway'",
    )
    confirmed = {r.track_id for r in stored if r.length >= 3 and r.span >= 0.5 - 1e-6}
    assert confirmed
    tracks = [
        t
        for t in _rows(
            db_url,
            "SELECT e.track_id, min(e.frame_number) AS f0, max(e.frame_number) AS f1 FROM"
            " apps_db_event e WHERE e.video_id = 'highway' AND e.event_type = 'detection'"
            " AND e.track_id IS NOT NULL GROUP BY e.track_id",
        )
        if t.track_id in confirmed
    ]
    ends = {
        (r.track_id, r.frame_number): r.bbox[3]
        for r in _rows(
            db_url,
            "SELECT track_id, frame_number, bbox FROM apps_db_event WHERE video_id = 'highway'"
            " AND event_type = 'detection' AND track_id IS NOT NULL",
        )
    }
    checked = 0
    for t in tracks:
        y0, y1 = ends[(t.track_id, t.f0)], ends[(t.track_id, t.f1)]
        if (y0 < LINE_Y) != (y1 < LINE_Y):
            expected = "southbound" if y0 < LINE_Y else "northbound"
            assert by_track.get(t.track_id) == [expected], t.track_id
            checked += 1
    assert checked == len(crossings)
    assert any("crossed line A southbound at" in c.description for c in south)
    # full-text search finds them
    found = _rows(
        db_url,
        "SELECT count(*) AS n FROM apps_db_event WHERE video_id = 'highway'"
        " AND description_tsv @@ plainto_tsquery('english', 'crossed southbound')",
    )
    assert found[0].n == len(south)
    # enter/exit for every confirmed track, none for the short ones; counts per bucket
    per_track = _rows(
        db_url,
        "SELECT t.track_id, count(*) FILTER (WHERE e.event_type = 'enter') AS enters,"
        " count(*) FILTER (WHERE e.event_type = 'exit') AS exits FROM apps_db_track t"
        " LEFT JOIN apps_db_event e ON e.analysis_id = t.analysis_id"
        " AND e.track_id = t.track_id WHERE t.video_id = 'highway' GROUP BY t.track_id",
    )
    assert per_track
    for r in per_track:
        expected = 1 if r.track_id in confirmed else 0
        assert (r.enters, r.exits) == (expected, expected), r.track_id
    counts = _rows(
        db_url,
        "SELECT timestamp, class_name, bbox, attributes, description FROM apps_db_event"
        " WHERE video_id = 'highway' AND event_type = 'count'"
        " ORDER BY (attributes->>'window_start')::float, class_name",
    )
    last = _rows(
        db_url,
        "SELECT max(timestamp) AS last_ts FROM apps_db_event WHERE video_id = 'highway'"
        " AND event_type = 'detection'",
    )[0].last_ts
    cars = [c for c in counts if c.class_name == "car"]
    starts = [c.attributes["window_start"] for c in cars]
    assert starts == [2.0 * k for k in range(int(last // 2.0) + 1)]
    assert all(s <= c.timestamp < s + 2.0 for s, c in zip(starts, cars, strict=True))
    assert all(c.attributes["count"] > 0 and c.bbox == [0, 0, 320, 240] for c in counts)
    n = cars[1].attributes["count"]
    assert cars[1].description == f"{n} car{'s' if n > 1 else ''} in 2 s from 00:02.0"


# -- objects: confirmation, identities, edges (issue 16 §3) --------------------------------


def _box_track(tid: int, boxes: list[tuple[float, float, float, float]], first: int, fps=10.0):
    return _make_track(tid, 0, "person", boxes, first, fps, 0.9)


def test_short_tracks_keep_no_events_and_are_not_counted() -> None:
    line = {"name": "A", "points": [[0, LINE_Y], [320, LINE_Y]]}
    ctx = _ctx({"lines": [line], "count_every_s": 100.0})
    flicker = _track(1, [(160, 90), (160, 110)])  # 2 samples across the line: noise
    brief = _track(2, [(100, 90), (100, 95), (100, 105), (100, 110)])  # 0.3 s < 0.5 s
    real = _track(3, [(200, 60 + 10 * k) for k in range(8)])  # 0.7 s, crosses the line
    events = _finish(ctx, [flicker, brief, real])
    assert {e["track_id"] for e in events if e["event_type"] != "count"} == {3}
    assert [e["event_type"] for e in events if e["event_type"] == "line_cross"] == ["line_cross"]
    # counts: the stage saw the frames through `process`; here only the track sets matter
    stage = EventsStage(ctx)
    stage.buckets = {0: _bucket({"car": {1, 2, 3}})}
    counts = stage._counts((320, 240), {3: 3})
    assert [c["attributes"]["count"] for c in counts] == [1]
    # the window is configurable: with confirm_s=0 three samples are enough
    loose = _ctx({"lines": [line]})
    loose.params = loose.params.model_copy(update={"confirm_s": 0.0})
    events = _finish(loose, [flicker, brief, real])
    assert {e["track_id"] for e in events if e["event_type"] == "enter"} == {2, 3}


def _bucket(tracks: dict[str, set[int]]):
    from capstone.stages.events import _Bucket

    bucket = _Bucket(0, 0.0, 0.0)
    for label, ids in tracks.items():
        bucket.tracks[label] |= ids
    return bucket


def test_edges_are_named_only_when_the_box_touches_them() -> None:
    ctx = _ctx({}, size=(320, 240))
    # walks out to the right: the last box touches the right border
    right = [(200 + 15 * k, 100, 240 + 15 * k, 180) for k in range(6)]
    right[-1] = (285, 100, 320, 180)
    # comes up from the bottom border, then is lost mid-frame (occlusion)
    bottom = [(40, 160 - 10 * k, 70, 240 - 10 * k) for k in range(7)]
    events = _finish(ctx, [_box_track(1, right, 5), _box_track(2, bottom, 5)])
    by = {(e["track_id"], e["event_type"]): e for e in events}
    assert by[(1, "exit")]["attributes"]["edge"] == "right"
    assert by[(1, "exit")]["description"].endswith("at the right edge")
    assert by[(1, "enter")]["attributes"]["edge"] is None
    assert "appeared in view" in by[(1, "enter")]["description"]
    assert by[(2, "enter")]["attributes"]["edge"] == "bottom"
    assert "from the bottom edge" in by[(2, "enter")]["description"]
    assert by[(2, "exit")]["attributes"]["edge"] is None
    assert "lost in view" in by[(2, "exit")]["description"]
    assert "edge" not in by[(2, "exit")]["description"]
    # a big box touching several borders: the one it moves across; none if it moves inwards
    tall = [(150 + 30 * k, 0, 250 + 30 * k, 240) for k in range(3)] + [(240, 0, 320, 240)] * 3
    back = [(100, 0 + 8 * k, 200, 120 + 8 * k) for k in range(6)]  # leaves the top, inwards
    more = _finish(ctx, [_box_track(3, tall, 5), _box_track(4, back, 5)])
    by.update({(e["track_id"], e["event_type"]): e for e in more})
    assert by[(3, "exit")]["attributes"]["edge"] is None  # it stopped: still at 3 borders
    tall[-1] = (250, 0, 320, 240)  # still moving right at the end
    more = _finish(ctx, [_box_track(3, tall, 5)])
    assert next(e for e in more if e["event_type"] == "exit")["attributes"]["edge"] == "right"
    assert by[(4, "enter")]["attributes"]["edge"] == "top"  # came in from the top
    assert by[(4, "exit")]["attributes"]["edge"] is None
    events += more
    for e in events:  # whatever is named, the box really is at that edge
        edge, (x1, y1, x2, y2) = e["attributes"]["edge"], e["bbox"]
        gaps = {"left": x1, "top": y1, "right": 320 - x2, "bottom": 240 - y2}
        assert edge is None or gaps[edge] <= 0.01 * 320


def test_a_repaired_identity_is_one_object() -> None:
    line = {"name": "A", "points": [[0, LINE_Y], [320, LINE_Y]]}
    ctx = _ctx({"lines": [line], "count_every_s": 100.0})
    ctx.params = ctx.params.model_copy(update={"stages": ("detect", "track", "events", "identity")})
    before = _track(4, [(150, 40 + 5 * k) for k in range(8)], first=10)  # ends at y 75
    after = _track(9, [(150, 120 + 5 * k) for k in range(8)], first=22)  # starts at y 120
    for t in (before, after):
        t.summary.extra["identity_id"] = 4
    stage = EventsStage(ctx)
    stage.first_frame, stage.last_frame = 0, 100
    stage.buckets = {0: _bucket({"car": {4, 9}})}
    events = _events(stage, ctx, [before, after])
    kinds = [e["event_type"] for e in events]
    assert kinds.count("enter") == kinds.count("exit") == 1  # no exit while it continues
    enter = next(e for e in events if e["event_type"] == "enter")
    exit_ = next(e for e in events if e["event_type"] == "exit")
    assert (enter["track_id"], exit_["track_id"]) == (4, 9)
    assert exit_["attributes"]["identity_id"] == 4 and exit_["attributes"]["track_ids"] == [4, 9]
    crossings = [e for e in events if e["event_type"] == "line_cross"]
    assert len(crossings) == 1 and crossings[0]["attributes"]["identity_id"] == 4  # in the gap
    counts = [e for e in events if e["event_type"] == "count"]
    assert [c["attributes"]["count"] for c in counts] == [1]  # two raw ids, one object


def test_keyframe_descriptions_rank_confident_crowds_above_one_doubtful_box() -> None:
    from capstone.models import embedders
    from capstone.stages.embed import describe_frame

    crowd = describe_frame(["person"] * 7, [("park bench", 0.2)], [0.8] * 7)
    doubtful = describe_frame(["person"], [("mountain bike", 0.4)], [0.29])
    assert crowd.startswith("7 persons") and "doubtful: 1 person" in doubtful
    vectors = embedders.text_embedder().embed(["person", crowd, doubtful])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.03
