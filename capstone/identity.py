"""Identity repair: link track fragments into identities after tracking, offline.

A tracker working frame by frame loses an identity when a person is occluded for longer
than its buffer, and starts a new id when they reappear. capstone analyzes recorded video,
so it can look at the whole video first: fragments are linked when

- they do not overlap in time and the gap between them is short (`max_gap_s`),
- the motion agrees: the first fragment's constant-velocity prediction at the second's
  start lies near it (distance in box heights, `max_motion`),
- the appearance agrees: cosine distance of re-id embeddings (OSNet when its weights
  resolve, MobileNetV2 crop features otherwise) at the fragments' facing ends
  (`max_appearance`),
- and the class is the same.

Links are chosen by minimum-cost bipartite matching (each fragment gets at most one
successor and one predecessor), so chains of fragments become one identity. Short gaps
inside an identity are then filled by linear interpolation. Nothing here reads ground
truth.

>>> from capstone.identity import Observation, repair_identities
>>> obs = [Observation(f, 1, (0, 0, 10, 20), 0.9) for f in range(5)]
>>> obs += [Observation(f, 2, (0, 0, 10, 20), 0.9) for f in range(8, 12)]
>>> identities = repair_identities(obs, fps=10).identity_of
>>> identities[1] == identities[2]
True
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Observation:
    """One tracked box: frame number, raw tracker id, `xyxy`, confidence, class."""

    frame: int
    track_id: int
    xyxy: tuple[float, float, float, float]
    confidence: float
    class_name: str = "object"


@dataclass
class RepairConfig:
    """Thresholds, chosen on PETS09-S2L1 and TUD-Campus only (see README)."""

    max_gap_s: float = 6.0
    max_motion: float = 0.3  # predicted-vs-observed centre distance, in box heights
    max_appearance: float = 0.25  # cosine distance of re-id features at the facing ends
    motion_weight: float = 0.1
    velocity_window: int = 10
    feature_window: int = 8
    interpolate_max_s: float = 0.3
    link_without_appearance: bool = True  # when no features exist, motion alone decides


@dataclass
class Fragment:
    track_id: int
    class_name: str
    frames: np.ndarray
    boxes: np.ndarray  # (n, 4) xyxy

    @property
    def start(self) -> int:
        return int(self.frames[0])

    @property
    def end(self) -> int:
        return int(self.frames[-1])

    def centres(self) -> np.ndarray:
        b = self.boxes
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)

    def heights(self) -> np.ndarray:
        return self.boxes[:, 3] - self.boxes[:, 1]


@dataclass
class RepairResult:
    identity_of: dict[int, int]  # raw track id -> identity id
    links: list[tuple[int, int, float]]  # (from track, to track, cost)
    interpolated: list[Observation] = field(default_factory=list)

    @property
    def identities(self) -> int:
        return len(set(self.identity_of.values()))


def _mean_feature(features: np.ndarray | None) -> np.ndarray | None:
    if features is None or len(features) == 0:
        return None
    features = features[np.isfinite(features).all(axis=1)]
    if len(features) == 0:
        return None
    mean = features.mean(axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm > 0 else None


def build_fragments(observations: Sequence[Observation]) -> list[Fragment]:
    """Group observations by raw track id, in frame order."""
    by_track: dict[int, list[Observation]] = defaultdict(list)
    for obs in observations:
        by_track[obs.track_id].append(obs)
    fragments = []
    for track_id, items in by_track.items():
        items.sort(key=lambda o: o.frame)
        frames = np.array([o.frame for o in items])
        boxes = np.array([o.xyxy for o in items], dtype=np.float64)
        fragments.append(Fragment(track_id, items[0].class_name, frames, boxes))
    return fragments


class Appearance(Protocol):
    """Re-id features of fragment ends, computed only for the ends that need them."""

    def end_features(
        self, ends: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], np.ndarray | None]:
        """L2-normalised mean feature per (track id, "head" | "tail")."""


class FeatureRows:
    """Appearance from one precomputed feature per observation (aligned with the rows)."""

    def __init__(
        self, observations: Sequence[Observation], features: np.ndarray, window: int = 8
    ) -> None:
        self._rows: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for i, obs in enumerate(observations):
            self._rows[obs.track_id].append((obs.frame, i))
        self.features, self.window = features, window

    def end_features(
        self, ends: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], np.ndarray | None]:
        out: dict[tuple[int, str], np.ndarray | None] = {}
        for track_id, side in ends:
            idx = [i for _, i in sorted(self._rows[track_id])]
            idx = idx[: self.window] if side == "head" else idx[-self.window :]
            out[(track_id, side)] = _mean_feature(self.features[idx])
        return out


def _velocity(fragment: Fragment, window: int) -> np.ndarray:
    """Centre velocity (pixels per frame) from a least-squares fit over the last `window`."""
    frames = fragment.frames[-window:].astype(np.float64)
    centres = fragment.centres()[-window:]
    if len(frames) < 2 or frames[-1] == frames[0]:
        return np.zeros(2)
    t = frames - frames.mean()
    return (t[:, None] * (centres - centres.mean(axis=0))).sum(axis=0) / (t**2).sum()


def _head_velocity(fragment: Fragment, window: int) -> np.ndarray:
    reversed_fragment = Fragment(
        fragment.track_id,
        fragment.class_name,
        -fragment.frames[:window][::-1],
        fragment.boxes[:window][::-1],
    )
    return -_velocity(reversed_fragment, window)


def motion_cost(a: Fragment, b: Fragment, fps: float, cfg: RepairConfig) -> float | None:
    """How far `b`'s start lies from `a`'s constant-velocity prediction, in box heights
    (None when the pair cannot be one identity: overlap, long gap, other class, too far)."""
    gap = b.start - a.end
    if gap <= 0 or gap > cfg.max_gap_s * fps or a.class_name != b.class_name:
        return None
    height = float(np.mean([a.heights()[-3:].mean(), b.heights()[:3].mean()]))
    if height <= 0:
        return None
    forward = a.centres()[-1] + _velocity(a, cfg.velocity_window) * gap
    backward = b.centres()[0] - _head_velocity(b, cfg.velocity_window) * gap
    motion = (
        min(np.linalg.norm(forward - b.centres()[0]), np.linalg.norm(backward - a.centres()[-1]))
        / height
    )
    # the allowed drift grows with the gap (people turn, stop, accelerate)
    allowed = cfg.max_motion * (1.0 + gap / (2.0 * fps))
    return float(motion) if motion <= allowed else None


def link_cost(
    motion: float,
    tail: np.ndarray | None,
    head: np.ndarray | None,
    cfg: RepairConfig,
) -> float | None:
    """Combined cost of a motion-plausible link, or None when the appearance disagrees."""
    if tail is not None and head is not None:
        appearance = 1.0 - float(tail @ head)
        if appearance > cfg.max_appearance:
            return None
    elif cfg.link_without_appearance:
        appearance = cfg.max_appearance
    else:
        return None
    return appearance + cfg.motion_weight * motion


def repair_identities(
    observations: Sequence[Observation],
    fps: float,
    appearance: Appearance | None = None,
    config: RepairConfig | None = None,
    frame_step: int = 1,
) -> RepairResult:
    """Link fragments into identities; returns the mapping and the interpolated boxes.

    `fps` is the video's frame rate (gaps are in video frames); `frame_step` the sampling
    stride, so interpolation fills only frames that were sampled.
    """
    cfg = config or RepairConfig()
    fragments = build_fragments(observations)
    n = len(fragments)
    identity = {f.track_id: f.track_id for f in fragments}
    if n < 2:
        return RepairResult(identity, [])
    candidates: dict[tuple[int, int], float] = {}
    for i, a in enumerate(fragments):
        for j, b in enumerate(fragments):
            if i != j and (m := motion_cost(a, b, fps, cfg)) is not None:
                candidates[(i, j)] = m
    ends = sorted(
        {(fragments[i].track_id, "tail") for i, _ in candidates}
        | {(fragments[j].track_id, "head") for _, j in candidates}
    )
    features = appearance.end_features(ends) if appearance is not None and ends else {}
    big = 1e6
    cost = np.full((n, n), big)
    for (i, j), motion in candidates.items():
        c = link_cost(
            motion,
            features.get((fragments[i].track_id, "tail")),
            features.get((fragments[j].track_id, "head")),
            cfg,
        )
        if c is not None:
            cost[i, j] = c
    rows, cols = linear_sum_assignment(cost)
    successor: dict[int, tuple[int, float]] = {}
    for i, j in zip(rows, cols, strict=True):
        if cost[i, j] < big:
            successor[i] = (j, float(cost[i, j]))
    has_predecessor = {j for j, _ in successor.values()}
    links: list[tuple[int, int, float]] = []
    for start in range(n):
        if start in has_predecessor:
            continue
        root = fragments[start].track_id
        current = start
        seen = {current}
        while current in successor:
            nxt, c = successor[current]
            if nxt in seen:
                break
            links.append((fragments[current].track_id, fragments[nxt].track_id, c))
            identity[fragments[nxt].track_id] = root
            seen.add(nxt)
            current = nxt
    interpolated = _interpolate(fragments, identity, fps, cfg, frame_step)
    return RepairResult(identity, links, interpolated)


def _interpolate(
    fragments: list[Fragment],
    identity: dict[int, int],
    fps: float,
    cfg: RepairConfig,
    frame_step: int,
) -> list[Observation]:
    """Linear boxes for the missing frames of each identity's short gaps."""
    limit = cfg.interpolate_max_s * fps
    by_identity: dict[int, list[Fragment]] = defaultdict(list)
    for fragment in fragments:
        by_identity[identity[fragment.track_id]].append(fragment)
    out: list[Observation] = []
    for members in by_identity.values():
        frames = np.concatenate([m.frames for m in members])
        boxes = np.concatenate([m.boxes for m in members])
        raw_ids = np.concatenate([np.full(len(m.frames), m.track_id) for m in members])
        order = np.argsort(frames, kind="stable")
        frames, boxes, raw_ids = frames[order], boxes[order], raw_ids[order]
        class_name = members[0].class_name
        for k in range(len(frames) - 1):
            f0, f1 = int(frames[k]), int(frames[k + 1])
            if frame_step < f1 - f0 <= limit:
                for f in range(f0 + frame_step, f1, frame_step):
                    w = (f - f0) / (f1 - f0)
                    box = tuple(map(float, (1 - w) * boxes[k] + w * boxes[k + 1]))
                    # the box belongs to the fragment before the gap (its raw tracker id)
                    out.append(Observation(f, int(raw_ids[k]), box, 0.0, class_name))
    return out


def _crop(image: np.ndarray, xyxy: Sequence[float]) -> np.ndarray | None:
    h, w = image.shape[:2]
    x1, y1 = max(0, int(xyxy[0])), max(0, int(xyxy[1]))
    x2, y2 = min(w, round(xyxy[2])), min(h, round(xyxy[3]))
    if x2 - x1 < 2 or y2 - y1 < 4:
        return None
    return image[y1:y2, x1:x2].copy()


class CropAppearance:
    """Appearance from crops kept while frames stream by: the first and last `window`
    crops of each track. Only the ends that take part in a motion-plausible link are
    embedded (in one batch), which keeps the stage cheap."""

    def __init__(self, embedder: Any | None = None, window: int = 4) -> None:
        self.embedder = embedder
        self.window = window
        self.head: dict[int, list[np.ndarray]] = defaultdict(list)
        self.tail: dict[int, deque[np.ndarray]] = defaultdict(lambda: deque(maxlen=window))

    def add(self, track_id: int, image: np.ndarray, xyxy: Sequence[float]) -> None:
        crop = _crop(image, xyxy)
        if crop is None:
            return
        if len(self.head[track_id]) < self.window:
            self.head[track_id].append(crop)
        self.tail[track_id].append(crop)

    def end_features(
        self, ends: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], np.ndarray | None]:
        if self.embedder is None:
            return {}
        batch: list[np.ndarray] = []
        spans: dict[tuple[int, str], tuple[int, int]] = {}
        for track_id, side in ends:
            crops = self.head.get(track_id, []) if side == "head" else self.tail.get(track_id, [])
            spans[(track_id, side)] = (len(batch), len(batch) + len(crops))
            batch.extend(crops)
        feats = self.embedder.embed(batch) if batch else np.zeros((0, 1))
        return {end: _mean_feature(feats[a:b]) if b > a else None for end, (a, b) in spans.items()}


def default_embedder() -> Any | None:
    """OSNet re-id when its weights resolve, else MobileNetV2 crop features."""
    from capstone.embedders import image_embedder, reid_embedder

    return reid_embedder() or image_embedder()


def appearance_from_frames(
    observations: Sequence[Observation],
    frames: Iterable[tuple[int, np.ndarray]],
    embedder: Any | None = None,
    window: int = 4,
) -> CropAppearance:
    """Collect end crops for `observations` from `(frame number, image)` pairs in order."""
    appearance = CropAppearance(embedder if embedder is not None else default_embedder(), window)
    by_frame: dict[int, list[Observation]] = defaultdict(list)
    for obs in observations:
        by_frame[obs.frame].append(obs)
    for number, image in frames:
        for obs in by_frame.get(number, ()):
            appearance.add(obs.track_id, image, obs.xyxy)
    return appearance


def repair_mot_rows(
    rows: Sequence[Any],
    fps: float,
    frames: Iterable[tuple[int, np.ndarray]] | None = None,
    *,
    config: RepairConfig | None = None,
    embedder: Any | None = None,
) -> tuple[list[Any], RepairResult]:
    """Repair MOT rows (`capstone.evaluate.MotRow`): ids become identities, short gaps are
    interpolated. `frames` yields `(MOT frame number, BGR image)` for appearance; without
    it, motion alone links fragments."""
    from capstone.evaluate import MotRow

    observations = [
        Observation(r.frame, r.track_id, (r.x, r.y, r.x + r.w, r.y + r.h), r.score, "person")
        for r in rows
    ]
    appearance = (
        appearance_from_frames(observations, frames, embedder) if frames is not None else None
    )
    result = repair_identities(observations, fps, appearance, config)
    repaired = [r._replace(track_id=result.identity_of[r.track_id]) for r in rows]
    repaired += [
        MotRow(
            o.frame,
            result.identity_of[o.track_id],
            o.xyxy[0],
            o.xyxy[1],
            o.xyxy[2] - o.xyxy[0],
            o.xyxy[3] - o.xyxy[1],
            0.5,
        )
        for o in result.interpolated
    ]
    repaired.sort(key=lambda r: (r.frame, r.track_id))
    return repaired, result
