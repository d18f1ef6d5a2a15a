"""The contract between the pipeline and its per-frame stages.

The pipeline decodes each sampled frame once, detects and tracks, then hands the frame and
its tracked `Detections` to every enabled stage while the image is still in memory. At the
end each stage returns the rows it wants stored; the pipeline writes all of them in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from capstone.detections import Detections
from capstone.media import Frame, VideoInfo
from capstone.params import AnalysisParams

# table name -> rows (dicts keyed by column). `video_id`/`analysis_id` are filled in by store.
Rows = dict[str, list[dict[str, Any]]]


@dataclass
class RunContext:
    """What every stage may read: the video, the parameters, and the analysis so far."""

    video_id: str
    info: VideoInfo
    params: AnalysisParams
    sample_fps: float
    class_names: dict[int, str]
    tracks: dict[int, TrackSummary] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class TrackSummary:
    """Running aggregate of one track, maintained by the pipeline."""

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


class Stage(Protocol):
    name: str

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        """Look at one sampled frame (BGR image in memory) and its tracked detections."""

    def finish(self, ctx: RunContext) -> Rows:
        """Return the rows to store, keyed by table name."""

    # Optional: `finalize(self, rows: Rows, ctx: RunContext) -> None` sees the merged rows of
    # every stage just before they are stored (e.g. to embed all event descriptions).
