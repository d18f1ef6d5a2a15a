"""The contract between the pipeline and its stages: rows are emitted, chunks are flushed.

A video is analyzed in time chunks (`capstone.chunks`). Within a chunk the pipeline decodes
each sampled frame once, detects and tracks, and hands the frame and its tracked
`Detections` to every enabled stage while the image is still in memory:

- `process(frame, detections, ctx)` looks at one frame and may emit rows at once with
  `ctx.emit(table, row)` (one place where rows leave a stage);
- `end_chunk(ctx)` emits what the stage held back for the chunk and returns the chunk's
  *state*: a small JSON-able summary (counts per time bucket, a heatmap grid, appearance
  vectors) that the publish step merges. The pipeline flushes the emitted rows to the
  staging tables as they come and at every chunk end (one place where rows are flushed),
  so nothing of a chunk stays in memory after it;
- `publish(video)` (a classmethod: no models are loaded for it) runs once per analysis,
  after every chunk is staged and the chunks' tracks are stitched. It sees the whole video
  through `VideoResult` (merged track summaries, every tracked box as compact arrays, the
  chunk states read back one chunk at a time) and emits the rows that need all of it
  (identity repair, enter/exit, line crossings, trails).

A stage keeps state only for its chunk and for live tracks; `RunContext.tracks` holds the
chunk's track summaries (first/last box, counts, best box), never every observation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from capstone.detections import Detections
from capstone.media import Frame, VideoInfo
from capstone.params import AnalysisParams

# table name -> rows (dicts keyed by column). `video_id`/`analysis_id` are filled in by store.
Rows = dict[str, list[dict[str, Any]]]
Emit = Callable[[str, dict[str, Any]], None]


def _discard(table: str, row: dict[str, Any]) -> None:
    """The default sink of a context built by hand (tests): rows go nowhere."""


@dataclass
class RunContext:
    """What every stage may read while a chunk runs: the video, the parameters, the
    chunk's tracks so far, and where rows go."""

    video_id: str
    info: VideoInfo
    params: AnalysisParams
    sample_fps: float
    class_names: dict[int, str]
    tracks: dict[int, TrackSummary] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    emit: Emit = _discard
    chunk_index: int = 0


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


@dataclass
class VideoResult:
    """What `Stage.publish` sees: the whole analysis once every chunk is staged."""

    video_id: str
    info: VideoInfo
    params: AnalysisParams
    sample_fps: float
    frame_step: int
    tracks: dict[int, TrackSummary]  # final track id -> merged summary (no observations)
    observations: Observations  # every tracked box, with final track ids
    chunk_states: Callable[[str], Iterator[dict[str, Any]]]  # a stage's state per chunk
    first_frame: int  # first and last sampled frame the analysis saw
    last_frame: int
    final_id_of: dict[int, int] = field(default_factory=dict)  # staged track id -> final
    members: dict[int, list[int]] = field(default_factory=dict)  # final -> staged, in order
    rows: Rows = field(default_factory=dict)  # rows emitted while publishing
    timings: dict[str, float] = field(default_factory=dict)

    def emit(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)

    def states(self, stage: str) -> Iterator[dict[str, Any]]:
        """The state `stage` returned for each chunk, in chunk order, read one at a time."""
        return self.chunk_states(stage)


class Stage(Protocol):
    name: str

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        """Look at one sampled frame (BGR image in memory) and its tracked detections."""

    def end_chunk(self, ctx: RunContext) -> dict[str, Any]:
        """Emit the chunk's held-back rows; return the chunk's JSON-able state."""

    @classmethod
    def publish(cls, video: VideoResult) -> None:
        """Emit the rows that need the whole video (after all chunks, once per analysis)."""
