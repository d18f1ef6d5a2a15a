"""How a track moves in the image: direction, displacement, path length, speed and size.

Everything is measured on the box's *anchor*, its bottom centre (where an object meets the
ground), in pixels and seconds of video:

- `dx_px`, `dy_px`: net displacement, from the median anchor of the first boxes to that of
  the last ones (`END_BOXES` each, so one jittery box does not decide it);
- `path_px`: the length of the anchor's path sampled every `STEP_S` seconds (jitter between
  consecutive frames is not travel);
- `speed_px_s`: the median speed over `STEP_S` windows (a pause lowers it less than a mean);
- `width_px`, `height_px`: median box size; `growth`: the median height of the last boxes
  over that of the first ones;
- `pause_s`: the longest time it stood still (its anchor moving less than `STILL_MAX` box
  heights per second over each `STEP_S` window) while it moved at other times (at least
  `PAUSE_MOVED` box heights in windows of `WALK_MIN` heights per second or more): a person
  who stopped to talk, a car that waited at the lights. An object that never moved (a
  parked car) has no pause (0); windows across a gap in the track (over `PAUSE_MAX_GAP_S`,
  the object hidden) are neither. `pause_at`: where it stood (the median anchor of that
  longest pause) and `pause_from`, `pause_to`: when (seconds of video), None without one.

`direction_of` turns these into one word:

- the anchor moved at least `MOVE_MIN` median box heights (and `MOVE_MIN_PX` pixels) — or,
  for a track seen too briefly to cover that, at least `WALK_MIN` box heights per second of
  the track (a glimpse of someone walking has a direction): the dominant axis names it,
  `left`/`right` or `up`/`down`; but a mostly vertical move that grows the box by at least
  `APPROACH_GROWTH` (down + growing) is `toward` the camera, one that shrinks it as much
  (up + shrinking) is `away`: on a road seen from above, approaching traffic moves down the
  image *and* grows;
- it did not move that far: `toward`/`away` when the box grew/shrank by `SIZE_CHANGE`
  (30 %) or more, else `static`.

>>> direction_of(dx=120, dy=10, height=80, growth=1.0)
'right'
>>> direction_of(dx=5, dy=90, height=40, growth=2.5)
'toward'
>>> direction_of(dx=3, dy=-2, height=80, growth=1.05)
'static'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MOVE_MIN = 0.5  # median box heights the anchor must move to have a direction
MOVE_MIN_PX = 4.0
# heights per second; chosen on 0.3-1.5 s pieces of PETS09-S2L1 person tracks against the
# ground truth's direction (`python -m bench.ask`, "direction of short glimpses")
WALK_MIN = 0.2
APPROACH_GROWTH = 1.5  # a vertical move that changes the box height this much: toward/away
SIZE_CHANGE = 1.3  # a box that grows/shrinks this much without moving: toward/away
STEP_S = 0.5  # path and speed are measured over windows of this many seconds
STILL_MAX = 0.1  # box heights per second: below it, standing still (jitter is about 0.05)
PAUSE_MOVED = 1.0  # box heights it must have moved elsewhere for a stillness to be a pause
PAUSE_MAX_GAP_S = 1.5  # a window across a longer gap (the object hidden) says nothing
END_BOXES = 3  # boxes at each end whose median anchor / height is the track's end


def direction_of(
    dx: float,
    dy: float,
    height: float,
    growth: float,
    duration_s: float = math.inf,
    walk_min: float = WALK_MIN,
) -> str:
    """One of left right up down toward away static (see the module docstring); `dy` grows
    downwards (image coordinates), `growth` is last height / first height, `duration_s` the
    time between the first and the last box.

    >>> direction_of(dx=-60, dy=-20, height=50, growth=1.0)
    'left'
    >>> direction_of(dx=4, dy=-70, height=30, growth=0.4)
    'away'
    >>> direction_of(dx=4, dy=-70, height=30, growth=0.9)
    'up'
    >>> direction_of(dx=2, dy=1, height=80, growth=1.4)
    'toward'
    >>> direction_of(dx=-60, dy=0, height=200, growth=1.0)  # 0.3 heights over the video
    'static'
    >>> direction_of(dx=-60, dy=0, height=200, growth=1.0, duration_s=0.5)  # in half a second
    'left'
    """
    distance = math.hypot(dx, dy)
    needed = min(MOVE_MIN, walk_min * max(duration_s, 0.0)) * height
    if distance >= max(needed, MOVE_MIN_PX):
        if abs(dx) >= abs(dy):
            return "right" if dx > 0 else "left"
        if dy > 0 and growth >= APPROACH_GROWTH:
            return "toward"
        if dy < 0 and growth <= 1 / APPROACH_GROWTH:
            return "away"
        return "down" if dy > 0 else "up"
    if growth >= SIZE_CHANGE:
        return "toward"
    if growth <= 1 / SIZE_CHANGE:
        return "away"
    return "static"


@dataclass(frozen=True)
class Motion:
    """One track's movement and size (see the module docstring)."""

    dx_px: float
    dy_px: float
    path_px: float
    speed_px_s: float
    width_px: float
    height_px: float
    growth: float
    extent_px: float  # largest distance of the box centre from its median position
    duration_s: float = math.inf  # first box to last
    pause_s: float = 0.0  # the longest time it stood still while moving at other times
    pause_at: tuple[float, float] | None = None  # where (anchor, px) it stood that time
    pause_from: float | None = None  # when that pause began and ended (s)
    pause_to: float | None = None

    @property
    def direction(self) -> str:
        return direction_of(self.dx_px, self.dy_px, self.height_px, self.growth, self.duration_s)


def motion_of(times: np.ndarray, xyxy: np.ndarray, step_s: float = STEP_S) -> Motion:
    """The movement of one track from its boxes (`xyxy`, (N, 4)) at `times` (s, ascending).

    >>> t = np.arange(11) * 0.1  # 1 s at 10 fps, 100 px/s to the right
    >>> boxes = np.stack([t * 100, t * 0 + 10, t * 100 + 20, t * 0 + 50], axis=1)
    >>> m = motion_of(t, boxes)
    >>> round(m.dx_px), round(m.dy_px), round(m.path_px), round(m.speed_px_s), m.direction
    (80, 0, 100, 100, 'right')
    >>> t = np.arange(61) * 0.1  # 2 s walking right, 3 s standing, 1 s walking on
    >>> x = np.interp(t, [0, 2, 5, 6], [0, 100, 100, 150])
    >>> m = motion_of(t, np.stack([x, t * 0 + 10, x + 20, t * 0 + 50], axis=1))
    >>> m.pause_s, m.direction, m.pause_at, (m.pause_from, m.pause_to)
    (3.0, 'right', (110.0, 50.0), (2.0, 5.0))
    """
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    times = np.asarray(times, np.float64).reshape(-1)
    anchors = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)
    centres = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2], axis=1)
    heights = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-6)
    n = len(times)
    end = max(1, min(END_BOXES, n // 3))
    start_point = np.median(anchors[:end], axis=0)
    end_point = np.median(anchors[-end:], axis=0)
    growth = float(np.median(heights[-end:]) / np.median(heights[:end]))
    # sample the path at least `step_s` apart (the last box always closes it)
    keep = _spaced(times, step_s)
    path = float(np.linalg.norm(np.diff(anchors[keep], axis=0), axis=1).sum())
    speed = 0.0
    if n >= 2 and times[-1] > times[0]:
        later = np.searchsorted(times, times + step_s - 1e-9)
        ok = later < n
        if ok.any():
            i = np.flatnonzero(ok)
            j = later[ok]
            d = np.linalg.norm(anchors[j] - anchors[i], axis=1)
            speed = float(np.median(d / (times[j] - times[i])))
        else:  # shorter than one window: its average speed
            speed = float(np.linalg.norm(anchors[-1] - anchors[0]) / (times[-1] - times[0]))
    centre = np.median(centres, axis=0)
    height = float(np.median(heights)) if n else 0.0
    pause_s, held = _pause(times[keep], anchors[keep], height)
    at: tuple[float, float] | None = None
    when: tuple[float | None, float | None] = (None, None)
    if held is not None:
        x, y = np.median(anchors[keep][held], axis=0)
        at = (round(float(x), 2), round(float(y), 2))
        stood = times[keep][held]
        when = (float(stood[0]), float(stood[-1]))
    return Motion(
        dx_px=float(end_point[0] - start_point[0]),
        dy_px=float(end_point[1] - start_point[1]),
        path_px=path,
        speed_px_s=speed,
        width_px=float(np.median(xyxy[:, 2] - xyxy[:, 0])),
        height_px=float(np.median(heights)),
        growth=growth,
        extent_px=float(np.linalg.norm(centres - centre, axis=1).max()) if n else 0.0,
        duration_s=float(times[-1] - times[0]) if n else 0.0,
        pause_s=pause_s,
        pause_at=at,
        pause_from=when[0],
        pause_to=when[1],
    )


def _pause(times: np.ndarray, anchors: np.ndarray, height: float) -> tuple[float, slice | None]:
    """The longest run of still windows between samples about `STEP_S` apart (`pause_s`)
    and the samples it spans; (0, None) when the object did not move `PAUSE_MOVED` heights
    in the other windows, or never stood still."""
    if len(times) < 3 or height <= 0:
        return 0.0, None
    dt = np.diff(times)
    rate = np.linalg.norm(np.diff(anchors, axis=0), axis=1) / height / np.maximum(dt, 1e-9)
    seen = dt <= PAUSE_MAX_GAP_S
    still = seen & (rate < STILL_MAX)
    moving = seen & (rate >= WALK_MIN)
    if float((rate * dt)[moving].sum()) < PAUSE_MOVED:
        return 0.0, None
    longest = run = 0.0
    span: slice | None = None
    start = 0
    for k, (held, step) in enumerate(zip(still.tolist(), dt.tolist(), strict=True)):
        if not held:
            run = 0.0
            continue
        if run == 0.0:
            start = k
        run += step
        if run > longest:
            longest, span = run, slice(start, k + 2)  # windows start..k join samples start..k+1
    return round(longest, 3), span


def _spaced(times: np.ndarray, step_s: float) -> np.ndarray:
    """Indices of `times` at least `step_s` apart from the first on, plus the last."""
    if len(times) == 0:
        return np.zeros(0, np.int64)
    slots = np.floor((times - times[0]) / step_s + 1e-9).astype(np.int64)
    first = np.flatnonzero(np.r_[True, np.diff(slots) > 0])
    if first[-1] != len(times) - 1:
        first = np.r_[first, len(times) - 1]
    return first


HEAT_COLS, HEAT_ROWS = 12, 9  # the grid of `place_counts`, over the whole frame


def pause_place(
    motion: Motion, size: tuple[int, int], cols: int = HEAT_COLS, rows: int = HEAT_ROWS
) -> list[int] | None:
    """Where the object stopped, on the grid of `place_counts`: the pause's length in tenths
    of a second in the cell of `motion.pause_at` (summed over objects: where, and how long,
    things stood), None without a pause.

    >>> m = Motion(0, 0, 0, 0, 10, 20, 1, 0, 9.0, pause_s=2.5, pause_at=(90.0, 95.0))
    >>> pause_place(m, (100, 100), 2, 2)
    [0, 0, 0, 25]
    """
    if motion.pause_at is None or motion.pause_s <= 0:
        return None
    x, y = motion.pause_at
    cells = place_counts(np.array([[x, y, x, y]]), size, cols, rows)
    return [c * max(1, round(motion.pause_s * 10)) for c in cells]


def place_counts(
    xyxy: np.ndarray, size: tuple[int, int], cols: int = HEAT_COLS, rows: int = HEAT_ROWS
) -> list[int]:
    """Where a track was: how many of its boxes have their anchor (bottom centre) in each
    cell of a `cols` x `rows` grid over a frame of `size` (width, height), row by row from
    the top left. Summed over tracks it is a heatmap of where things were.

    >>> place_counts(np.array([[0, 0, 10, 10], [90, 80, 100, 100]]), (100, 100), 2, 2)
    [1, 0, 0, 1]
    """
    width, height = max(1, size[0]), max(1, size[1])
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    x = (boxes[:, 0] + boxes[:, 2]) / 2 / width
    y = boxes[:, 3] / height
    col = np.clip(np.floor(x * cols), 0, cols - 1).astype(np.int64)
    row = np.clip(np.floor(y * rows), 0, rows - 1).astype(np.int64)
    counts = np.bincount(row * cols + col, minlength=cols * rows)
    return [int(c) for c in counts]
