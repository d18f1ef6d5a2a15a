"""Semantic events from tracks: enter/exit, line crossings, zone dwell, per-class counts.

While chunks run the stage only counts (tracks per class and time bucket, its chunk
state); the events are made once per analysis in `publish`, from every tracked box of the
video (`VideoResult.observations`, stitched across chunks and repaired), one object at a
time, so nothing here re-reads frames. Each event is one `apps_db_event` row with a
readable `description` (full-text indexed).

Events are about *objects*, not raw tracker ids: the tracks of one identity (after the
`identity` stage's repair, `extra["identity_id"]`; else each track alone) form one object,
and an object counts only once *confirmed*: observed for at least `confirm_s` seconds
(`AnalysisParams.confirm_s`, default 0.5) and in at least `CONFIRM_MIN_OBSERVATIONS` (3)
samples. Shorter tracks keep their detection rows but emit no enter/exit/dwell/line/count
events (flicker, false positives). The events are made after the identity repair.

- `enter` / `exit`: one each per object, at its first / last observation (a gap inside a
  repaired identity is neither). `attributes.edge` names the frame border the box touches
  (within `EDGE_MARGIN`) and moves across (out of the frame at an exit, into it at an
  entry), else null and the description says "appeared in view" / "lost in view"
  (occlusion, a missed detection); `attributes.reason` is `start_of_video` /
  `end_of_video` when the object was already there when the analysis began or still there
  when it ended. `attributes.identity_id` and `track_ids` name the identity and its raw
  tracks; `track_id` is the raw track at that moment.
- `line_cross`: the path of the track's anchor point (bottom centre of the box by default,
  option `anchor: center` for the box centre) between each two consecutive observations is
  intersected with every configured line, so an object that jumps over the line between two
  samples is still counted, once. Frame, time and box are interpolated at the crossing. A
  crossing back within `cross_debounce_s` (default 0.5 s) cancels the previous one (jitter
  on the line is not traffic).
- `dwell`: a track whose anchor stays inside a zone polygon for at least the zone's
  `dwell_seconds` (else option `dwell_seconds`, else 5 s): one event per stay, at the moment
  the threshold is reached; `attributes` hold the stay's start, end and duration.
- `count`: one row per class and time bucket (option `count_every_s`, default 10 s), at the
  bucket's last sampled frame (when the count is known), its box the whole frame.
  `attributes.count` is the number of distinct confirmed objects of that class seen in the
  bucket when tracking ran, else the peak number of simultaneous detections;
  `attributes.window_start` and `window_s` give the bucket.

Options (`AnalysisParams.options`): `lines`, `zones` (see `capstone.core.geometry`),
`dwell_seconds`, `count_every_s`, `anchor`, `cross_debounce_s`.

>>> format_time(72.44)
'01:12.4'
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from capstone.core.detections import Detections
from capstone.core.geometry import Line, Zone, lines_from_options, zones_from_options
from capstone.core.records import Record, TrackSummary, objects_of
from capstone.core.video import Frame
from capstone.errors import ConfigError
from capstone.stages.base import (
    FrameLog,
    Number,
    RunContext,
    Stage,
    StageOptions,
    VideoResult,
)

DEFAULT_DWELL_S = 5.0
DEFAULT_COUNT_EVERY_S = 10.0
DEFAULT_DEBOUNCE_S = 0.5
DEFAULT_CONFIRM_S = 0.5
CONFIRM_MIN_OBSERVATIONS = 3
EDGE_MARGIN = 0.01  # of the frame size: a box this close to a border touches it


@dataclass
class TrackedObject:
    """One object: the boxes of one identity's tracks in frame order (`tracker_id` is the
    raw track of each box; `frame` and `timestamp` columns)."""

    identity_id: int
    class_name: str
    track_ids: list[int]
    boxes: Detections
    mean_confidence: float

    def __post_init__(self) -> None:
        self.frames: list[int] = self.boxes["frame"].tolist()
        self.times: list[float] = self.boxes["timestamp"].tolist()
        self.xyxy: list[list[float]] = self.boxes.xyxy.tolist()
        self.track_of: list[int] = self.boxes.tracker_id.tolist()  # type: ignore[union-attr]

    def sample(self, i: int) -> tuple[int, float, list[float]]:
        """(frame, timestamp, xyxy) of the `i`-th box."""
        return self.frames[i], self.times[i], self.xyxy[i]

    @property
    def track_id(self) -> int:
        return self.identity_id

    @property
    def first_frame(self) -> int:
        return self.frames[0]

    @property
    def last_frame(self) -> int:
        return self.frames[-1]


def tracked_objects(
    tracks: Mapping[int, TrackSummary], boxes: Detections
) -> Iterator[TrackedObject]:
    """The objects (identities: `extra["identity_id"]`, else the track itself) of `tracks`,
    one at a time, from their `boxes` sorted by track (`Detections.sorted_by_track`)."""
    slices = dict(boxes.by_track())
    groups = objects_of(tracks, slices)
    for identity in sorted(groups):
        members = groups[identity]
        idx = np.concatenate([np.arange(slices[t].start, slices[t].stop) for t in members])
        own = boxes[idx]
        own = own[np.lexsort((own.tracker_id, own["frame"]))]
        own.xyxy = np.round(own.xyxy.astype(np.float64), 2)
        length = sum(tracks[t].length for t in members)
        yield TrackedObject(
            identity,
            tracks[members[0]].class_name,
            members,
            own,
            sum(tracks[t].confidence_sum for t in members) / max(1, length),
        )


def is_confirmed(obj: TrackedObject, confirm_s: float) -> bool:
    """Observed long enough (`confirm_s`) in enough samples to be an object, not flicker."""
    times = obj.times
    return len(times) >= CONFIRM_MIN_OBSERVATIONS and times[-1] - times[0] >= confirm_s - 1e-6


def format_time(seconds: float) -> str:
    """`mm:ss.d`, or `h:mm:ss.d` from one hour on."""
    tenths = round(max(0.0, seconds) * 10)
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    text = f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{text}" if hours else text


def anchor_points(boxes: np.ndarray, anchor: str) -> np.ndarray:
    """(N, 4) xyxy -> (N, 2): bottom centre (where an object meets the ground) or centre."""
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    y = boxes[:, 3] if anchor == "bottom" else (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx, y], axis=1)


@dataclass
class _Bucket:
    frame_number: int  # the last sampled frame of the bucket (when its counts are known)
    start: float
    timestamp: float  # of that last frame
    tracks: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    peak: Counter[str] = field(default_factory=Counter)


class EventsOptions(StageOptions):
    """Counting lines and zones (see `capstone.core.geometry`), the default dwell time of
    zones, the anchor point of a box, how often counts are written (s), and how long a
    line ignores a re-crossing by the same track (s)."""

    lines: list[Any] = Field(default_factory=list)
    zones: list[Any] = Field(default_factory=list)
    dwell_seconds: Annotated[Number, Field(ge=0)] | None = None
    anchor: Literal["bottom", "center"] = "bottom"
    count_every_s: Annotated[Number, Field(gt=0)] = DEFAULT_COUNT_EVERY_S
    cross_debounce_s: Annotated[Number, Field(ge=0)] = DEFAULT_DEBOUNCE_S

    @model_validator(mode="after")
    def _geometry(self) -> EventsOptions:
        try:
            self.geometry()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def geometry(self) -> tuple[list[Line], list[Zone]]:
        raw = self.model_dump(include={"lines", "zones", "dwell_seconds"})
        return lines_from_options(raw), zones_from_options(raw)


class EventsStage(Stage):
    """The `events` stage (see the module docstring)."""

    name = "events"
    Options = EventsOptions
    after = ("identity",)  # events are about identities
    emits = (Record.EVENT,)
    derived = True  # made in publish from the tracks; its counts replay from stored boxes

    def __init__(self, ctx: RunContext) -> None:
        options = EventsOptions.pick(ctx.params.options)
        self.lines, self.zones = options.geometry()
        self.anchor: str = options.anchor
        self.count_every_s = options.count_every_s
        self.debounce_s = options.cross_debounce_s
        self.tracking = ctx.params.runs("track")
        self.confirm_s = float(getattr(ctx.params, "confirm_s", DEFAULT_CONFIRM_S))
        self.buckets: dict[int, _Bucket] = {}
        self.first_frame: int | None = None
        self.last_frame: int | None = None

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        self._observe(frame.index, frame.timestamp, detections)

    def _observe(self, index: int, timestamp: float, detections: Detections) -> None:
        if self.first_frame is None:
            self.first_frame = index
        self.last_frame = index
        key = int(timestamp // self.count_every_s)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(index, key * self.count_every_s, timestamp)
        bucket.frame_number, bucket.timestamp = index, timestamp
        labels = detections.labels
        bucket.peak |= Counter(labels)  # element-wise max
        if detections.tracker_id is not None:
            for label, tid in zip(labels, detections.tracker_id.tolist(), strict=True):
                if tid >= 0:
                    bucket.tracks[label].add(tid)

    @classmethod
    def replay_state(cls, video: VideoResult, frames: FrameLog) -> dict[str, Any]:
        """The count buckets of the whole video from the sampled frames and the stored boxes
        (the same `_observe` a chunk runs), for a run that reuses stored tracks."""
        stage = cls(video)  # type: ignore[arg-type]
        boxes = frames.boxes
        cuts = np.searchsorted(boxes["frame"], np.asarray(frames.frames, np.int64), side="left")
        ends = np.searchsorted(boxes["frame"], np.asarray(frames.frames, np.int64), side="right")
        for index, timestamp, a, b in zip(
            frames.frames, frames.timestamps, cuts.tolist(), ends.tolist(), strict=True
        ):
            stage._observe(index, timestamp, boxes[a:b])
        return stage.end_chunk(video)  # type: ignore[arg-type]

    def end_chunk(self, ctx: RunContext) -> dict[str, Any]:
        return {
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "buckets": {
                str(key): {
                    "frame_number": b.frame_number,
                    "start": b.start,
                    "timestamp": b.timestamp,
                    "tracks": {label: sorted(ids) for label, ids in b.tracks.items()},
                    "peak": dict(b.peak),
                }
                for key, b in self.buckets.items()
            },
        }

    @classmethod
    def publish(cls, video: VideoResult) -> None:
        """Every event of the analysis, from its chunks' buckets and its objects."""
        stage = cls(video)  # type: ignore[arg-type]
        stage.first_frame, stage.last_frame = video.first_frame, video.last_frame
        final = video.final_id_of
        for state in video.states(cls.name):
            for key, b in state["buckets"].items():
                bucket = stage.buckets.get(int(key))
                if bucket is None:
                    bucket = stage.buckets[int(key)] = _Bucket(
                        b["frame_number"], b["start"], b["timestamp"]
                    )
                if b["frame_number"] >= bucket.frame_number:
                    bucket.frame_number, bucket.timestamp = b["frame_number"], b["timestamp"]
                for label, ids in b["tracks"].items():
                    bucket.tracks[label].update(final.get(t, t) for t in ids)
                bucket.peak |= Counter(b["peak"])
        size = (video.info.width, video.info.height)
        for row in stage._events_of(tracked_objects(video.tracks, video.observations), size):
            video.emit(Record.EVENT, row)

    def events(self, ctx: RunContext, boxes: Detections) -> list[dict[str, Any]]:
        """Every event from the objects (confirmed identities) of `ctx.tracks`, whose boxes
        (sorted by track, with `frame` and `timestamp`) are `boxes`."""
        size = (ctx.info.width, ctx.info.height)
        return self._events_of(tracked_objects(ctx.tracks, boxes), size)

    def _events_of(
        self, objects: Iterable[TrackedObject], size: tuple[int, int]
    ) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        identity_of: dict[int, int] = {}
        for obj in objects:
            if not is_confirmed(obj, self.confirm_s):
                continue
            identity_of.update({tid: obj.identity_id for tid in obj.track_ids})
            events.extend(self._enter_exit(obj, size))
            boxes = np.array(obj.xyxy, dtype=np.float64)
            points = anchor_points(boxes, self.anchor)
            for line in self.lines:
                events.extend(self._crossings(obj, line, boxes, points))
            for zone in self.zones:
                events.extend(self._dwells(obj, zone, points))
        events.extend(self._counts(size, identity_of))
        events.sort(key=lambda e: (e["frame_number"], e["event_type"], e.get("track_id") or -1))
        return events

    # -- enter / exit ----------------------------------------------------------------------

    def _enter_exit(self, obj: TrackedObject, size: tuple[int, int]) -> list[dict[str, Any]]:
        label = f"{obj.class_name} {obj.identity_id}"
        first, last = obj.sample(0), obj.sample(-1)
        duration = last[1] - first[1]
        enter_edge = _edge(obj.xyxy[0], size, _outward(obj.xyxy, exiting=False))
        exit_edge = _edge(obj.xyxy[-1], size, _outward(obj.xyxy, exiting=True))
        at_start = obj.first_frame == self.first_frame
        at_end = obj.last_frame == self.last_frame
        enter_text = f"{label} entered at {format_time(first[1])}"
        if at_start:
            enter_text += " (in view when the analysis began)"
        elif enter_edge:
            enter_text += f" from the {enter_edge} edge"
        else:
            enter_text = f"{label} appeared in view at {format_time(first[1])}"
        exit_text = f"{label} exited at {format_time(last[1])} after {duration:.1f} s"
        if at_end:
            exit_text = (
                f"{label} still in view when the analysis ended at {format_time(last[1])}"
                f" after {duration:.1f} s"
            )
        elif exit_edge:
            exit_text += f" at the {exit_edge} edge"
        else:
            exit_text = f"{label} lost in view at {format_time(last[1])} after {duration:.1f} s"
        common = {
            "class_name": obj.class_name,
            "confidence": round(obj.mean_confidence, 4),
        }
        identity = {"identity_id": obj.identity_id, "track_ids": obj.track_ids}
        return [
            {
                **common,
                "track_id": obj.track_of[0],
                "frame_number": first[0],
                "timestamp": round(first[1], 4),
                "event_type": "enter",
                "bbox": list(first[2]),
                "attributes": {
                    "edge": enter_edge,
                    "reason": "start_of_video" if at_start else None,
                    **identity,
                },
                "description": enter_text,
            },
            {
                **common,
                "track_id": obj.track_of[-1],
                "frame_number": last[0],
                "timestamp": round(last[1], 4),
                "event_type": "exit",
                "bbox": list(last[2]),
                "attributes": {
                    "edge": exit_edge,
                    "reason": "end_of_video" if at_end else None,
                    "duration": round(duration, 3),
                    **identity,
                },
                "description": exit_text,
            },
        ]

    # -- line crossings --------------------------------------------------------------------

    def _crossings(
        self, track: TrackedObject, line: Line, boxes: np.ndarray, points: np.ndarray
    ) -> list[dict[str, Any]]:
        obs = [track.sample(i) for i in range(len(track.frames))]
        found: list[tuple[int, float, int, float]] = []  # (segment index, t, direction, time)
        for i in range(len(obs) - 1):
            hit = line.crossing(tuple(points[i]), tuple(points[i + 1]))
            if hit is None:
                continue
            direction, t = hit
            when = obs[i][1] + t * (obs[i + 1][1] - obs[i][1])
            if found and found[-1][2] != direction and when - found[-1][3] < self.debounce_s:
                found.pop()  # back over the line at once: jitter, not a crossing
                continue
            found.append((i, t, direction, when))
        rows = []
        for i, t, direction, when in found:
            name = line.direction_name(direction)
            frame = round(obs[i][0] + t * (obs[i + 1][0] - obs[i][0]))
            box = boxes[i] + t * (boxes[i + 1] - boxes[i])
            point = points[i] + t * (points[i + 1] - points[i])
            rows.append(
                {
                    "frame_number": frame,
                    "timestamp": round(when, 4),
                    "event_type": "line_cross",
                    "class_name": track.class_name,
                    "confidence": round(track.mean_confidence, 4),
                    "bbox": [round(float(v), 2) for v in box],
                    "track_id": track.track_of[i + 1],
                    "attributes": {
                        "identity_id": track.identity_id,
                        "line": line.name,
                        "direction": name,
                        "point": [round(float(v), 2) for v in point],
                        "between_frames": [obs[i][0], obs[i + 1][0]],
                    },
                    "description": (
                        f"{track.class_name} {track.track_id} crossed line {line.name}"
                        f" {name} at {format_time(when)}"
                    ),
                }
            )
        return rows

    # -- zone dwell ------------------------------------------------------------------------

    def _dwells(self, track: TrackedObject, zone: Zone, points: np.ndarray) -> list[dict[str, Any]]:
        threshold = zone.dwell_seconds
        if threshold is None:
            threshold = DEFAULT_DWELL_S
        obs = [track.sample(i) for i in range(len(track.frames))]
        inside = zone.contains(points)
        rows = []
        i = 0
        while i < len(obs):
            if not inside[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(obs) and inside[j + 1]:
                j += 1
            start, end = obs[i][1], obs[j][1]
            if end - start >= threshold:
                k = next(k for k in range(i, j + 1) if obs[k][1] - start >= threshold)
                rows.append(
                    {
                        "frame_number": obs[k][0],
                        "timestamp": round(obs[k][1], 4),
                        "event_type": "dwell",
                        "class_name": track.class_name,
                        "confidence": round(track.mean_confidence, 4),
                        "bbox": list(obs[k][2]),
                        "track_id": track.track_of[k],
                        "attributes": {
                            "identity_id": track.identity_id,
                            "zone": zone.name,
                            "threshold": threshold,
                            "start": round(start, 4),
                            "end": round(end, 4),
                            "duration": round(end - start, 3),
                            "start_frame": obs[i][0],
                            "end_frame": obs[j][0],
                        },
                        "description": (
                            f"{track.class_name} {track.track_id} dwelled in zone {zone.name}"
                            f" for {end - start:.1f} s from {format_time(start)}"
                        ),
                    }
                )
            i = j + 1
        return rows

    # -- counts over time ------------------------------------------------------------------

    def _counts(self, size: tuple[int, int], identity_of: dict[int, int]) -> list[dict[str, Any]]:
        """One `count` row per class and time bucket; the counted region is the whole frame.
        With tracking, each confirmed object (identity) seen in the bucket counts once."""
        rows = []
        whole_frame = [0.0, 0.0, float(size[0]), float(size[1])]
        for bucket in self.buckets.values():
            if self.tracking:
                objects = {
                    label: {identity_of[t] for t in ids if t in identity_of}
                    for label, ids in bucket.tracks.items()
                }
                counts = {label: len(ids) for label, ids in objects.items() if ids}
            else:
                counts = dict(bucket.peak)
            for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
                rows.append(
                    {
                        "frame_number": bucket.frame_number,
                        "timestamp": round(bucket.timestamp, 4),
                        "event_type": "count",
                        "class_name": label,
                        "bbox": whole_frame,
                        "attributes": {
                            "count": n,
                            "window_start": round(bucket.start, 4),
                            "window_s": self.count_every_s,
                        },
                        "description": f"{n} {label}{'s' if n > 1 else ''} in"
                        f" {self.count_every_s:g} s from {format_time(bucket.start)}",
                    }
                )
        return rows


_OUTWARD = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "top": (0.0, -1.0), "bottom": (0.0, 1.0)}


def _edge(
    box: tuple[float, ...], size: tuple[int, int], motion: np.ndarray | None = None
) -> str | None:
    """The frame border the box touches (within `EDGE_MARGIN`), or None.

    `motion` is the box centre's direction of travel *out of the frame* (towards the edge
    for an exit, reversed for an entry); a box that touches several borders (a big box) is
    given the one it moves across, and none when it does not move across any of them (or
    does not move).
    """
    width, height = size
    mx, my = EDGE_MARGIN * width, EDGE_MARGIN * height
    x1, y1, x2, y2 = box
    gaps = {"left": x1 - mx, "right": width - mx - x2, "top": y1 - my, "bottom": height - my - y2}
    touching = [edge for edge, gap in gaps.items() if gap <= 0]
    if not touching:
        return None
    if motion is None or not np.any(motion):
        return touching[0] if len(touching) == 1 else None  # a still box at several borders
    speed = {e: float(np.dot(_OUTWARD[e], motion)) for e in touching}
    edge = max(touching, key=lambda e: speed[e])
    return edge if speed[edge] > 0 else None


def _outward(xyxy: list[list[float]], exiting: bool, window: int = 3) -> np.ndarray | None:
    """Direction of the box centre at the end (exit) or start (entry, reversed) of a path."""
    if len(xyxy) < 2:
        return None
    boxes = np.array(xyxy[-window:] if exiting else xyxy[:window], dtype=np.float64)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    step = centres[-1] - centres[0]
    return step if exiting else -step
