"""Depth: per-object depth statistics (and a per-frame summary) in `apps_db_depthdata`.

Two methods; the `method` column of every row says which one produced it.

**Model** (`model:<name>`): an Ultralytics depth model (task `depth`, e.g. `yolo26n-depth`,
or any depth model by path; option `depth_model`), used whenever its weights resolve through
`capstone.models.weights.resolve_model`. `yolo26-depth.yaml` (an architecture config) builds a model
with random weights: that proves loading, inference, shapes and storage offline, nothing
more. A depth map costs ~190 ms per frame on 2 CPU cores, so the model runs only on
keyframes (the first sampled frame, then one every `depth_every_s` seconds, default 1.0).
Keyframe rows (`model:<name>`) hold the statistics of the map inside each box, and the
frame's summary row holds a compact 64x48 float16 copy of the map
(`np.frombuffer(row.depth_map, np.float16).reshape(48, 64)`). Detections between keyframes
(`model:<name>+geometric`) get the geometric estimate rescaled by the model/geometric ratio
of the same track, interpolated between its keyframes (the frame's median ratio for tracks
not seen on a keyframe).

**Geometric** (`geometric`, the default when no depth weights exist): a pinhole camera
with its principal point at the image centre, focal length `focal_px` or, from the
horizontal field of view `hfov_deg` (default 60 degrees), f = (W / 2) / tan(hfov / 2).
Objects stand on flat ground and have a typical height per class (person 1.7 m, car 1.5 m,
... `CLASS_SIZES`; option `class_heights` overrides). Then depth = f * H / h for a box of
h pixels. With enough person boxes (>= 20 not cut by the frame border, spread over the
image) the ground plane is calibrated: on flat ground a person's pixel height grows
linearly with the row of the feet, h = a * (y_foot - y_horizon), with a = H_person /
camera_height; fitting that line (least squares, one round of outlier rejection) gives the
horizon and the camera height, and every object standing on the ground then gets depth =
f * camera_height / (y_foot - y_horizon) for its nearest point (plus half its class's depth
extent for its centre), which is robust to boxes cut short by occlusion.
Boxes cut by the bottom border, objects that do not stand on the ground (traffic lights,
birds, ...) and uncalibrated scenes use the class-height formula. Inside a box the object is
taken to span its class's typical depth extent around that distance (uniformly), hence
min/max = depth -/+ extent / 2 and variance = extent^2 / 12. Depths are in metres (up to
the focal-length assumption). Depth is along the optical axis, like a depth map's.

Per-frame summary rows have `track_id` and `class_name` NULL. Track summaries get the
mean/min/max of their boxes' average depth (`apps_db_track.avg_depth/min_depth/max_depth`).

>>> estimator = GeometricDepth(width=640, height=480, hfov_deg=60.0)
>>> round(float(estimator.estimate(np.array([[300.0, 200.0, 340.0, 290.0]]), ["person"])[0][0]), 2)
10.47
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from capstone.core.detections import Detections
from capstone.core.records import Record
from capstone.core.video import Frame
from capstone.errors import ConfigError, ModelNotFoundError
from capstone.stages.base import Number, RunContext, Stage, StageOptions, VideoResult

log = logging.getLogger(__name__)

DEFAULT_DEPTH_MODEL = "yolo26n-depth"
DEFAULT_HFOV_DEG = 60.0
DEFAULT_EVERY_S = 1.0
MAP_SIZE = (64, 48)  # width, height of the stored compact depth map
MIN_CALIBRATION_BOXES = 20
PERSON_HEIGHT = 1.7

# class -> (typical height in m, typical depth extent in m, stands on the ground)
CLASS_SIZES: dict[str, tuple[float, float, bool]] = {
    "person": (PERSON_HEIGHT, 0.4, True),
    "bicycle": (1.1, 1.7, True),
    "car": (1.5, 4.5, True),
    "motorcycle": (1.2, 2.0, True),
    "bus": (3.2, 11.0, True),
    "train": (3.8, 20.0, True),
    "truck": (3.0, 8.0, True),
    "boat": (1.5, 5.0, False),
    "traffic light": (1.0, 0.4, False),
    "fire hydrant": (0.7, 0.3, True),
    "stop sign": (0.75, 0.1, False),
    "parking meter": (1.3, 0.3, True),
    "bench": (0.9, 0.6, True),
    "bird": (0.25, 0.25, False),
    "cat": (0.3, 0.5, True),
    "dog": (0.6, 0.8, True),
    "horse": (1.6, 2.2, True),
    "sheep": (0.9, 1.2, True),
    "cow": (1.4, 2.2, True),
    "elephant": (3.0, 5.0, True),
    "bear": (1.2, 1.8, True),
    "zebra": (1.4, 2.2, True),
    "giraffe": (4.5, 2.5, True),
    "backpack": (0.5, 0.25, False),
    "umbrella": (1.0, 1.0, False),
    "handbag": (0.3, 0.15, False),
    "suitcase": (0.6, 0.3, True),
    "chair": (0.9, 0.5, True),
    "couch": (0.85, 0.9, True),
    "potted plant": (0.6, 0.4, True),
    "bed": (0.6, 2.0, True),
    "dining table": (0.75, 1.0, True),
    "toilet": (0.75, 0.6, True),
    "tv": (0.6, 0.1, False),
    "refrigerator": (1.8, 0.7, True),
}
DEFAULT_SIZE = (1.0, 0.5, False)  # classes not in the table


@dataclass
class GroundPlane:
    """Flat ground seen by the camera: horizon row and camera height (metres)."""

    horizon_y: float
    camera_height: float
    boxes_used: int


@dataclass
class GeometricDepth:
    """The pinhole / flat-ground / typical-height estimate (see the module docstring)."""

    width: int
    height: int
    hfov_deg: float = DEFAULT_HFOV_DEG
    focal_px: float | None = None
    class_heights: dict[str, float] = field(default_factory=dict)
    ground: GroundPlane | None = None

    def __post_init__(self) -> None:
        if self.focal_px is None:
            if not 1.0 <= self.hfov_deg <= 179.0:
                raise ConfigError(f"hfov_deg must be between 1 and 179, got {self.hfov_deg}")
            self.focal_px = (self.width / 2) / math.tan(math.radians(self.hfov_deg) / 2)
        elif self.focal_px <= 0:
            raise ConfigError(f"focal_px must be > 0, got {self.focal_px}")

    def size(self, label: str) -> tuple[float, float, bool]:
        height, extent, on_ground = CLASS_SIZES.get(label, DEFAULT_SIZE)
        return self.class_heights.get(label, height), extent, on_ground

    def calibrate(self, boxes: np.ndarray) -> GroundPlane | None:
        """Fit the ground plane to person boxes (N, 4); None when they do not allow it."""
        boxes = self._uncut(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        if len(boxes) < MIN_CALIBRATION_BOXES:
            return None
        foot, h = boxes[:, 3], boxes[:, 3] - boxes[:, 1]
        if np.std(foot) < 0.05 * self.height:
            return None
        keep = np.ones(len(boxes), dtype=bool)
        for _ in range(2):  # fit, drop outliers (occluded / merged boxes), refit
            a, b = np.polyfit(foot[keep], h[keep], 1)
            residual = np.abs(h - (a * foot + b))
            mad = np.median(residual[keep]) + 1e-6
            keep = residual <= 3.0 * 1.4826 * mad
            if keep.sum() < MIN_CALIBRATION_BOXES:
                return None
        if a <= 0:
            return None  # bigger higher up: not a camera looking down at flat ground
        horizon = -b / a
        if horizon >= float(np.min(foot[keep])):
            return None
        self.ground = GroundPlane(float(horizon), self.size("person")[0] / a, int(keep.sum()))
        return self.ground

    def estimate(self, boxes: np.ndarray, labels: list[str]) -> tuple[np.ndarray, ...]:
        """(avg, min, max, variance) depth per box, vectorized over (N, 4) xyxy boxes."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        sizes = np.array([self.size(label) for label in labels], dtype=np.float64).reshape(-1, 3)
        heights, extents, on_ground = sizes[:, 0], sizes[:, 1], sizes[:, 2] > 0
        f = float(self.focal_px)  # type: ignore[arg-type]
        box_h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        depth = f * heights / box_h
        if self.ground is not None:
            below = boxes[:, 3] - self.ground.horizon_y
            usable = on_ground & (below > 1.0) & (boxes[:, 3] < self.height - 1)
            with np.errstate(divide="ignore"):
                ground_depth = f * self.ground.camera_height / below
            # the foot row is the object's nearest point on the ground: its centre is
            # half the object's depth extent further away
            depth = np.where(usable, ground_depth + extents / 2, depth)
        half = extents / 2
        return depth, np.maximum(depth - half, 0.0), depth + half, extents**2 / 12

    def _uncut(self, boxes: np.ndarray) -> np.ndarray:
        margin = 2.0
        ok = (boxes[:, 1] > margin) & (boxes[:, 3] < self.height - margin)
        return boxes[ok & (boxes[:, 3] > boxes[:, 1])]


def load_depth_model(name: str) -> Any:
    """An Ultralytics depth model by name, path or architecture YAML (random weights)."""
    from ultralytics import YOLO

    from capstone.models.weights import resolve_model

    source = name if name.endswith((".yaml", ".yml")) else resolve_model(name)
    try:
        model = YOLO(str(source), task="depth")
    except Exception as exc:  # a broken weights file: report it in one line
        raise ModelNotFoundError(f"depth model {name!r} could not be loaded: {exc}") from None
    if model.task != "depth":
        raise ConfigError(f"model {name!r} is a {model.task} model, not a depth model")
    return model


def box_stats(depth_map: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 4) avg/min/max/variance of the map inside each (clipped, >= 1 px) box."""
    h, w = depth_map.shape
    out = np.empty((len(boxes), 4), dtype=np.float64)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64)):
        c1, r1 = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
        c2, r2 = max(c1 + 1, int(np.ceil(min(x2, w)))), max(r1 + 1, int(np.ceil(min(y2, h))))
        patch = depth_map[r1:r2, c1:c2]
        out[i] = patch.mean(), patch.min(), patch.max(), patch.var()
    return out


@dataclass
class _FrameBoxes:
    frame_number: int
    boxes: np.ndarray
    labels: list[str]
    track_ids: list[int | None]
    model_stats: np.ndarray | None = None  # keyframes only


class DepthOptions(StageOptions):
    """Camera and scene: horizontal field of view (degrees) or focal length (px), person and
    other class heights (m), how often a depth map is made (s), and the depth model."""

    class_heights: dict[str, Number] = Field(default_factory=dict)
    hfov_deg: Number = DEFAULT_HFOV_DEG
    focal_px: Number | None = None
    depth_every_s: Annotated[Number, Field(ge=0)] = DEFAULT_EVERY_S
    depth_model: str | None = None


class DepthStage(Stage):
    """The `depth` stage (see the module docstring)."""

    name = "depth"
    Options = DepthOptions
    after = ("identity",)
    emits = (Record.DEPTH,)
    track_extras = ("avg_depth", "min_depth", "max_depth")

    def __init__(self, ctx: RunContext) -> None:
        options = DepthOptions.pick(ctx.params.options)
        self.geometric = GeometricDepth(
            ctx.info.width,
            ctx.info.height,
            hfov_deg=options.hfov_deg,
            focal_px=options.focal_px,
            class_heights=dict(options.class_heights),
        )
        self.every_s = options.depth_every_s
        self.model: Any = None
        self.model_name: str | None = None
        self.fallback_method = "geometric"
        self._load_model(options.depth_model)
        self.frames: list[_FrameBoxes] = []
        self.keyframe_rows: list[dict[str, Any]] = []
        self._next_keyframe = -math.inf
        self._threads_set = False

    def _load_model(self, requested: Any) -> None:
        if requested in ("geometric", "none", False):
            return
        name = str(requested) if requested else DEFAULT_DEPTH_MODEL
        try:
            self.model = load_depth_model(name)
        except ModelNotFoundError as exc:
            if requested:  # asked for by name: say in every row that it was not there
                log.warning("%s; using the geometric depth estimate", exc)
                self.fallback_method = f"geometric ({name} not found)"
            return
        self.model_name = os.path.basename(name.rstrip("/"))

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        tids = (
            [int(t) if t >= 0 else None for t in detections.tracker_id.tolist()]
            if detections.tracker_id is not None
            else [None] * len(detections)
        )
        w, h = ctx.info.width, ctx.info.height
        boxes = detections.xyxy.clip(0, [w, h, w, h])  # as the detection rows store them
        entry = _FrameBoxes(frame.index, boxes, detections.labels, tids)
        self.frames.append(entry)
        if self.model is None or frame.timestamp < self._next_keyframe:
            return
        self._next_keyframe = frame.timestamp + self.every_s - 1e-6
        result = self.model.predict(frame.image, verbose=False)[0]
        if not self._threads_set:  # importing ultralytics drops torch to one thread
            import torch

            torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
            self._threads_set = True
        depth_map = np.nan_to_num(result.depth.data.cpu().numpy().astype(np.float32))
        if len(detections):
            entry.model_stats = box_stats(depth_map, boxes)
        self.keyframe_rows.append(_frame_summary(frame.index, depth_map, self.method_model))

    @property
    def method_model(self) -> str:
        return f"model:{self.model_name}"

    def end_chunk(self, ctx: RunContext) -> dict[str, Any]:
        """The chunk's rows (the ground plane is calibrated on the chunk's person boxes), and
        each track's depth sums for the publish step."""
        for row in self._rows(ctx):
            ctx.emit(Record.DEPTH, row)
        self.frames, self.keyframe_rows = [], []
        return {}

    @classmethod
    def merge_track_extras(cls, fragments: list[dict[str, Any]]) -> dict[str, Any]:
        """A track's depth sums over its chunk fragments."""
        if not any("depth_n" in e for e in fragments):
            return {}
        return {
            "depth_sum": sum(e.get("depth_sum", 0.0) for e in fragments),
            "depth_n": sum(e.get("depth_n", 0) for e in fragments),
            "min_depth": min(e["min_depth"] for e in fragments if "min_depth" in e),
            "max_depth": max(e["max_depth"] for e in fragments if "max_depth" in e),
        }

    @classmethod
    def publish(cls, video: VideoResult) -> None:
        """Per track the mean/min/max of its boxes' average depth over all its chunks."""
        for summary in video.tracks.values():
            n = summary.extra.pop("depth_n", 0)
            total = summary.extra.pop("depth_sum", 0.0)
            if n:
                summary.extra["avg_depth"] = round(total / n, 4)
            else:
                summary.extra.pop("min_depth", None)
                summary.extra.pop("max_depth", None)

    def _rows(self, ctx: RunContext) -> list[dict[str, Any]]:
        person = [
            f.boxes[i] for f in self.frames for i, lb in enumerate(f.labels) if lb == "person"
        ]
        ground = self.geometric.calibrate(np.array(person)) if person else None
        if ground is not None:
            log.info(
                "depth: ground plane from %d person boxes: horizon y=%.0f, camera %.2f m",
                ground.boxes_used,
                ground.horizon_y,
                ground.camera_height,
            )
        ratios = self._keyframe_ratios() if self.model is not None else None
        rows: list[dict[str, Any]] = []
        per_track: dict[int, list[float]] = {}
        for entry in self.frames:
            if not len(entry.boxes):
                continue
            stats = np.stack(self.geometric.estimate(entry.boxes, entry.labels), axis=1)
            methods = [self.fallback_method] * len(stats)
            if entry.model_stats is not None:
                stats, methods = entry.model_stats, [self.method_model] * len(stats)
            elif ratios is not None:
                scale = ratios(entry.frame_number, entry.track_ids)
                if scale is not None:
                    stats = stats * np.stack([scale, scale, scale, scale**2], axis=1)
                    methods = [f"{self.method_model}+geometric"] * len(stats)
            for box, label, tid, stat, method in zip(
                entry.boxes, entry.labels, entry.track_ids, stats, methods, strict=True
            ):
                rows.append(
                    {
                        "frame_number": entry.frame_number,
                        "track_id": tid,
                        "class_name": label,
                        "bbox": [round(float(v), 2) for v in box],
                        "avg_depth": round(float(stat[0]), 4),
                        "min_depth": round(float(stat[1]), 4),
                        "max_depth": round(float(stat[2]), 4),
                        "depth_variance": round(float(stat[3]), 6),
                        "method": method,
                    }
                )
                if tid is not None:
                    per_track.setdefault(tid, []).append(float(stat[0]))
            if entry.model_stats is None:
                rows.append(_objects_summary(entry.frame_number, stats, methods[0]))
        rows.extend(self.keyframe_rows)
        for tid, depths in per_track.items():
            summary = ctx.tracks.get(tid)
            if summary is not None:
                extra = summary.extra
                extra["depth_sum"] = extra.get("depth_sum", 0.0) + float(np.sum(depths))
                extra["depth_n"] = extra.get("depth_n", 0) + len(depths)
                extra["min_depth"] = round(min(extra.get("min_depth", np.inf), min(depths)), 4)
                extra["max_depth"] = round(max(extra.get("max_depth", -np.inf), max(depths)), 4)
        rows.sort(key=lambda r: (r["frame_number"], r["class_name"] is not None))
        return rows

    def _keyframe_ratios(self) -> Any:
        """A function (frame, track ids) -> model/geometric scale per box, or None."""
        by_track: dict[int, list[tuple[int, float]]] = {}
        by_frame: list[tuple[int, float]] = []
        for entry in self.frames:
            if entry.model_stats is None:
                continue
            geometric = self.geometric.estimate(entry.boxes, entry.labels)[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = entry.model_stats[:, 0] / geometric
            good = np.isfinite(ratio) & (ratio > 0)
            if not good.any():
                continue
            by_frame.append((entry.frame_number, float(np.median(ratio[good]))))
            for tid, r, ok in zip(entry.track_ids, ratio, good, strict=True):
                if tid is not None and ok:
                    by_track.setdefault(tid, []).append((entry.frame_number, float(r)))
        if not by_frame:
            return None
        frame_x, frame_r = np.array(by_frame).T

        def scale(frame_number: int, track_ids: list[int | None]) -> np.ndarray:
            fallback = float(np.interp(frame_number, frame_x, frame_r))
            out = np.full(len(track_ids), fallback)
            for i, tid in enumerate(track_ids):
                seen = by_track.get(tid) if tid is not None else None
                if seen:
                    xs, rs = zip(*seen, strict=True)
                    out[i] = float(np.interp(frame_number, xs, rs))
            return out

        return scale


def _frame_summary(frame_number: int, depth_map: np.ndarray, method: str) -> dict[str, Any]:
    import cv2

    compact = cv2.resize(depth_map, MAP_SIZE, interpolation=cv2.INTER_AREA).astype(np.float16)
    return {
        "frame_number": frame_number,
        "track_id": None,
        "class_name": None,
        "bbox": None,
        "avg_depth": round(float(depth_map.mean()), 4),
        "min_depth": round(float(depth_map.min()), 4),
        "max_depth": round(float(depth_map.max()), 4),
        "depth_variance": round(float(depth_map.var()), 6),
        "method": method,
        "depth_map": compact.tobytes(),
    }


def _objects_summary(frame_number: int, stats: np.ndarray, method: str) -> dict[str, Any]:
    return {
        "frame_number": frame_number,
        "track_id": None,
        "class_name": None,
        "bbox": None,
        "avg_depth": round(float(stats[:, 0].mean()), 4),
        "min_depth": round(float(stats[:, 1].min()), 4),
        "max_depth": round(float(stats[:, 2].max()), 4),
        "depth_variance": round(float(stats[:, 0].var()), 6),
        "method": method,
    }
