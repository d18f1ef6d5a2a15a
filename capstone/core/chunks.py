"""Time chunks of a video: the plan, and stitching tracks across chunk boundaries.

A video is cut into chunks of `AnalysisParams.chunk_s` seconds. Every chunk is analyzed on
its own with a fresh tracker that is first *warmed up* on the `overlap_s` seconds before
the chunk (those frames' rows belong to the previous chunk). So a chunk gives the same rows
whether it runs right after its predecessor in one pass, alone after a crash, or on another
machine, and a resumed or parallel run publishes what one uninterrupted run publishes.

Tracks are stitched over the overlap: the previous chunk's boxes in its last `overlap_s`
seconds (its *tail*) and the next chunk's warm-up boxes cover the same frames, so a track
seen by both is the pair whose boxes agree (IoU) on most shared frames; matched pairs become
one track. Identity repair then runs over the whole video as usual.

>>> spans = plan_chunks(frame_count=250, fps=25.0, chunk_s=4.0, step=1)
>>> [(s.index, s.start, s.end) for s in spans]
[(0, 0, 100), (1, 100, 200), (2, 200, 250)]
>>> spans[1].warm_start, overlap_s(4.0)
(50, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from capstone.core.geometry import box_iou_pairs

MAX_OVERLAP_S = 2.0
MAX_CHUNKS = 2000  # staged track ids are chunk * ID_SPAN + n (32-bit columns)
ID_SPAN = 1_000_000
MATCH_IOU = 0.5  # boxes of one object in one frame, seen by two trackers
MATCH_SHARE = 0.5  # of the frames both tracks were seen in the overlap
SINGLE_FRAME_IOU = 0.8  # when they share one frame only


def overlap_s(chunk_s: float) -> float:
    """Seconds of warm-up before each chunk: 2 s, or half of a shorter chunk."""
    return min(MAX_OVERLAP_S, chunk_s / 2)


def chunk_count(duration_s: float, chunk_s: float) -> int:
    """How many chunks a video of `duration_s` seconds has (at least one).

    >>> chunk_count(150.0, 60.0), chunk_count(0.0, 60.0)
    (3, 1)
    """
    if not math.isfinite(duration_s) or duration_s <= 0:
        return 1
    return max(1, math.ceil(duration_s / chunk_s - 1e-9))


@dataclass(frozen=True)
class ChunkSpan:
    """Video frames [start, end) of chunk `index`; warm-up from `warm_start`."""

    index: int
    start: int
    end: int
    warm_start: int
    step: int = 1

    @property
    def expected(self) -> int:
        """Sampled frames (multiples of `step`) in [start, end)."""
        return max(0, -(-self.end // self.step) - -(-self.start // self.step))


def planned_chunks(*, frame_count: int, fps: float, chunk_s: float, step: int) -> int:
    """How many chunks `plan_chunks` makes (without making them).

    >>> planned_chunks(frame_count=250, fps=25.0, chunk_s=4.0, step=1)
    3
    """
    frames_per_chunk = max(step, round(chunk_s * fps / step) * step)
    return max(1, -(-max(1, frame_count) // frames_per_chunk))


def plan_chunks(*, frame_count: int, fps: float, chunk_s: float, step: int) -> list[ChunkSpan]:
    """Chunks of `chunk_s` seconds over `frame_count` video frames, on sampled-frame
    boundaries (a chunk starts on a multiple of `step`)."""
    frames_per_chunk = max(step, round(chunk_s * fps / step) * step)
    n = planned_chunks(frame_count=frame_count, fps=fps, chunk_s=chunk_s, step=step)
    if n > MAX_CHUNKS:
        raise ValueError(f"{n} chunks of {chunk_s:g} s: at most {MAX_CHUNKS}; use a larger chunk_s")
    warm = round(overlap_s(chunk_s) * fps / step) * step
    spans = []
    for i in range(n):
        start = i * frames_per_chunk
        end = frame_count if i == n - 1 else (i + 1) * frames_per_chunk
        spans.append(ChunkSpan(i, start, max(end, start), max(0, start - warm), step))
    return spans


def staged_id(chunk: int, local: int) -> int:
    """The id a chunk's `local`-th track (1-based) has until publishing."""
    return chunk * ID_SPAN + local


def _boxes_by_track(rows: Sequence[Sequence[float]]) -> dict[int, dict[int, list[float]]]:
    out: dict[int, dict[int, list[float]]] = {}
    for frame, track, *box in rows:
        out.setdefault(int(track), {})[int(frame)] = [float(v) for v in box]
    return out


def match_overlap(
    tail: Sequence[Sequence[float]], warm: Sequence[Sequence[float]]
) -> dict[int, int]:
    """Tracks of the next chunk (warm-up boxes) -> tracks of the previous one (tail boxes).

    Both are rows `[frame, track, x1, y1, x2, y2]` over the same frames. A pair matches
    when its boxes overlap (IoU >= `MATCH_IOU`) in at least `MATCH_SHARE` of the frames
    both tracks were seen in (IoU >= `SINGLE_FRAME_IOU` when that is one frame: a track
    born on the last shared frame); pairs are chosen one-to-one, best first.

    >>> tail = [[f, 7, 10 + f, 0, 30 + f, 40] for f in range(5)]
    >>> warm = [[f, 2, 11 + f, 0, 31 + f, 40] for f in range(5)]
    >>> match_overlap(tail, warm)
    {2: 7}
    """
    if not len(tail) or not len(warm):
        return {}
    prev, nxt = _boxes_by_track(tail), _boxes_by_track(warm)
    prev_ids, next_ids = sorted(prev), sorted(nxt)
    score = np.zeros((len(next_ids), len(prev_ids)))
    for r, n in enumerate(next_ids):
        for c, p in enumerate(prev_ids):
            common = sorted(nxt[n].keys() & prev[p].keys())
            if not common:
                continue
            ious = box_iou_pairs(
                np.array([nxt[n][f] for f in common]), np.array([prev[p][f] for f in common])
            )
            agree = ious >= MATCH_IOU
            if len(common) == 1:  # a track born on the last shared frame: near-identical boxes
                agree = ious >= SINGLE_FRAME_IOU
            if agree.any() and agree.mean() >= MATCH_SHARE:
                score[r, c] = agree.sum() + float(ious.mean())
    if not score.any():
        return {}
    from scipy.optimize import linear_sum_assignment  # 0.7 s to import: only when needed

    rows, cols = linear_sum_assignment(-score)
    return {
        int(next_ids[r]): int(prev_ids[c]) for r, c in zip(rows, cols, strict=True) if score[r, c]
    }


class Stitcher:
    """Union of staged track ids across chunk boundaries (each merges into the earliest).

    >>> s = Stitcher(); s.link(2_000_001, 1_000_004); s.link(1_000_004, 5)
    >>> s.root(2_000_001)
    5
    """

    def __init__(self) -> None:
        self._parent: dict[int, int] = {}

    def root(self, tid: int) -> int:
        path = []
        while tid in self._parent:
            path.append(tid)
            tid = self._parent[tid]
        for p in path:
            self._parent[p] = tid
        return tid

    def link(self, later: int, earlier: int) -> None:
        a, b = self.root(later), self.root(earlier)
        if a != b:
            self._parent[max(a, b)] = min(a, b)
