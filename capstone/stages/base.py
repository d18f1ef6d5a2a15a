"""The contract between the pipeline and its stages: rows are emitted, chunks are flushed.

A video is analyzed in time chunks (`capstone.core.chunks`). Within a chunk the pipeline decodes
each sampled frame once, detects and tracks, and hands the frame and its tracked
`Detections` to every enabled stage while the image is still in memory:

- `process(frame, detections, ctx)` looks at one frame and may emit rows at once with
  `ctx.emit(Record.KIND, row)` (one place where rows leave a stage);
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

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, FiniteFloat

from capstone.core.detections import Detections
from capstone.core.records import Record, Rows, TrackSummary
from capstone.core.video import Frame, VideoInfo

if TYPE_CHECKING:  # the parameters validate options against this registry
    from capstone.stages.params import AnalysisParams

Emit = Callable[[Record, dict[str, Any]], None]


def _discard(kind: Record, row: dict[str, Any]) -> None:
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
    observations: Detections  # every tracked box (final track ids; frame, timestamp)
    chunk_states: Callable[[str], Iterator[dict[str, Any]]]  # a stage's state per chunk
    first_frame: int  # first and last sampled frame the analysis saw
    last_frame: int
    final_id_of: dict[int, int] = field(default_factory=dict)  # staged track id -> final
    members: dict[int, list[int]] = field(default_factory=dict)  # final -> staged, in order
    rows: Rows = field(default_factory=dict)  # rows emitted while publishing
    timings: dict[str, float] = field(default_factory=dict)

    def emit(self, kind: Record, row: dict[str, Any]) -> None:
        self.rows.setdefault(kind, []).append(row)

    def states(self, stage: str) -> Iterator[dict[str, Any]]:
        """The state `stage` returned for each chunk, in chunk order, read one at a time."""
        return self.chunk_states(stage)


@dataclass
class FrameLog:
    """What a stored analysis keeps of the frames it sampled, for `Stage.replay_state`: the
    sampled frame numbers and their exact timestamps (in order), and the tracked boxes as
    they passed the stages (`frame`, per-box `label` and `tracker_id`; sorted by frame)."""

    frames: list[int]
    timestamps: list[float]
    boxes: Detections


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


# A finite number in options (JSON numbers or numeric strings; true/false refused).
Number = Annotated[FiniteFloat, BeforeValidator(_not_bool)]


class StageOptions(BaseModel):
    """A stage's options: typed, defaults filled in, unknown keys and bad values rejected.

    Keys are those of `AnalysisParams.options` (one flat mapping shared by the stages, so
    stored `params_hash` values stay valid); each stage reads only its own.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def pick(cls, options: Mapping[str, Any]) -> Self:
        """These options out of the shared mapping (other stages' keys ignored)."""
        return cls.model_validate({k: v for k, v in options.items() if k in cls.model_fields})


class Stage:
    """Base class of the optional stages. Subclassing registers the stage by its `name`:

    - `Options`: its typed options (a `StageOptions` model);
    - `after`: stages whose published result it reads, when they run (publish order);
    - `emits`: the kinds of records it writes (the store maps them to tables);
    - `track_extras`: keys it adds to `TrackSummary.extra` that are stored on the track;
    - `derived`: True when its result is made only in `publish`, from the stored tracks and
      boxes and a chunk state that `replay_state` rebuilds from them: its options (and
      whether it runs) are then not part of `AnalysisParams.upstream_hash`, and a run that
      changes only them reuses the stored detections and tracks
      (`capstone.runtime.reuse`). A stage that needs pixels is never derived;
    - `revision`: raised when the same options come to give different results; a revision
      above 1 of an enabled stage is part of `AnalysisParams.params_hash`, so a result of an
      earlier revision is recomputed, never served or reused as the current one's.

    >>> class Blur(Stage):
    ...     name = "blur_example"
    ...     emits = (Record.EVENT,)
    >>> Blur.options_from({}) == StageOptions()
    True
    >>> "blur_example" in REGISTRY and unregister("blur_example") is Blur
    True
    """

    name: ClassVar[str]
    Options: ClassVar[type[StageOptions]] = StageOptions
    after: ClassVar[tuple[str, ...]] = ()
    emits: ClassVar[tuple[Record, ...]] = ()
    track_extras: ClassVar[tuple[str, ...]] = ()
    derived: ClassVar[bool] = False
    revision: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return
        if name in REGISTRY and REGISTRY[name].__qualname__ != cls.__qualname__:
            raise TypeError(f"stage {name!r} is registered twice")
        REGISTRY[name] = cls

    def __init__(self, ctx: RunContext) -> None:
        """Build the stage for one chunk (models may load here)."""

    @classmethod
    def options_from(cls, options: Mapping[str, Any]) -> StageOptions:
        """This stage's options out of the shared mapping (other stages' keys ignored)."""
        return cls.Options.pick(options)

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        """Look at one sampled frame (BGR image in memory) and its tracked detections."""

    def end_chunk(self, ctx: RunContext) -> dict[str, Any]:
        """Emit the chunk's held-back rows; return the chunk's JSON-able state."""
        return {}

    @classmethod
    def publish(cls, video: VideoResult) -> None:
        """Emit the rows that need the whole video (after all chunks, once per analysis)."""

    @classmethod
    def merge_track_extras(cls, fragments: list[dict[str, Any]]) -> dict[str, Any]:
        """One track's `extra` values of this stage from its chunk fragments' (chunk order)."""
        return {}

    @classmethod
    def replay_state(cls, video: VideoResult, frames: FrameLog) -> dict[str, Any]:
        """A `derived` stage's state as if one chunk had seen the whole video: rebuilt from
        the sampled frames and the stored boxes (`FrameLog`), for a run that reuses them."""
        raise NotImplementedError(f"stage {cls.name!r} cannot be recomputed from stored rows")


# stage name -> class; filled by subclassing `Stage` (`capstone.stages` imports them all)
REGISTRY: dict[str, type[Stage]] = {}


def unregister(name: str) -> type[Stage]:
    """Remove a stage from the registry (for examples and tests that define their own)."""
    return REGISTRY.pop(name)


def publish_order(names: Iterable[str]) -> list[str]:
    """`names` ordered so that every stage publishes after the stages in its `after`.

    >>> publish_order(["events", "display", "identity"])
    ['identity', 'display', 'events']
    """
    chosen = sorted(n for n in names if n in REGISTRY)
    done: list[str] = []
    pending = list(chosen)
    while pending:
        ready = [n for n in pending if all(a in done or a not in chosen for a in REGISTRY[n].after)]
        if not ready:
            raise ValueError(f"stages wait on each other: {', '.join(pending)}")
        done.append(ready[0])
        pending.remove(ready[0])
    return done
