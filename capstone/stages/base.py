"""The contract between the pipeline and its stages: rows are emitted, chunks are flushed.

A video is analyzed in time chunks (`capstone.core.chunks`). Within a chunk the pipeline decodes
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

from capstone.core.detections import Detections
from capstone.core.records import Observations, Rows, TrackSummary
from capstone.core.video import Frame, VideoInfo
from capstone.stages.params import AnalysisParams

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
