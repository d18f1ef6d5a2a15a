"""Detect on some frames, carry the tracks between them (`AnalysisParams.detect_every`).

Which frames go to the detector (`DetectionSchedule`):

- `detect_every=N`: every Nth sampled frame (counted from the video's first frame, so a
  chunk's frames are the same whichever worker runs it);
- `detect_every="auto"`: a frame is detected when the picture has changed since the last
  detected frame (mean absolute difference of 64 px wide grey thumbnails above
  `AUTO_CHANGE`: fast motion near the camera, a cut, a pan), and at least every
  `AUTO_MAX_GAP` sampled frames; the first frame of every chunk's warm-up is always
  detected. So a calm scene is detected every 3rd frame and a fast one every frame: the
  guard for footage where carried boxes would drift. The rule
  reads only the pictures, never the tracks, so a chunk decides the same frames whether it
  runs after its predecessor, alone after a crash, or on another machine.

Between detections each box of the last frame is moved by the sparse optical flow of
points inside it (pyramidal Lucas-Kanade on the grey frame; median shift and scale), and
the moved boxes go to the tracker as that frame's detections with the track's last
confidence, so tracks keep their ids. A box whose points are lost is dropped (the tracker
coasts it). Rows of propagated boxes are stored like detections with
`attributes.propagated = true` and `confidence` NULL.

>>> DetectionSchedule.of("auto").auto, DetectionSchedule.of(3).every
(True, 3)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from capstone.core.detections import Detections
from capstone.core.video import Frame
from capstone.models.detector import Detector

# Auto mode. 4.0 grey levels (0..255) of mean change on the 64 px thumbnail is what one frame
# of TUD-Campus's close, fast pedestrians changes (its median): a scene changing that fast is
# detected every frame, slower ones every 3rd; a cut (change ~80) is detected at once.
AUTO_CHANGE = 4.0
AUTO_MAX_GAP = 3  # sampled frames between detections at most, in auto mode
THUMB_WIDTH = 64
# flow points in the box's central part (people are thin: the box's sides are background)
_GX, _GY = np.meshgrid([0.35, 0.5, 0.65], [0.15, 0.3, 0.45, 0.6, 0.75, 0.9])
GRID_X, GRID_Y = _GX.reshape(-1), _GY.reshape(-1)
MIN_POINTS = 4
WINDOW, LEVELS = (15, 15), 2
HALF_FROM = 640
FORWARD_BACKWARD_PX = 1.0  # a point must come back to within this of where it started


@dataclass
class DetectionSchedule:
    """Which sampled frames are detected; see the module docstring."""

    every: int = 1
    auto: bool = False

    @classmethod
    def of(cls, value: int | str) -> DetectionSchedule:
        return cls(every=AUTO_MAX_GAP, auto=True) if value == "auto" else cls(every=int(value))

    @property
    def always(self) -> bool:
        return not self.auto and self.every == 1


def _thumb(image: np.ndarray) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w)))
    return cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


class _Group:
    """A detected frame and the frames carried after it (the detector sees `.image`)."""

    __slots__ = ("frames", "image")

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.image = frames[0].image


def _groups(
    frames: Iterator[Frame], schedule: DetectionSchedule, step: int, restarts: Sequence[int]
) -> Iterator[_Group]:
    restart_at = set(restarts)
    group: list[Frame] = []
    last_thumb: np.ndarray | None = None
    since = 0
    for frame in frames:
        if schedule.auto:
            thumb = _thumb(frame.image)
            changed = last_thumb is None or (
                float(np.mean(np.abs(thumb.astype(np.int16) - last_thumb))) > AUTO_CHANGE
            )
            detect = changed or since + 1 >= schedule.every or frame.index in restart_at
        else:
            detect = (frame.index // step) % schedule.every == 0 or frame.index in restart_at
        if not group:
            detect = True
        if detect:
            if group:
                yield _Group(group)
            group = [frame]
            since = 0
            if schedule.auto:
                last_thumb = thumb
        else:
            group.append(frame)
            since += 1
    if group:
        yield _Group(group)


def selective_stream(
    detector: Detector,
    frames: Iterator[Frame],
    schedule: DetectionSchedule,
    *,
    step: int = 1,
    restarts: Sequence[int] = (),
) -> Iterator[tuple[Frame, Detections | None]]:
    """`(frame, detections)` for the detected frames and `(frame, None)` for the others, in
    order; the detected frames still go through the detector several at a time. A frame
    whose index is in `restarts` (chunk warm-up starts) is always detected."""
    if schedule.always:
        yield from detector.stream(frames)
        return
    for group, dets in detector.stream(_groups(frames, schedule, step, restarts)):
        yield group.frames[0], dets
        for frame in group.frames[1:]:
            yield frame, None


class BoxPropagator:
    """Moves the last frame's boxes (what the tracker was given: detections, or boxes
    carried already) onto the next frame by sparse optical flow. Carrying the tracker's
    *input* keeps a new object alive until the tracker confirms it on the next frame.
    Each frame is converted to grey once (carried to, then carried from)."""

    def __init__(self) -> None:
        self.grey: np.ndarray | None = None
        self.last: Detections | None = None
        self._cached: tuple[int, np.ndarray] | None = None

    def _grey_of(self, image: np.ndarray) -> np.ndarray:
        import cv2

        if self._cached is not None and self._cached[0] == id(image):
            return self._cached[1]
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self._scale(image) != 1.0:
            grey = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        self._cached = (id(image), grey)
        return grey

    @staticmethod
    def _scale(image: np.ndarray) -> float:
        """Flow runs at half resolution on frames at least `HALF_FROM` pixels wide."""
        return 0.5 if image.shape[1] >= HALF_FROM else 1.0

    def observe(self, image: np.ndarray, given: Detections) -> None:
        """The frame just tracked and the boxes the tracker was given for it."""
        self.grey = self._grey_of(image)
        self.last = given
        self._cached = None

    def propagate(self, image: np.ndarray) -> Detections:
        """The last boxes moved onto `image`, with their confidence."""
        import cv2

        last = self.last
        if last is None or self.grey is None or not len(last):
            return Detections.empty(last.class_names if last is not None else {})
        current = self._grey_of(image)
        factor = self._scale(image)
        boxes = last.xyxy * factor
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        px = boxes[:, [0]] + w[:, None] * GRID_X[None, :]
        py = boxes[:, [1]] + h[:, None] * GRID_Y[None, :]
        points = np.stack([px, py], axis=2).reshape(-1, 1, 2).astype(np.float32)
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            self.grey, current, points, None, winSize=WINDOW, maxLevel=LEVELS
        )
        back, status_back, _ = cv2.calcOpticalFlowPyrLK(
            current, self.grey, moved, None, winSize=WINDOW, maxLevel=LEVELS
        )
        n = len(GRID_X)
        round_trip = np.linalg.norm((back - points).reshape(-1, n, 2), axis=2)
        ok = (status.reshape(-1, n) & status_back.reshape(-1, n)).astype(bool)
        ok &= round_trip < FORWARD_BACKWARD_PX
        before, after = points.reshape(-1, n, 2), moved.reshape(-1, n, 2)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # boxes with no good point
            a = np.where(ok[..., None], before, np.nan)
            b = np.where(ok[..., None], after, np.nan)
            shift = np.nanmedian(b - a, axis=1)
            spread_a = np.nanmean(np.linalg.norm(a - np.nanmean(a, axis=1)[:, None], axis=2), 1)
            spread_b = np.nanmean(np.linalg.norm(b - np.nanmean(b, axis=1)[:, None], axis=2), 1)
            scale = np.where(spread_a > 1e-6, np.clip(spread_b / spread_a, 0.8, 1.25), 1.0)
        keep = ok.sum(axis=1) >= MIN_POINTS
        if not keep.any():
            return Detections.empty(last.class_names)
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 + shift[:, 0]
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 + shift[:, 1]
        hw, hh = w * scale / 2, h * scale / 2
        out = np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1)[keep]
        idx = np.flatnonzero(keep)
        return Detections(
            (out / factor).astype(np.float32),
            last.confidence[idx],
            last.class_id[idx],
            None,
            last.class_names,
        )
