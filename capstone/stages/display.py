"""Display stage: visualization data the dashboard draws directly (`apps_db_displaydata`).

Rows, by `kind`:

- `thumbnail`: one per keyframe (see `keyframes.py`): a small JPEG (default 320 px wide)
  with boxes and track ids drawn; `data` lists the objects in original pixel coordinates.
- `trails`: one row; per track a downsampled polyline of box centres `[x, y, frame]`.
- `heatmap`: one row; a grid (default 64x48) of foot-point counts, overall and per class,
  plus a PNG of the heatmap over the first keyframe.
- `counts`: one row; per-class object counts per time bucket (mean and max per frame).

Thumbnails are emitted as their frames pass; the heatmap grid, the count buckets and the
background are the chunk's state, merged with the trails (from every tracked box of the
video) in `publish`. Everything lives in the database (no S3). Options (`AnalysisParams.options`):
`thumbnail_width` (320), `heatmap_grid` ([64, 48]), `count_bucket_s` (1.0),
`trail_min_step` (fraction of the frame diagonal between kept trail points, 0.01), and the
keyframe options `keyframe_every_s`, `scene_change_threshold`.

>>> from capstone.runtime.pipeline import analyze
>>> from capstone.stages.params import AnalysisParams
>>> analyze("clip.mp4", params=AnalysisParams(stages=("track", "display")))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from capstone.core.detections import Detections
from capstone.core.drawing import draw_detections
from capstone.core.records import Record
from capstone.core.video import Frame
from capstone.stages.base import Number, RunContext, Stage, VideoResult
from capstone.stages.keyframes import KeyframeOptions, is_keyframe, selector_for

JPEG_QUALITY = 80


GridSide = Annotated[int, Field(ge=1, le=512, strict=True)]


class DisplayOptions(KeyframeOptions):
    """Thumbnail width (px), occupancy grid [columns, rows], count bucket (s), and the
    smallest trail step kept (fraction of the frame)."""

    thumbnail_width: Annotated[Number, Field(ge=32, le=1920)] = 320
    heatmap_grid: tuple[GridSide, GridSide] = (64, 48)
    count_bucket_s: Annotated[Number, Field(ge=0.01, le=3600.0)] = 1.0
    trail_min_step: Annotated[Number, Field(ge=0.0, le=1.0)] = 0.01


def annotate_thumbnail(
    image: np.ndarray, detections: Detections, width: int = 320
) -> tuple[np.ndarray, float]:
    """A copy of `image` scaled to `width` px with boxes, class names and track ids drawn.

    Returns the thumbnail and the scale factor applied to pixel coordinates.
    """
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    thumb = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    scaled = Detections(
        detections.xyxy * scale,
        detections.confidence,
        detections.class_id,
        detections.tracker_id,
        detections.class_names,
    )
    return draw_detections(thumb, scaled, thickness=1, font_scale=0.35), scale


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def downsample_trail(
    points: list[tuple[float, float, int]], min_step: float
) -> list[list[float | int]]:
    """Keep a point once it is `min_step` pixels from the last kept one; always keep the ends.

    >>> downsample_trail([(0, 0, 1), (1, 0, 2), (5, 0, 3), (6, 0, 4)], 3.0)
    [[0.0, 0.0, 1], [5.0, 0.0, 3], [6.0, 0.0, 4]]
    """
    kept: list[list[float | int]] = []
    for i, (x, y, frame) in enumerate(points):
        last = kept[-1] if kept else None
        is_end = i == len(points) - 1
        if (
            last is None
            or is_end
            or (x - float(last[0])) ** 2 + (y - float(last[1])) ** 2 >= min_step**2
        ):
            kept.append([round(float(x), 1), round(float(y), 1), int(frame)])
    return kept


class DisplayStage(Stage):
    """Collects thumbnails, occupancy and counts while frames pass; trails from the tracks."""

    name = "display"
    Options = DisplayOptions
    after = ("identity",)
    emits = (Record.DISPLAY,)

    def __init__(self, ctx: RunContext) -> None:
        options = DisplayOptions.pick(ctx.params.options)
        self.keyframes = selector_for(ctx)
        self.thumb_width = int(options.thumbnail_width)
        self.grid_w, self.grid_h = options.heatmap_grid
        self.bucket_s = options.count_bucket_s
        self.trail_step = options.trail_min_step
        self.width, self.height = ctx.info.width, ctx.info.height
        self.heat: dict[str, np.ndarray] = {}
        # time bucket -> [frames, per-class sum, per-class max]
        self.buckets: dict[int, list[Any]] = {}
        self.background: np.ndarray | None = None

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        labels = detections.labels
        counted = Counter(labels)
        bucket = self.buckets.setdefault(int(frame.timestamp // self.bucket_s), [0, {}, {}])
        bucket[0] += 1
        for c, n in counted.items():
            bucket[1][c] = bucket[1].get(c, 0) + n
            bucket[2][c] = max(bucket[2].get(c, 0), n)
        if len(detections):
            h, w = frame.image.shape[:2]
            xyxy = detections.xyxy
            gx = np.clip(
                ((xyxy[:, 0] + xyxy[:, 2]) / 2 / w * self.grid_w).astype(int), 0, self.grid_w - 1
            )
            gy = np.clip((xyxy[:, 3] / h * self.grid_h).astype(int), 0, self.grid_h - 1)
            for label in set(labels):
                mask = np.array([lab == label for lab in labels])
                grid = self.heat.setdefault(label, np.zeros((self.grid_h, self.grid_w), np.int64))
                np.add.at(grid, (gy[mask], gx[mask]), 1)
        if not is_keyframe(frame, ctx):
            return
        thumb, scale = annotate_thumbnail(frame.image, detections, self.thumb_width)
        if self.background is None:
            self.background = annotate_thumbnail(frame.image, Detections.empty(), self.thumb_width)[
                0
            ]
        ids = detections.tracker_id
        objects = [
            {
                "track_id": int(ids[i]) if ids is not None and ids[i] >= 0 else None,
                "class_name": labels[i],
                "confidence": round(float(detections.confidence[i]), 3),
                "bbox": [round(float(v), 1) for v in detections.xyxy[i]],
            }
            for i in range(len(detections))
        ]
        ctx.emit(
            Record.DISPLAY,
            {
                "kind": "thumbnail",
                "frame_number": frame.index,
                "timestamp": round(frame.timestamp, 4),
                "image": encode_jpeg(thumb),
                "data": {
                    "format": "jpeg",
                    "width": thumb.shape[1],
                    "height": thumb.shape[0],
                    "scale": round(scale, 6),
                    "reason": self.keyframes.reasons[-1],
                    "counts": dict(Counter(labels)),
                    "objects": objects,
                },
            },
        )

    def end_chunk(self, ctx: RunContext) -> dict[str, Any]:
        background = None
        if self.background is not None:
            background = base64.b64encode(encode_jpeg(self.background, 90)).decode()
        return {
            "heat": {label: grid.tolist() for label, grid in self.heat.items()},
            "buckets": {str(k): v for k, v in self.buckets.items()},
            "background": background,
        }

    @classmethod
    def publish(cls, video: VideoResult) -> None:
        """Trails, heatmap and counts of the whole video."""
        import cv2

        stage = cls(video)  # type: ignore[arg-type]
        for state in video.states(cls.name):
            for label, grid in state["heat"].items():
                total = stage.heat.setdefault(
                    label, np.zeros((stage.grid_h, stage.grid_w), np.int64)
                )
                total += np.asarray(grid, np.int64)
            for key, (frames, sums, maxima) in state["buckets"].items():
                bucket = stage.buckets.setdefault(int(key), [0, {}, {}])
                bucket[0] += frames
                for c, n in sums.items():
                    bucket[1][c] = bucket[1].get(c, 0) + n
                for c, n in maxima.items():
                    bucket[2][c] = max(bucket[2].get(c, 0), n)
            if stage.background is None and state.get("background"):
                jpeg = np.frombuffer(base64.b64decode(state["background"]), np.uint8)
                stage.background = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        for row in (stage._trails(video), stage._heatmap(), stage._counts()):
            video.emit(Record.DISPLAY, row)

    def _trails(self, video: VideoResult) -> dict[str, Any]:
        min_step = self.trail_step * float(np.hypot(self.width, self.height))
        obs = video.observations
        tracks = []
        for tid, part in obs.by_track():
            summary = video.tracks[tid]
            b = obs.xyxy[part]
            centres = zip(
                ((b[:, 0] + b[:, 2]) / 2).tolist(),
                ((b[:, 1] + b[:, 3]) / 2).tolist(),
                obs["frame"][part].tolist(),
                strict=True,
            )
            points = list(centres)
            tracks.append(
                {
                    "track_id": summary.track_id,
                    "class_name": summary.class_name,
                    "first_frame": summary.first_frame,
                    "last_frame": summary.last_frame,
                    "points": downsample_trail(points, min_step),
                }
            )
        return {
            "kind": "trails",
            "data": {"width": self.width, "height": self.height, "point": "[x, y, frame]",
                     "tracks": tracks},
        }  # fmt: skip

    def _heatmap(self) -> dict[str, Any]:
        total = np.zeros((self.grid_h, self.grid_w), np.int64)
        for grid in self.heat.values():
            total += grid
        return {
            "kind": "heatmap",
            "image": self._heatmap_png(total),
            "data": {
                "format": "png",
                "grid_w": self.grid_w,
                "grid_h": self.grid_h,
                "width": self.width,
                "height": self.height,
                "point": "box bottom centre",
                "max": int(total.max()),
                "counts": total.tolist(),
                "per_class": {k: v.tolist() for k, v in sorted(self.heat.items())},
            },
        }

    def _heatmap_png(self, total: np.ndarray) -> bytes:
        import cv2

        if self.background is not None:
            h, w = self.background.shape[:2]
        else:
            scale = min(1.0, self.thumb_width / max(1, self.width))
            w, h = max(1, round(self.width * scale)), max(1, round(self.height * scale))
        level = np.log1p(total.astype(np.float32))
        level = (255 * level / max(1e-6, float(level.max()))).astype(np.uint8)
        big = cv2.resize(level, (w, h), interpolation=cv2.INTER_LINEAR)
        color = cv2.applyColorMap(big, cv2.COLORMAP_JET)
        if self.background is not None:
            gray = cv2.cvtColor(
                cv2.cvtColor(self.background, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR
            )
        else:
            gray = np.zeros_like(color)
        alpha = (big.astype(np.float32) / 255.0)[..., None] * 0.7
        out = (gray * (1 - alpha) + color * alpha).astype(np.uint8)
        ok, buf = cv2.imencode(".png", out)
        if not ok:
            raise ValueError("PNG encoding failed")
        return buf.tobytes()

    def _counts(self) -> dict[str, Any]:
        classes = sorted({c for _, sums, _ in self.buckets.values() for c in sums})
        n_buckets = 1 + max(self.buckets, default=0)
        sums = np.zeros((len(classes), n_buckets), np.float64)
        maxima = np.zeros((len(classes), n_buckets), np.int64)
        frames = np.zeros(n_buckets, np.int64)
        index = {c: i for i, c in enumerate(classes)}
        for b, (n_frames, bucket_sums, bucket_max) in self.buckets.items():
            frames[b] += n_frames
            for c, n in bucket_sums.items():
                sums[index[c], b] += n
            for c, n in bucket_max.items():
                maxima[index[c], b] = max(maxima[index[c], b], n)
        means = sums / np.maximum(frames, 1)
        return {
            "kind": "counts",
            "data": {
                "bucket_s": self.bucket_s,
                "t": [round(b * self.bucket_s, 4) for b in range(n_buckets)],
                "frames": frames.tolist(),
                "classes": classes,
                "mean": {c: [round(float(v), 3) for v in means[index[c]]] for c in classes},
                "max": {c: maxima[index[c]].tolist() for c in classes},
            },
        }
