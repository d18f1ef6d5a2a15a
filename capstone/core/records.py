"""What analysis produces, in memory: track summaries and records (boxes are `Detections`).

A stage emits records of a `Record` kind (dicts keyed by column); `capstone.store` maps
each kind to its table and fills in `video_id`/`analysis_id`. `Rows` groups them by kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
    TRACK_ATTRIBUTES = "track_attributes"


Rows = dict[Record, list[dict[str, Any]]]


@dataclass
class TrackSummary:
    """Running aggregate of one track, maintained by the pipeline (its boxes go to the
    database as they come; the publish step reads them back as one `Detections`)."""

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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_confidence(self) -> float:
        return self.confidence_sum / max(1, self.length)
