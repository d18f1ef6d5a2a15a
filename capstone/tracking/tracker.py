"""Track: Ultralytics' ByteTrack / BoT-SORT driven by our own `Detections`.

Because the tracker is fed detections rather than a model, the same code tracks external
detections too (MOT `det.txt`, see `capstone.eval.mot`).

>>> from capstone.core.video import iter_frames
>>> from capstone.models.detector import get_detector
>>> tracker = Tracker("bytetrack", frame_rate=25)  # doctest: +SKIP
>>> for frame, detections in get_detector().stream(iter_frames("clip.mp4")):  # doctest: +SKIP
...     tracked = tracker.update(detections, frame.image)
...     print(frame.index, tracked.tracker_id)

(`Tracker` has an example without a video.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capstone.core.detections import Detections

TRACKERS = ("bytetrack", "botsort")


def tracker_config(kind: str, **overrides: Any) -> Any:
    """Ultralytics' tracker settings for `kind`, with overrides applied."""
    import ultralytics
    from ultralytics.utils import YAML, IterableSimpleNamespace

    if kind not in TRACKERS:
        raise ValueError(f"unknown tracker {kind!r}; choose one of {', '.join(TRACKERS)}")
    path = Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{kind}.yaml"
    cfg = dict(YAML.load(path))
    cfg.update(overrides)
    return IterableSimpleNamespace(**cfg)


class Tracker:
    """Stateful multi-object tracker; call `update` once per sampled frame, in order.

    `frame_rate` is the rate of the *sampled* stream: the lost-track buffer (in frames) is
    scaled so that a track survives the same time however sparsely frames are sampled.

    Args:
        kind: `"bytetrack"` or `"botsort"` (Ultralytics' trackers; BoT-SORT without ReID).
        frame_rate: frames per second of the stream given to `update`.
        **overrides: Ultralytics tracker settings (`track_high_thresh`, `track_buffer`,
            `match_thresh`, ...; see `tracker_config`).

    `update(detections, image)` returns the tracked boxes as `Detections` with `tracker_id`
    set (the image is optional for ByteTrack; BoT-SORT uses it for camera motion).

    The example imports Ultralytics (about 2 s), so it is not run as a doctest:

    >>> import numpy as np
    >>> from capstone.core.detections import Detections
    >>> tracker = Tracker("bytetrack", frame_rate=25)  # doctest: +SKIP
    >>> dets = Detections([[10, 10, 50, 90], [100, 20, 140, 100]], [0.9, 0.8], [0, 0])
    >>> [tracker.update(dets).tracker_id.tolist() for _ in range(3)]  # doctest: +SKIP
    [[1, 2], [1, 2], [1, 2]]
    """

    def __init__(self, kind: str = "bytetrack", *, frame_rate: float = 30.0, **overrides: Any):
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker

        cfg = tracker_config(kind, **overrides)
        if "track_buffer" not in overrides:
            cfg.track_buffer = max(1, round(cfg.track_buffer * frame_rate / 30.0))
        if kind == "botsort":
            cfg.with_reid = False
        self.kind = kind
        self.config = cfg
        self._tracker = BOTSORT(cfg) if kind == "botsort" else BYTETracker(cfg)

    def update(self, detections: Detections, image: np.ndarray | None = None) -> Detections:
        """Assign track ids; returns the tracked boxes (the tracker's smoothed positions)."""
        from ultralytics.engine.results import Boxes

        shape = image.shape[:2] if image is not None else (1 << 15, 1 << 15)
        boxes = Boxes(detections.as_array(), shape)
        rows = self._tracker.update(boxes, image)
        if len(rows) == 0:
            empty = Detections.empty(detections.class_names)
            empty.tracker_id = np.zeros(0, dtype=np.int64)
            return empty
        rows = np.asarray(rows, dtype=np.float64)
        return Detections(
            xyxy=rows[:, :4].astype(np.float32),
            confidence=rows[:, 5].astype(np.float32),
            class_id=rows[:, 6].astype(np.int64),
            tracker_id=rows[:, 4].astype(np.int64),
            class_names=detections.class_names,
        )
