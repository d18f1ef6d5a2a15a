"""What analysis produces, in memory: tracks (summaries and every box) and records.

A stage emits records of a `Record` kind (dicts keyed by column); `capstone.store` maps
each kind to its table and fills in `video_id`/`analysis_id`. `Rows` groups them by kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np


class Record(StrEnum):
    """The kinds of records stages emit (the store knows their tables).

    >>> Record.EVENT, Record("depth")
    (<Record.EVENT: 'event'>, <Record.DEPTH: 'depth'>)
    """

    EVENT = "event"
    TRACK = "track"
    DEPTH = "depth"
    DISPLAY = "display"
    FRAME_EMBEDDING = "frame_embedding"


Rows = dict[Record, list[dict[str, Any]]]


@dataclass
class TrackSummary:
    """Running aggregate of one track, maintained by the pipeline.

    During a chunk `observations` stays empty (boxes go to the database as they come);
    the publish step fills it for one object at a time where a stage asks for it.
    """

    track_id: int
    class_id: int
    class_name: str
    first_frame: int
    last_frame: int
    first_timestamp: float
    last_timestamp: float
    length: int = 0
    confidence_sum: float = 0.0
    best_score: float = -1.0
    best_frame: int | None = None
    best_bbox: list[float] | None = None
    observations: list[tuple[int, float, tuple[float, float, float, float]]] = field(
        default_factory=list
    )  # (frame, timestamp, xyxy)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_confidence(self) -> float:
        return self.confidence_sum / max(1, self.length)


@dataclass
class Observations:
    """Every tracked box of a video as column arrays, sorted by (track, frame).

    >>> obs = Observations.from_columns([5, 3, 4], [0.5, 0.3, 0.4], [2, 1, 1],
    ...                                 [[0, 0, 1, 1]] * 3, [0.9, 0.8, 0.7])
    >>> obs.track.tolist(), obs.frame.tolist()
    ([1, 1, 2], [3, 4, 5])
    >>> [tid for tid, _ in obs.by_track()]
    [1, 2]
    """

    frame: np.ndarray  # int64
    timestamp: np.ndarray  # float64
    track: np.ndarray  # int64
    boxes: np.ndarray  # (n, 4) float64, clipped xyxy as stored
    confidence: np.ndarray  # float64

    @classmethod
    def from_columns(
        cls, frame: Any, timestamp: Any, track: Any, boxes: Any, confidence: Any
    ) -> Observations:
        frame, track = np.asarray(frame, np.int64), np.asarray(track, np.int64)
        order = np.lexsort((frame, track))
        return cls(
            frame[order],
            np.asarray(timestamp, np.float64)[order],
            track[order],
            np.asarray(boxes, np.float64).reshape(-1, 4)[order],
            np.asarray(confidence, np.float64)[order],
        )

    def __len__(self) -> int:
        return len(self.frame)

    def by_track(self) -> Iterator[tuple[int, slice]]:
        """(track id, slice into the arrays) per track, in track order."""
        if not len(self.track):
            return
        cuts = np.flatnonzero(np.diff(self.track)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(self.track)]])
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            yield int(self.track[a]), slice(a, b)

    def relabel(self, mapping: dict[int, int]) -> Observations:
        """The same boxes with track ids mapped (ids not in `mapping` unchanged)."""
        track = np.array([mapping.get(t, t) for t in self.track.tolist()], np.int64)
        return Observations.from_columns(
            self.frame, self.timestamp, track, self.boxes, self.confidence
        )
