"""Depth: the geometric estimate on synthetic scenes of known geometry, the model path with a
randomly initialised `yolo26-depth.yaml`, and the stage through the real pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from capstone.stages.depth import MAP_SIZE, GeometricDepth
from capstone.stages.params import AnalysisParams
from tests.conftest import VIDEOS, require

W, H = 768, 576
HFOV = 60.0
CAMERA_HEIGHT = 3.0


def _project(points: np.ndarray, tilt_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """World (X right, Y up, Z forward; camera at (0, CAMERA_HEIGHT, 0), pitched down by
    `tilt_deg`) -> pixel (u, v) and depth along the optical axis."""
    f = (W / 2) / math.tan(math.radians(HFOV) / 2)
    t = math.radians(tilt_deg)
    x, y, z = points[:, 0], points[:, 1] - CAMERA_HEIGHT, points[:, 2]
    z_cam = z * math.cos(t) - y * math.sin(t)
    down = -y * math.cos(t) - z * math.sin(t)
    return np.stack([W / 2 + f * x / z_cam, H / 2 + f * down / z_cam], axis=1), z_cam


def _scene(objects: list[tuple[float, float, float, float, float]], tilt_deg: float):
    """Boxes and true centre depths of upright cuboids (x, z, width, height, length)."""
    boxes, truth = [], []
    for x, z, width, height, length in objects:
        corners = np.array(
            [
                [x + dx, dy, z + dz]
                for dx in (-width / 2, width / 2)
                for dy in (0.0, height)
                for dz in (-length / 2, length / 2)
            ]
        )
        uv, _ = _project(corners, tilt_deg)
        boxes.append([*uv.min(axis=0), *uv.max(axis=0)])
        truth.append(_project(np.array([[x, height / 2, z]]), tilt_deg)[1][0])
    return np.array(boxes), np.array(truth)


def _people(n: int, seed: int) -> list[tuple[float, float, float, float, float]]:
    rng = np.random.default_rng(seed)
    zs = rng.uniform(8.0, 40.0, n)
    xs = rng.uniform(-0.25, 0.25, n) * zs  # stay inside a 60 degree field of view
    return [(float(x), float(z), 0.5, 1.7, 0.4) for x, z in zip(xs, zs, strict=True)]


@pytest.mark.parametrize("tilt_deg", [0.0, 10.0])
def test_geometric_depth_within_10_percent_on_synthetic_scenes(tilt_deg: float) -> None:
    people = _people(40, seed=int(tilt_deg))
    boxes, truth = _scene(people, tilt_deg)
    assert (boxes[:, 0] > 0).all() and (boxes[:, 2] < W).all() and (boxes[:, 3] < H).all()
    estimator = GeometricDepth(W, H, hfov_deg=HFOV)
    by_height = estimator.estimate(boxes, ["person"] * len(boxes))[0]
    assert np.max(np.abs(by_height - truth) / truth) < 0.10

    ground = estimator.calibrate(boxes)
    assert ground is not None
    assert ground.camera_height == pytest.approx(CAMERA_HEIGHT, rel=0.10)
    avg, low, high, var = estimator.estimate(boxes, ["person"] * len(boxes))
    assert np.max(np.abs(avg - truth) / truth) < 0.10
    assert (low < avg).all() and (avg < high).all() and (var > 0).all()

    # other classes standing on the same ground: depth from the row of their lowest point
    cars = [(-3.0, 12.0, 1.8, 1.5, 4.5), (2.5, 20.0, 1.8, 1.5, 4.5), (0.0, 35.0, 1.8, 1.5, 4.5)]
    car_boxes, car_truth = _scene(cars, tilt_deg)
    car_depth = estimator.estimate(car_boxes, ["car"] * len(cars))[0]
    assert np.max(np.abs(car_depth - car_truth) / car_truth) < 0.10


def test_calibration_refuses_scenes_that_do_not_fit() -> None:
    estimator = GeometricDepth(W, H)
    assert estimator.calibrate(np.zeros((0, 4))) is None
    few, _ = _scene(_people(5, seed=3), 0.0)
    assert estimator.calibrate(few) is None
    # boxes smaller lower in the frame: not a camera above flat ground
    upside = np.array([[100, 100 + 10 * k, 120, 200 + 5 * k] for k in range(30)], float)
    upside[:, 1] = upside[:, 3] - (80 - 2 * np.arange(30))
    assert estimator.calibrate(upside) is None
    assert estimator.ground is None


def _rows(db_url: str, sql: str) -> list:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        engine.dispose()


def _check_pets09(db_url: str, video_id: str) -> None:
    """Depth rows for every stored person detection, nearer lower down; enter/exit per track."""
    missing = _rows(
        db_url,
        f"SELECT count(*) AS n FROM apps_db_event e WHERE e.video_id = '{video_id}'"
        " AND e.event_type = 'detection' AND e.class_name = 'person' AND NOT EXISTS ("
        " SELECT 1 FROM apps_db_depthdata d WHERE d.analysis_id = e.analysis_id"
        " AND d.frame_number = e.frame_number AND d.bbox = e.bbox)",
    )
    assert missing[0].n == 0
    people = _rows(
        db_url,
        "SELECT bbox, avg_depth, min_depth, max_depth, method FROM apps_db_depthdata"
        f" WHERE video_id = '{video_id}' AND class_name = 'person'",
    )
    detections = _rows(
        db_url,
        "SELECT count(*) AS n FROM apps_db_event WHERE event_type = 'detection'"
        f" AND class_name = 'person' AND video_id = '{video_id}'",
    )
    assert len(people) == detections[0].n > 50
    assert {p.method for p in people} == {"geometric"}
    foot = np.array([p.bbox[3] for p in people])
    depth = np.array([p.avg_depth for p in people])
    assert all(p.min_depth <= p.avg_depth <= p.max_depth for p in people)
    rank = np.corrcoef(np.argsort(np.argsort(foot)), np.argsort(np.argsort(depth)))[0, 1]
    assert rank < -0.9, rank  # lower in the frame = nearer
    summaries = _rows(
        db_url,
        "SELECT count(DISTINCT frame_number) AS n FROM apps_db_depthdata"
        f" WHERE video_id = '{video_id}' AND class_name IS NULL",
    )
    frames_with_objects = _rows(
        db_url,
        "SELECT count(DISTINCT frame_number) AS n FROM apps_db_event"
        f" WHERE video_id = '{video_id}' AND event_type = 'detection'",
    )
    assert summaries[0].n == frames_with_objects[0].n
    tracks = _rows(
        db_url,
        "SELECT t.track_id, t.avg_depth, t.min_depth, t.max_depth,"
        " count(*) FILTER (WHERE e.event_type = 'enter') AS enters,"
        " count(*) FILTER (WHERE e.event_type = 'exit') AS exits FROM apps_db_track t"
        " LEFT JOIN apps_db_event e ON e.analysis_id = t.analysis_id AND e.track_id = t.track_id"
        f" WHERE t.video_id = '{video_id}'"
        " GROUP BY t.track_id, t.avg_depth, t.min_depth, t.max_depth",
    )
    assert len(tracks) >= 5
    # one enter and one exit per confirmed object; tracks too short to confirm have none
    assert all(t.enters == t.exits <= 1 for t in tracks) and sum(t.enters for t in tracks) >= 3
    assert all(t.min_depth <= t.avg_depth <= t.max_depth for t in tracks)


def test_pets09_depth_and_enter_exit_through_the_pipeline(db_url: str) -> None:
    from capstone.runtime.pipeline import analyze

    video = require(VIDEOS / "pets09-s2l1.avi")
    params = AnalysisParams(stages=("detect", "track", "depth", "events"), stride=4, max_frames=60)
    result = analyze(video, video_id="pets", params=params)
    assert result.status == "completed", result.error
    _check_pets09(db_url, "pets")


@pytest.mark.slow
def test_pets09_whole_video_depth_and_enter_exit(db_url: str) -> None:
    from capstone.runtime.pipeline import analyze

    video = require(VIDEOS / "pets09-s2l1.avi")
    params = AnalysisParams(stages=("detect", "track", "depth", "events"))
    result = analyze(video, video_id="pets-full", params=params)
    assert result.status == "completed", result.error
    assert result.frames_processed == 795
    _check_pets09(db_url, "pets-full")


def test_depth_model_path_with_random_weights(db_url: str) -> None:
    """`yolo26-depth.yaml` builds offline: loading, inference, shapes and storage."""
    from capstone.runtime.pipeline import analyze

    video = require(VIDEOS / "pets09-s2l1.avi")
    params = AnalysisParams(
        stages=("detect", "track", "depth"),
        stride=5,
        max_frames=4,  # frames 0, 5, 10, 15 at 10 fps: keyframes 0 and 10
        options={"depth_model": "yolo26-depth.yaml", "depth_every_s": 1.0},
    )
    result = analyze(video, video_id="pets-model", params=params)
    assert result.status == "completed", result.error
    method = "model:yolo26-depth.yaml"
    maps = _rows(
        db_url,
        "SELECT frame_number, depth_map, avg_depth, min_depth, max_depth, method"
        " FROM apps_db_depthdata WHERE class_name IS NULL AND depth_map IS NOT NULL"
        " ORDER BY frame_number",
    )
    assert [m.frame_number for m in maps] == [0, 10]
    for m in maps:
        assert m.method == method
        grid = np.frombuffer(m.depth_map, np.float16).reshape(MAP_SIZE[1], MAP_SIZE[0])
        assert np.isfinite(grid).all()
        assert m.min_depth <= float(grid.astype(np.float32).mean()) + 1e-2 <= m.max_depth + 2e-2
    objects = _rows(
        db_url,
        "SELECT frame_number, method, avg_depth FROM apps_db_depthdata"
        " WHERE class_name IS NOT NULL",
    )
    detections = _rows(
        db_url, "SELECT count(*) AS n FROM apps_db_event WHERE event_type = 'detection'"
    )
    assert len(objects) == detections[0].n > 0
    by_frame = {o.frame_number: o.method for o in objects}
    assert by_frame[0] == by_frame[10] == method
    assert by_frame[5] == by_frame[15] == f"{method}+geometric"
    assert all(np.isfinite(o.avg_depth) for o in objects)
    tracks = _rows(db_url, "SELECT avg_depth FROM apps_db_track")
    assert tracks and all(t.avg_depth is not None for t in tracks)


def test_missing_depth_weights_fall_back_to_geometric(db_url: str) -> None:
    from capstone.runtime.pipeline import analyze

    video = require(VIDEOS / "pets09-s2l1.avi")
    params = AnalysisParams(
        stages=("detect", "depth"), max_frames=2, options={"depth_model": "no-such-depth"}
    )
    result = analyze(video, video_id="pets-fallback", params=params)
    assert result.status == "completed", result.error
    methods = {r.method for r in _rows(db_url, "SELECT DISTINCT method FROM apps_db_depthdata")}
    assert methods == {"geometric (no-such-depth not found)"}
