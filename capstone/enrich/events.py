"""Semantic events from tracks: enter/exit, line crossings, zone dwell, per-class counts.

Everything but the counts is derived at the end of the pass from the pipeline's running
track summaries (`RunContext.tracks[...].observations`), so nothing here re-reads frames.
Each event is one `apps_db_event` row with a readable `description` (full-text indexed).

- `enter` / `exit`: one each per track, at its first / last observation. `attributes.edge`
  says which frame border the box touched (or null: it appeared/vanished mid-frame, e.g.
  occlusion); `attributes.reason` is `start_of_video` / `end_of_video` when the track was
  already there when the analysis began or still there when it ended.
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
  `attributes.count` is the number of distinct tracks of that class seen in the bucket when
  tracking ran, else the peak number of simultaneous detections; `attributes.window_start`
  and `window_s` give the bucket.

Options (`AnalysisParams.options`): `lines`, `zones` (see `capstone.geometry`),
`dwell_seconds`, `count_every_s`, `anchor`, `cross_debounce_s`.

>>> format_time(72.44)
'01:12.4'
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capstone.detections import Detections
from capstone.errors import ConfigError
from capstone.geometry import Line, Zone, lines_from_options, zones_from_options
from capstone.media import Frame
from capstone.pipeline import register_stage
from capstone.stage import Rows, RunContext, TrackSummary

DEFAULT_DWELL_S = 5.0
DEFAULT_COUNT_EVERY_S = 10.0
DEFAULT_DEBOUNCE_S = 0.5
EDGE_MARGIN = 0.01  # of the frame size: a box this close to a border touches it


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


class EventsStage:
    """The `events` stage (see the module docstring)."""

    name = "events"

    def __init__(self, ctx: RunContext) -> None:
        options = ctx.params.options
        self.lines: list[Line] = lines_from_options(options)
        self.zones: list[Zone] = zones_from_options(options)
        self.anchor = str(options.get("anchor", "bottom"))
        if self.anchor not in ("bottom", "center"):
            raise ConfigError("option anchor must be 'bottom' or 'center'")
        self.count_every_s = _positive(options, "count_every_s", DEFAULT_COUNT_EVERY_S)
        self.debounce_s = _positive(options, "cross_debounce_s", DEFAULT_DEBOUNCE_S, zero_ok=True)
        self.tracking = ctx.params.runs("track")
        self.buckets: dict[int, _Bucket] = {}
        self.first_frame: int | None = None
        self.last_frame: int | None = None

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        if self.first_frame is None:
            self.first_frame = frame.index
        self.last_frame = frame.index
        key = int(frame.timestamp // self.count_every_s)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(
                frame.index, key * self.count_every_s, frame.timestamp
            )
        bucket.frame_number, bucket.timestamp = frame.index, frame.timestamp
        labels = detections.labels
        bucket.peak |= Counter(labels)  # element-wise max
        if detections.tracker_id is not None:
            for label, tid in zip(labels, detections.tracker_id.tolist(), strict=True):
                if tid >= 0:
                    bucket.tracks[label].add(tid)

    def finish(self, ctx: RunContext) -> Rows:
        events: list[dict[str, Any]] = []
        size = (ctx.info.width, ctx.info.height)
        for track in ctx.tracks.values():
            if not track.observations:
                continue
            events.extend(self._enter_exit(track, size))
            boxes = np.array([obs[2] for obs in track.observations], dtype=np.float64)
            points = anchor_points(boxes, self.anchor)
            for line in self.lines:
                events.extend(self._crossings(track, line, boxes, points))
            for zone in self.zones:
                events.extend(self._dwells(track, zone, points, ctx))
        events.extend(self._counts(size))
        events.sort(key=lambda e: (e["frame_number"], e["event_type"], e.get("track_id") or -1))
        return {"apps_db_event": events}

    # -- enter / exit ----------------------------------------------------------------------

    def _enter_exit(self, track: TrackSummary, size: tuple[int, int]) -> list[dict[str, Any]]:
        label = f"{track.class_name} {track.track_id}"
        first, last = track.observations[0], track.observations[-1]
        duration = last[1] - first[1]
        enter_edge, exit_edge = _edge(first[2], size), _edge(last[2], size)
        at_start = track.first_frame == self.first_frame
        at_end = track.last_frame == self.last_frame
        enter_text = f"{label} entered at {format_time(first[1])}"
        if at_start:
            enter_text += " (in view when the analysis began)"
        elif enter_edge:
            enter_text += f" from the {enter_edge} edge"
        exit_text = f"{label} exited at {format_time(last[1])} after {duration:.1f} s"
        if at_end:
            exit_text = (
                f"{label} still in view when the analysis ended at {format_time(last[1])}"
                f" after {duration:.1f} s"
            )
        elif exit_edge:
            exit_text += f" at the {exit_edge} edge"
        common = {
            "class_name": track.class_name,
            "confidence": round(track.mean_confidence, 4),
            "track_id": track.track_id,
        }
        return [
            {
                **common,
                "frame_number": first[0],
                "timestamp": round(first[1], 4),
                "event_type": "enter",
                "bbox": list(first[2]),
                "attributes": {
                    "edge": enter_edge,
                    "reason": "start_of_video" if at_start else None,
                },
                "description": enter_text,
            },
            {
                **common,
                "frame_number": last[0],
                "timestamp": round(last[1], 4),
                "event_type": "exit",
                "bbox": list(last[2]),
                "attributes": {
                    "edge": exit_edge,
                    "reason": "end_of_video" if at_end else None,
                    "duration": round(duration, 3),
                },
                "description": exit_text,
            },
        ]

    # -- line crossings --------------------------------------------------------------------

    def _crossings(
        self, track: TrackSummary, line: Line, boxes: np.ndarray, points: np.ndarray
    ) -> list[dict[str, Any]]:
        obs = track.observations
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
                    "track_id": track.track_id,
                    "attributes": {
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

    def _dwells(
        self, track: TrackSummary, zone: Zone, points: np.ndarray, ctx: RunContext
    ) -> list[dict[str, Any]]:
        threshold = zone.dwell_seconds
        if threshold is None:
            threshold = DEFAULT_DWELL_S
        obs = track.observations
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
                        "track_id": track.track_id,
                        "attributes": {
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

    def _counts(self, size: tuple[int, int]) -> list[dict[str, Any]]:
        """One `count` row per class and time bucket; the counted region is the whole frame."""
        rows = []
        whole_frame = [0.0, 0.0, float(size[0]), float(size[1])]
        for bucket in self.buckets.values():
            if self.tracking:
                counts = {label: len(ids) for label, ids in bucket.tracks.items() if ids}
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
                        "description": f"{n} {label} in {self.count_every_s:g} s "
                        f"from {format_time(bucket.start)}",
                    }
                )
        return rows


def _edge(box: tuple[float, ...], size: tuple[int, int]) -> str | None:
    width, height = size
    mx, my = EDGE_MARGIN * width, EDGE_MARGIN * height
    x1, y1, x2, y2 = box
    gaps = {"left": x1 - mx, "right": width - mx - x2, "top": y1 - my, "bottom": height - my - y2}
    edge, gap = min(gaps.items(), key=lambda kv: kv[1])
    return edge if gap <= 0 else None


def _positive(options: dict[str, Any], key: str, default: float, zero_ok: bool = False) -> float:
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option {key} must be a number, got {value!r}") from None
    if number < 0 or (number == 0 and not zero_ok) or not np.isfinite(number):
        raise ConfigError(f"option {key} must be {'>= 0' if zero_ok else '> 0'}, got {value!r}")
    return number


register_stage("events", EventsStage)
