"""Drawing helpers for notebooks and reports: boxes, labels and track trails on frames.

Images are BGR (OpenCV's convention, like `capstone.core.video.Frame.image`); `to_rgb` turns one
into what matplotlib's `imshow` expects.

>>> import numpy as np
>>> from capstone.core.detections import Detections
>>> image = np.zeros((120, 160, 3), dtype=np.uint8)
>>> dets = Detections([[10, 20, 60, 100]], [0.9], [0], np.array([3]), {0: "person"})
>>> out = draw_detections(image, dets)
>>> out.shape, bool(out.any()), bool(image.any())
((120, 160, 3), True, False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from capstone.core.detections import Detections

# BGR colours, distinct enough for neighbouring track ids.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (75, 25, 230),
    (75, 180, 60),
    (25, 225, 255),
    (200, 130, 0),
    (48, 130, 245),
    (180, 30, 145),
    (240, 240, 70),
    (230, 50, 240),
    (60, 245, 210),
    (212, 190, 250),
    (128, 128, 0),
    (255, 190, 220),
    (40, 110, 170),
    (0, 0, 128),
    (195, 255, 170),
    (0, 128, 128),
)
UNTRACKED = (160, 160, 160)


def color_of(track_id: int | None) -> tuple[int, int, int]:
    """A stable BGR colour per track id (grey for untracked boxes)."""
    if track_id is None or track_id < 0:
        return UNTRACKED
    return PALETTE[int(track_id) % len(PALETTE)]


def draw_detections(
    image: np.ndarray,
    detections: Detections,
    *,
    extra: Sequence[str] | None = None,
    thickness: int = 2,
    font_scale: float = 0.45,
) -> np.ndarray:
    """A copy of `image` with each box, its class, confidence and track id drawn.

    `extra` adds one text per box to its label (e.g. a depth `"7.4 m"`).
    """
    import cv2

    if extra is not None and len(extra) != len(detections):
        raise ValueError("extra must have one entry per detection")
    out = np.ascontiguousarray(image).copy()
    ids = detections.tracker_id
    labels = detections.labels
    for i, box in enumerate(detections.xyxy):
        tid = int(ids[i]) if ids is not None else None
        color = color_of(tid)
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        parts = [f"#{tid}"] if tid is not None and tid >= 0 else []
        parts.append(f"{labels[i]} {float(detections.confidence[i]):.2f}")
        if extra is not None:
            parts.append(str(extra[i]))
        text = " ".join(parts)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + base + 2), color, -1)
        cv2.putText(
            out, text, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1,
            cv2.LINE_AA,
        )  # fmt: skip
    return out


def draw_trails(
    image: np.ndarray,
    trails: Mapping[int, Sequence[tuple[float, float]]],
    *,
    thickness: int = 2,
) -> np.ndarray:
    """A copy of `image` with one polyline per track id (points in pixels, oldest first)."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    for tid, points in trails.items():
        if len(points) < 2:
            continue
        pts = np.round(np.asarray(points, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [pts], False, color_of(tid), thickness, cv2.LINE_AA)
        cv2.circle(out, tuple(int(v) for v in pts[-1, 0]), thickness + 2, color_of(tid), -1)
    return out


def to_rgb(image: np.ndarray) -> np.ndarray:
    """BGR -> RGB (for matplotlib)."""
    return np.ascontiguousarray(np.asarray(image)[..., ::-1])


def trails_of(tracked: Sequence[Detections]) -> dict[int, list[tuple[float, float]]]:
    """Box bottom-centre points per track id over a sequence of tracked frames."""
    trails: dict[int, list[tuple[float, float]]] = {}
    for dets in tracked:
        if dets.tracker_id is None:
            continue
        for tid, (x1, _y1, x2, y2) in zip(dets.tracker_id, dets.xyxy, strict=True):
            trails.setdefault(int(tid), []).append(((float(x1) + float(x2)) / 2, float(y2)))
    return trails


def draw_heat(
    image: np.ndarray, counts: Sequence[Sequence[float]], alpha: float = 0.6
) -> np.ndarray:
    """A copy of `image` (BGR) with a grid of counts (top row first) drawn over it as a heat
    layer: log-scaled, JET colours, more opaque where there is more.

    >>> image = np.zeros((90, 120, 3), np.uint8)
    >>> out = draw_heat(image, [[0, 0, 0], [0, 0, 9]])
    >>> bool(out[80, 110].any()), bool(out[5, 5].any()), bool(image.any())
    (True, False, False)
    """
    import cv2

    grid = np.log1p(np.asarray(counts, np.float32))
    if grid.size == 0 or float(grid.max()) <= 0:
        return image.copy()
    h, w = image.shape[:2]
    scaled = (255 * grid / float(grid.max())).astype(np.uint8)
    big = cv2.resize(scaled, (w, h), interpolation=cv2.INTER_LINEAR)
    color = cv2.applyColorMap(big, cv2.COLORMAP_JET)
    weight = (big.astype(np.float32) / 255.0)[..., None] * alpha
    return (image * (1 - weight) + color * weight).astype(np.uint8)
