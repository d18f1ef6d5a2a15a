"""`Detections`: the one currency type that flows between detect, track and later stages.

One frame's boxes from the detector, the boxes of one track across frames (with per-box
`frame` and `timestamp` columns in `data`), a whole video's tracked boxes read back at
publish, or MOTChallenge rows: every stage and the identity repair take and give this.

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

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np


def _floats(values: Any) -> np.ndarray:
    """float32, or float64 where given float64 (stored boxes keep their precision)."""
    array = np.asarray(values)
    return array.astype(np.float64 if array.dtype == np.float64 else np.float32, copy=False)


@dataclass
class Detections:
    """Boxes: pixel `xyxy`, `confidence`, `class_id` and, once tracked, `tracker_id`
    (-1 where a box is not part of a track); `data` holds any further per-box column
    (`frame`, `timestamp`, `propagated`, ...), read as `dets["frame"]`.

    Args:
        xyxy: (N, 4) corners `x1, y1, x2, y2` in pixels (anything `np.asarray` takes).
        confidence: (N,) scores in 0..1.
        class_id: (N,) class indices (COCO ids for the default detector).
        tracker_id: (N,) track ids, or None before tracking.
        class_names: class id -> name, for `labels`.
        data: column name -> (N,) array, one value per box.

    Indexing with an int, a slice, an index list or a boolean mask returns a new
    `Detections` (every `data` column indexed alike); the arrays are converted to float32
    (float64 stays float64) / int64 and checked for equal length.

    >>> dets = Detections([[0, 0, 10, 20], [5, 5, 15, 15]], [0.9, 0.4], [0, 2],
    ...                   class_names={0: "person", 2: "car"})
    >>> dets.labels, dets.area.tolist(), dets[1].xywh.tolist()
    (['person', 'car'], [200.0, 100.0], [[10.0, 10.0, 10.0, 10.0]])
    >>> [round(float(v), 2) for v in dets.as_array()[0]]  # the rows `from_array` reads
    [0.0, 0.0, 10.0, 20.0, 0.9, 0.0]
    >>> Detections.from_array(dets.as_array(), dets.class_names).filter_classes({2}).labels
    ['car']

    Boxes of tracks across frames, grouped per track:

    >>> seen = Detections([[0, 0, 2, 2]] * 3, [0.9] * 3, [0] * 3, tracker_id=[7, 3, 3],
    ...                   data={"frame": np.array([4, 9, 8])}).sorted_by_track()
    >>> seen.tracker_id.tolist(), seen["frame"].tolist()
    ([3, 3, 7], [8, 9, 4])
    >>> [(tid, seen[part]["frame"].tolist()) for tid, part in seen.by_track()]
    [(3, [8, 9]), (7, [4])]
    >>> Detections.merge([seen, seen.with_tracker_ids({3: 1})]).tracker_id.tolist()
    [3, 3, 7, 1, 1, 7]
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray | None = None
    class_names: Mapping[int, str] = field(default_factory=dict)
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _floats(self.xyxy).reshape(-1, 4)
        self.confidence = _floats(self.confidence).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
        if len(self.confidence) != n or len(self.class_id) != n:
            raise ValueError("xyxy, confidence and class_id must have the same length")
        if self.tracker_id is not None and len(self.tracker_id) != n:
            raise ValueError("tracker_id must have one entry per box")
        self.data = {key: np.asarray(value).reshape(-1) for key, value in self.data.items()}
        if any(len(value) != n for value in self.data.values()):
            raise ValueError("every data column must have one entry per box")

    @classmethod
    def empty(cls, class_names: Mapping[int, str] | None = None) -> Detections:
        f32 = np.float32
        return cls(np.zeros((0, 4), f32), np.zeros(0, f32), np.zeros(0), None, class_names or {})

    @classmethod
    def from_array(
        cls, rows: np.ndarray, class_names: Mapping[int, str] | None = None
    ) -> Detections:
        """From an (N, 6) array of `x1, y1, x2, y2, confidence, class_id`."""
        rows = np.asarray(rows, dtype=np.float32).reshape(-1, 6)
        return cls(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), None, class_names or {})

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """The boxes of `parts` one after another (same `data` columns in each; tracker ids
        kept only where every part has them)."""
        if not parts:
            return cls.empty()
        keys = set(parts[0].data)
        if any(set(p.data) != keys for p in parts):
            raise ValueError("parts to merge must have the same data columns")
        tracked = all(p.tracker_id is not None for p in parts)
        names: dict[int, str] = {}
        for p in parts:
            names.update(p.class_names)
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.tracker_id for p in parts]) if tracked else None,  # type: ignore[misc]
            names,
            {key: np.concatenate([p.data[key] for p in parts]) for key in keys},
        )

    @overload
    def __getitem__(self, index: str) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: Any) -> Detections: ...

    def __getitem__(self, index: Any) -> Detections | np.ndarray:
        if isinstance(index, str):
            return self.data[index]
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            None if self.tracker_id is None else self.tracker_id[index],
            self.class_names,
            {key: value[index] for key, value in self.data.items()},
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

    def sorted_by_track(self, within: str = "frame") -> Detections:
        """Ordered by tracker id, then by the `within` column (default `frame`)."""
        order = np.lexsort((self.data[within], self.tracker_id))
        return self[order]

    def by_track(self) -> Iterator[tuple[int, slice]]:
        """(tracker id, slice) per track, for boxes already `sorted_by_track`."""
        if self.tracker_id is None or not len(self):
            return
        cuts = np.flatnonzero(np.diff(self.tracker_id)) + 1
        starts = np.concatenate([[0], cuts]).tolist()
        ends = np.concatenate([cuts, [len(self)]]).tolist()
        for a, b in zip(starts, ends, strict=True):
            yield int(self.tracker_id[a]), slice(a, b)

    def with_tracker_ids(self, mapping: Mapping[int, int]) -> Detections:
        """The same boxes with tracker ids mapped (ids not in `mapping` unchanged)."""
        if self.tracker_id is None:
            return self
        ids = np.array([mapping.get(t, t) for t in self.tracker_id.tolist()], np.int64)
        return Detections(
            self.xyxy, self.confidence, self.class_id, ids, self.class_names, dict(self.data)
        )

    def filter_classes(self, class_ids: set[int] | None) -> Detections:
        if not class_ids:
            return self
        return self[np.isin(self.class_id, list(class_ids))]
