"""`Detections`: the one currency type that flows between detect, track and later stages.

>>> import numpy as np
>>> dets = Detections(
...     xyxy=np.array([[0, 0, 10, 20], [5, 5, 15, 15]], dtype=np.float32),
...     confidence=np.array([0.9, 0.4], dtype=np.float32),
...     class_id=np.array([0, 2]),
...     class_names={0: "person", 2: "car"},
... )
>>> len(dets), dets[dets.confidence > 0.5].labels
(2, ['person'])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Detections:
    """Boxes of one frame: pixel `xyxy`, `confidence`, `class_id` and, once tracked,
    `tracker_id` (-1 where a box is not part of a track).

    Args:
        xyxy: (N, 4) corners `x1, y1, x2, y2` in pixels (anything `np.asarray` takes).
        confidence: (N,) scores in 0..1.
        class_id: (N,) class indices (COCO ids for the default detector).
        tracker_id: (N,) track ids, or None before tracking.
        class_names: class id -> name, for `labels`.

    Indexing with an int, a slice, an index list or a boolean mask returns a new
    `Detections`; the arrays are converted to float32 / int64 and checked for equal length.

    >>> dets = Detections([[0, 0, 10, 20], [5, 5, 15, 15]], [0.9, 0.4], [0, 2],
    ...                   class_names={0: "person", 2: "car"})
    >>> dets.labels, dets.area.tolist(), dets[1].xywh.tolist()
    (['person', 'car'], [200.0, 100.0], [[10.0, 10.0, 10.0, 10.0]])
    >>> [round(float(v), 2) for v in dets.as_array()[0]]  # the rows `from_array` reads
    [0.0, 0.0, 10.0, 20.0, 0.9, 0.0]
    >>> Detections.from_array(dets.as_array(), dets.class_names).filter_classes({2}).labels
    ['car']
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray | None = None
    class_names: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
        if len(self.confidence) != n or len(self.class_id) != n:
            raise ValueError("xyxy, confidence and class_id must have the same length")
        if self.tracker_id is not None and len(self.tracker_id) != n:
            raise ValueError("tracker_id must have one entry per box")

    @classmethod
    def empty(cls, class_names: Mapping[int, str] | None = None) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), None, class_names or {})

    @classmethod
    def from_array(
        cls, rows: np.ndarray, class_names: Mapping[int, str] | None = None
    ) -> Detections:
        """From an (N, 6) array of `x1, y1, x2, y2, confidence, class_id`."""
        rows = np.asarray(rows, dtype=np.float32).reshape(-1, 6)
        return cls(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), None, class_names or {})

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            None if self.tracker_id is None else self.tracker_id[index],
            self.class_names,
        )

    def __iter__(self) -> Iterator[Detections]:
        for i in range(len(self)):
            yield self[i]

    @property
    def labels(self) -> list[str]:
        return [self.class_names.get(int(c), str(int(c))) for c in self.class_id]

    @property
    def xywh(self) -> np.ndarray:
        """Centre x, centre y, width, height."""
        x1, y1, x2, y2 = self.xyxy.T
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1)

    @property
    def area(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])

    def as_array(self) -> np.ndarray:
        """(N, 6) `x1, y1, x2, y2, confidence, class_id` (the input of `from_array`)."""
        return np.concatenate(
            [self.xyxy, self.confidence[:, None], self.class_id[:, None].astype(np.float32)], axis=1
        )

    def filter_classes(self, class_ids: set[int] | None) -> Detections:
        if not class_ids:
            return self
        return self[np.isin(self.class_id, list(class_ids))]
