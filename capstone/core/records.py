"""What analysis produces, in memory: track summaries and records (boxes are `Detections`).

A stage emits records of a `Record` kind (dicts keyed by column); `capstone.store` maps
each kind to its table and fills in `video_id`/`analysis_id`. `Rows` groups them by kind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
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


def objects_of(tracks: Mapping[int, TrackSummary], among: Collection[int]) -> dict[int, list[int]]:
    """The objects the tracks in `among` make up: identity id (`extra["identity_id"]`, set by
    the `identity` stage when it linked tracks; else the track's own id) -> its track ids.

    >>> a, b, c = (TrackSummary(i, 0, "person", 0, 0, 0.0, 0.0) for i in (1, 2, 3))
    >>> a.extra["identity_id"] = b.extra["identity_id"] = 1
    >>> objects_of({1: a, 2: b, 3: c}, among={1, 2, 3})
    {1: [1, 2], 3: [3]}
    """
    groups: dict[int, list[int]] = defaultdict(list)
    for tid, summary in sorted(tracks.items()):
        if tid in among:
            groups[int(summary.extra.get("identity_id") or tid)].append(tid)
    return dict(groups)
