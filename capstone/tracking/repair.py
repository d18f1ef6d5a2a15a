"""Identity repair: link track fragments into identities after tracking, offline.

A tracker working frame by frame loses an identity when a person is occluded for longer
than its buffer, and starts a new id when they reappear. capstone analyzes recorded video,
so it can look at the whole video first and link fragments, but only on evidence that
would convince a person (a wrong link costs more than a missed one):

- the fragments do not overlap, the class is the same and the box sizes agree;
- motion: the second starts where the first one's constant-velocity motion predicts,
  relative to the camera (`CameraMotion`, estimated from the consistent drift of all
  tracks), within a gate in box heights that grows with the gap in seconds and shrinks
  when the camera moves;
- with appearance (re-id embeddings of the facing ends: OSNet when its weights resolve,
  MobileNetV2 crop features otherwise) the features must agree *and* no rival fragment of
  either end may look as alike; without appearance the link must be the only one motion allows
  for both ends, over a short gap, with a camera that is not moving fast.

Links are chosen by minimum-cost bipartite matching (each fragment gets at most one
successor and one predecessor), so chains of fragments become one identity. Short gaps
inside an identity are then filled by interpolation. Nothing here reads ground truth;
`bench/identity_repair.py` validates the thresholds (README, "Tracking quality").

>>> import numpy as np
>>> from capstone.core.detections import Detections
>>> frames = [0, 1, 2, 3, 4, 8, 9, 10, 11]  # track 1 lost at frame 5, track 2 from frame 8
>>> boxes = Detections([[0, 0, 10, 20]] * 9, [0.9] * 9, [0] * 9, [1] * 5 + [2] * 4,
...                    {0: "person"}, data={"frame": np.array(frames)})
>>> result = repair_identities(boxes, fps=25)
>>> result.identity_of[1] == result.identity_of[2], result.interpolated["frame"].tolist()
(True, [5, 6, 7])
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from capstone.core.detections import Detections
from capstone.core.geometry import crop_box


@dataclass
class RepairConfig:
    """Thresholds. Distances are in box heights, times in seconds, so one setting holds at
    any frame rate and object size; gates widen with the gap and shrink when the camera
    moves. `motion_per_s` and `camera_max` were chosen on TUD-Campus (and its variants)
    and validated on held-out PETS09-S2L1 and its variants (`bench/identity_repair.py
    --loo`, README); the rest are set by reasoning, and the tuning on either sequence
    left them where they are or moved them in a way that did not transfer."""

    max_gap_s: float = 3.0  # with appearance
    max_gap_motion_s: float = 1.0  # without appearance (motion alone)
    max_motion: float = 0.25  # predicted-vs-observed centre distance at gap 0, box heights
    motion_per_s: float = 0.2  # the allowance grows this much per second of gap
    max_height_ratio: float = 1.35  # box heights at the facing ends agree this well
    max_appearance: float = 0.25  # cosine distance of re-id features at the facing ends
    appearance_margin: float = 0.0  # a rival within this much of the partner's distance
    # blocks the link (0: one that looks as alike; 0.05 cost 0-9 pts IDF1 on every PETS09
    # row with appearance and changed no TUD-Campus row, bench/README)
    ambiguity: float = 2.0  # a rival within this many gates makes a motion-only link moot
    min_length: int = 3  # observations a fragment needs to take part in a link
    motion_weight: float = 0.1
    velocity_window: int = 10
    feature_window: int = 8
    interpolate_max_s: float = 0.3
    interpolate_smooth_s: float = 0.0  # > 0: Gaussian-smoothed interpolation (GSI, as in
    # StrongSORT++): gap boxes from a Gaussian-process fit (RBF kernel of this length scale,
    # seconds) to the boxes on both sides, around their linear trend; 0: linear
    interpolate_max_height_ratio: float = 1.2  # only between boxes of about one size
    interpolate_min_rank: float = 0.2  # only for identities whose mean confidence is above
    # this quantile of all observations' confidences (not for doubtful tracks)
    link_without_appearance: bool = True  # when no features exist, unambiguous motion links
    camera_min_tracks: int = 3  # tracks that must agree before a frame's drift is camera motion
    camera_backoff: float = 0.5  # gates shrink by 1 / (1 + camera_backoff * camera motion)
    camera_max: float = 1.0  # camera motion (box heights per second) above which
    # motion-only links are not made at all


class Fragment:
    """One raw track's boxes in frame order: a view of its `Detections` (with `frame`)
    as the float64 arrays the link costs are computed on."""

    def __init__(self, detections: Detections, class_name: str | None = None) -> None:
        self.detections = detections
        self.track_id = int(detections.tracker_id[0])  # type: ignore[index]
        self.class_name = class_name if class_name is not None else detections.labels[0]
        self.frames: np.ndarray = np.asarray(detections["frame"], np.int64)
        self.boxes: np.ndarray = detections.xyxy.astype(np.float64)
        self.scores: np.ndarray = detections.confidence.astype(np.float64)

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
    interpolated: Detections = field(default_factory=lambda: _no_boxes())  # `frame` column
    camera_motion: float = 0.0  # estimated camera motion, box heights per second (median)

    @property
    def identities(self) -> int:
        return len(set(self.identity_of.values()))


def _no_boxes() -> Detections:
    empty = Detections.empty()
    empty.tracker_id = np.zeros(0, np.int64)
    empty.data = {"frame": np.zeros(0, np.int64)}
    return empty


def _mean_feature(features: np.ndarray | None) -> np.ndarray | None:
    if features is None or len(features) == 0:
        return None
    features = features[np.isfinite(features).all(axis=1)]
    if len(features) == 0:
        return None
    mean = features.mean(axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm > 0 else None


def build_fragments(detections: Detections) -> list[Fragment]:
    """One fragment per raw track id (`tracker_id`), in frame order; fragments in the order
    their tracks first appear in `detections`."""
    if not len(detections):
        return []
    ids, first = np.unique(detections.tracker_id, return_index=True)  # type: ignore[call-overload]
    rank = np.empty(len(ids), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(ids))
    grouped = detections.sorted_by_track()
    parts = [grouped[part] for _, part in grouped.by_track()]
    return [Fragment(parts[k]) for k in np.argsort(rank, kind="stable")]


class Appearance(Protocol):
    """Re-id features of fragment ends, computed only for the ends that need them."""

    def end_features(
        self, ends: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], np.ndarray | None]:
        """L2-normalised mean feature per (track id, "head" | "tail")."""


class FeatureRows:
    """Appearance from one precomputed feature per observation (aligned with the rows)."""

    def __init__(self, detections: Detections, features: np.ndarray, window: int = 8) -> None:
        self._rows: dict[int, list[tuple[int, int]]] = defaultdict(list)
        frames = detections["frame"].tolist()
        track_ids = detections.tracker_id.tolist()  # type: ignore[union-attr]
        for i, (frame, track_id) in enumerate(zip(frames, track_ids, strict=True)):
            self._rows[track_id].append((frame, i))
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
    head = fragment.detections[:window][::-1]
    head.data = {"frame": -head["frame"]}
    reversed_fragment = Fragment(head, fragment.class_name)
    return -_velocity(reversed_fragment, window)


class CameraMotion:
    """Camera motion estimated from the tracks alone: the consistent drift of all tracks.

    For each frame the centre displacement (pixels per frame) of every track seen in it and
    shortly before is collected; when at least `min_tracks` tracks agree, their median is
    the camera's drift in that frame (a single walker is not a camera). `offset(a, b)` is
    the accumulated drift between two frames, `score` the median drift in box heights per
    second (0 for a static camera; people walking in different directions cancel out).
    """

    def __init__(self, fragments: Sequence[Fragment], fps: float, min_tracks: int = 3) -> None:
        per_frame: dict[int, list[np.ndarray]] = defaultdict(list)
        heights: list[float] = []
        for f in fragments:
            if len(f.frames) < 2:
                continue
            centres, hs = f.centres(), f.heights()
            df = np.diff(f.frames)
            close = df <= max(3, 3 * int(np.median(df)))
            for k in np.nonzero(close)[0]:
                per_frame[int(f.frames[k + 1])].append(
                    np.append((centres[k + 1] - centres[k]) / df[k], hs[k + 1])
                )
        self.first = min((f.start for f in fragments), default=0)
        last = max((f.end for f in fragments), default=0)
        drift = np.zeros((max(0, last - self.first) + 2, 2))
        known = np.zeros(len(drift), dtype=bool)
        speeds: list[float] = []
        for frame, items in per_frame.items():
            if len(items) < min_tracks:
                continue
            known[frame - self.first] = True
            table = np.array(items)
            d = np.median(table[:, :2], axis=0)
            # the tracks agree: their spread around the median is smaller than the median
            spread = np.median(np.linalg.norm(table[:, :2] - d, axis=1))
            if np.linalg.norm(d) > spread:
                drift[frame - self.first] = d
            heights.append(float(np.median(table[:, 2])))
            speeds.append(float(np.linalg.norm(drift[frame - self.first])) / heights[-1])
        # frames without an estimate (too few tracks, sampled-out frames): the drift of the
        # nearest frames that have one, interpolated
        if known.any() and not known.all():
            at = np.nonzero(known)[0]
            todo = np.nonzero(~known)[0]
            for axis in (0, 1):
                drift[todo, axis] = np.interp(todo, at, drift[at, axis])
        self.cumulative = np.cumsum(drift, axis=0)
        self.score = float(np.median(speeds)) * fps if len(speeds) >= 5 else 0.0

    def offset(self, a: int, b: int) -> np.ndarray:
        ia = min(max(a - self.first, 0), len(self.cumulative) - 1)
        ib = min(max(b - self.first, 0), len(self.cumulative) - 1)
        return self.cumulative[ib] - self.cumulative[ia]

    def drift(self, frames: np.ndarray) -> np.ndarray:
        """Mean camera drift (pixels per frame) over a fragment's `frames`."""
        if len(frames) < 2 or frames[-1] == frames[0]:
            return np.zeros(2)
        return self.offset(int(frames[0]), int(frames[-1])) / float(frames[-1] - frames[0])


def motion_cost(
    a: Fragment,
    b: Fragment,
    fps: float,
    cfg: RepairConfig,
    camera: CameraMotion | None = None,
    *,
    max_gap_s: float | None = None,
    slack: float = 1.0,
) -> float | None:
    """How far `b`'s start lies from `a`'s constant-velocity prediction, relative to the
    allowed distance (1.0 = at the gate), or None when the pair cannot be one identity:
    overlap, long gap, other class, other size, too far. Motion relative to the camera is
    extrapolated and the camera's own drift added, when `camera` is given. `slack` widens
    the gate (used to look for rivals)."""
    gap = b.start - a.end
    limit = cfg.max_gap_s if max_gap_s is None else max_gap_s
    if gap <= 0 or gap > limit * fps or a.class_name != b.class_name:
        return None
    ha, hb = float(np.median(a.heights()[-3:])), float(np.median(b.heights()[:3]))
    if ha <= 0 or hb <= 0 or max(ha, hb) / min(ha, hb) > cfg.max_height_ratio * slack:
        return None
    height = (ha + hb) / 2
    w = cfg.velocity_window
    if camera is not None:
        shift = camera.offset(a.end, b.start)
        va = _velocity(a, w) - camera.drift(a.frames[-w:])
        vb = _head_velocity(b, w) - camera.drift(b.frames[:w])
    else:
        shift, va, vb = np.zeros(2), _velocity(a, w), _head_velocity(b, w)
    forward = a.centres()[-1] + va * gap + shift
    backward = b.centres()[0] - vb * gap - shift
    distance = min(
        np.linalg.norm(forward - b.centres()[0]), np.linalg.norm(backward - a.centres()[-1])
    )
    backoff = 1.0 + cfg.camera_backoff * (camera.score if camera is not None else 0.0)
    allowed = (cfg.max_motion + cfg.motion_per_s * gap / fps) * height * slack / backoff
    ratio = float(distance / allowed)
    return ratio if ratio <= 1.0 else None


def repair_identities(
    detections: Detections,
    fps: float,
    appearance: Appearance | None = None,
    config: RepairConfig | None = None,
    frame_step: int = 1,
) -> RepairResult:
    """Link the tracks of `detections` (raw `tracker_id`s, a `frame` column) into
    identities; returns the mapping and the interpolated boxes.

    `fps` is the video's frame rate (gaps are in video frames); `frame_step` the sampling
    stride, so interpolation fills only frames that were sampled.

    A link needs evidence a person would accept:

    - motion: `b` starts where `a`'s motion (relative to the camera, whose drift is
      estimated from all tracks) predicts, within a gate that grows with the gap and shrinks
      when the camera moves; the box sizes agree;
    - with appearance (re-id features of both facing ends): the features agree
      (`max_appearance`) *and* no rival of either end within a wider motion gate looks as
      alike (within `appearance_margin`, 0 by default);
    - without appearance: the link is the only one possible for both ends within
      `ambiguity` gates, the gap is short (`max_gap_motion_s`) and the camera is still
      (`camera_max`); otherwise no link is made.
    """
    return repair_fragments(build_fragments(detections), fps, appearance, config, frame_step)


def repair_fragments(
    fragments: list[Fragment],
    fps: float,
    appearance: Appearance | None = None,
    config: RepairConfig | None = None,
    frame_step: int = 1,
) -> RepairResult:
    """`repair_identities` on fragments built already (e.g. from column arrays)."""
    cfg = config or RepairConfig()
    n = len(fragments)
    identity = {f.track_id: f.track_id for f in fragments}
    camera = CameraMotion(fragments, fps, cfg.camera_min_tracks)
    if n < 2:
        return RepairResult(identity, [], camera_motion=camera.score)
    usable = [len(f.frames) >= cfg.min_length for f in fragments]
    have_appearance = appearance is not None
    gap_limit = cfg.max_gap_s if have_appearance else min(cfg.max_gap_s, cfg.max_gap_motion_s)
    if not have_appearance and (not cfg.link_without_appearance or camera.score > cfg.camera_max):
        interpolated = _interpolate(fragments, identity, fps, cfg, frame_step, camera)
        return RepairResult(identity, [], interpolated, camera.score)
    candidates: dict[tuple[int, int], float] = {}
    rivals: dict[tuple[int, int], float] = {}  # within `ambiguity` gates
    order = sorted(range(n), key=lambda k: fragments[k].start)
    for i in range(n):
        if not usable[i]:
            continue
        a = fragments[i]
        for j in order:
            b = fragments[j]
            if b.start <= a.end:
                continue
            if b.start - a.end > max(cfg.max_gap_s, gap_limit) * fps:
                break
            if not usable[j]:
                continue
            wide = motion_cost(a, b, fps, cfg, camera, max_gap_s=gap_limit, slack=cfg.ambiguity)
            if wide is None:
                continue
            rivals[(i, j)] = wide
            m = motion_cost(a, b, fps, cfg, camera, max_gap_s=gap_limit)
            if m is not None:
                candidates[(i, j)] = m
    out_rivals: dict[int, list[int]] = defaultdict(list)
    in_rivals: dict[int, list[int]] = defaultdict(list)
    for i, j in rivals:
        out_rivals[i].append(j)
        in_rivals[j].append(i)
    features: dict[tuple[int, str], np.ndarray | None] = {}
    if have_appearance and rivals:
        ends = sorted(
            {(fragments[i].track_id, "tail") for i, _ in rivals}
            | {(fragments[j].track_id, "head") for _, j in rivals}
        )
        features = appearance.end_features(ends)  # type: ignore[union-attr]
        if not any(f is not None for f in features.values()):
            # no re-id model, or no usable crops: decide as without appearance
            return repair_fragments(fragments, fps, None, cfg, frame_step)

    def distance(i: int, j: int) -> float | None:
        tail = features.get((fragments[i].track_id, "tail"))
        head = features.get((fragments[j].track_id, "head"))
        return None if tail is None or head is None else 1.0 - float(tail @ head)

    big = 1e6
    cost = np.full((n, n), big)
    for (i, j), motion in candidates.items():
        if have_appearance:
            d = distance(i, j)
            if d is None or d > cfg.max_appearance:
                continue
            others = [distance(i, k) for k in out_rivals[i] if k != j]
            others += [distance(k, j) for k in in_rivals[j] if k != i]
            if any(o is not None and o <= d + cfg.appearance_margin for o in others):
                continue  # another fragment looks as alike: not convincing
            cost[i, j] = d + cfg.motion_weight * motion
        else:
            if len(out_rivals[i]) > 1 or len(in_rivals[j]) > 1:
                continue  # motion alone cannot tell which
            cost[i, j] = motion
    from scipy.optimize import linear_sum_assignment  # 0.7 s to import: not at startup

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
    interpolated = _interpolate(fragments, identity, fps, cfg, frame_step, camera)
    return RepairResult(identity, links, interpolated, camera.score)


def _interpolate(
    fragments: list[Fragment],
    identity: dict[int, int],
    fps: float,
    cfg: RepairConfig,
    frame_step: int,
    camera: CameraMotion | None = None,
) -> Detections:
    """Linear boxes for the missing frames of each identity's short gaps (linear relative
    to the scene: the camera's estimated drift in between is added)."""
    limit = cfg.interpolate_max_s * fps
    ratio = cfg.interpolate_max_height_ratio
    by_identity: dict[int, list[Fragment]] = defaultdict(list)
    for fragment in fragments:
        by_identity[identity[fragment.track_id]].append(fragment)
    scores = np.concatenate([f.scores for f in fragments]) if fragments else np.zeros(0)
    floor = float(np.quantile(scores, cfg.interpolate_min_rank)) if len(scores) else 0.0
    out: list[Detections] = []
    for members in by_identity.values():
        if float(np.mean(np.concatenate([m.scores for m in members]))) < floor - 1e-9:
            continue  # a doubtful track: do not invent boxes for it
        frames = np.concatenate([m.frames for m in members])
        boxes = np.concatenate([m.boxes for m in members])
        raw_ids = np.concatenate([np.full(len(m.frames), m.track_id) for m in members])
        order = np.argsort(frames, kind="stable")
        frames, boxes, raw_ids = frames[order], boxes[order], raw_ids[order]
        origin = members[0].detections[0]
        filled: list[tuple[int, int, np.ndarray]] = []  # (frame, raw tracker id, xyxy)
        for k in range(len(frames) - 1):
            f0, f1 = int(frames[k]), int(frames[k + 1])
            h0, h1 = boxes[k][3] - boxes[k][1], boxes[k + 1][3] - boxes[k + 1][1]
            similar = min(h0, h1) > 0 and max(h0, h1) / min(h0, h1) <= ratio
            if frame_step < f1 - f0 <= limit and similar and cfg.interpolate_smooth_s > 0:
                targets = np.arange(f0 + frame_step, f1, frame_step)
                smooth = _gsi_gap(frames, boxes, k, targets, cfg, fps, camera)
                filled.extend(
                    (int(f), int(raw_ids[k]), b) for f, b in zip(targets, smooth, strict=True)
                )
            elif frame_step < f1 - f0 <= limit and similar:
                for f in range(f0 + frame_step, f1, frame_step):
                    w = (f - f0) / (f1 - f0)
                    xyxy = (1 - w) * boxes[k] + w * boxes[k + 1]
                    if camera is not None:
                        dx, dy = camera.offset(f0, f) - w * camera.offset(f0, f1)
                        xyxy = xyxy + np.array([dx, dy, dx, dy])
                    # the box belongs to the fragment before the gap (its raw tracker id)
                    filled.append((f, int(raw_ids[k]), xyxy))
        if filled:
            n = len(filled)
            out.append(
                Detections(
                    np.array([box for _, _, box in filled], np.float64),
                    np.zeros(n, np.float64),
                    np.full(n, origin.class_id[0]),
                    [tid for _, tid, _ in filled],
                    origin.class_names,
                    {"frame": np.array([f for f, _, _ in filled], np.int64)},
                )
            )
    return Detections.merge(out) if out else _no_boxes()


def _gsi_gap(
    frames: np.ndarray,
    boxes: np.ndarray,
    k: int,
    targets: np.ndarray,
    cfg: RepairConfig,
    fps: float,
    camera: CameraMotion | None,
) -> np.ndarray:
    """Boxes at `targets` (frames inside the gap after observation `k`) from a Gaussian
    process over up to `velocity_window` observations on each side of the gap: RBF kernel
    (length scale `interpolate_smooth_s`), a little observation noise, the linear trend of
    those observations as its mean. In scene coordinates (camera drift taken out and
    added back). With two observations it is the linear interpolation."""
    w = cfg.velocity_window
    lo, hi = max(0, k + 1 - w), min(len(frames), k + 1 + w)
    t = frames[lo:hi].astype(np.float64)
    y = boxes[lo:hi].astype(np.float64)
    origin = int(frames[k])
    if camera is not None:
        y = y - np.array([np.r_[d, d] for d in (camera.offset(origin, int(f)) for f in t)])
    basis = np.stack([t - t.mean(), np.ones_like(t)], axis=1)
    coef = np.linalg.lstsq(basis, y, rcond=None)[0]
    resid = y - basis @ coef
    scale = max(cfg.interpolate_smooth_s * fps, 1e-6)
    kernel = np.exp(-0.5 * ((t[:, None] - t[None, :]) / scale) ** 2) + 0.1 * np.eye(len(t))
    at = targets.astype(np.float64)
    cross = np.exp(-0.5 * ((at[:, None] - t[None, :]) / scale) ** 2)
    trend = np.stack([at - t.mean(), np.ones_like(at)], axis=1) @ coef
    out = trend + cross @ np.linalg.solve(kernel, resid)
    if camera is not None:
        out = out + np.array([np.r_[d, d] for d in (camera.offset(origin, int(f)) for f in at)])
    return out


EMBED_BATCH = 64


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
        crop = crop_box(image, xyxy)
        if crop is None:
            return
        if len(self.head[track_id]) < self.window:
            self.head[track_id].append(crop)
        self.tail[track_id].append(crop)

    def all_end_features(self) -> dict[int, dict[str, np.ndarray | None]]:
        """Head and tail features of every track seen (one batch), for `EndFeatures`."""
        ends = [(t, side) for t in sorted(self.head) for side in ("head", "tail")]
        feats = self.end_features(ends)
        return {t: {side: feats.get((t, side)) for side in ("head", "tail")} for t in self.head}

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
        # in slices: a chunk's ends can be thousands of crops, and one batch tensor of them
        # would cost hundreds of MB
        parts = [
            self.embedder.embed(batch[i : i + EMBED_BATCH])
            for i in range(0, len(batch), EMBED_BATCH)
        ]
        feats = np.concatenate(parts) if parts else np.zeros((0, 1))
        return {end: _mean_feature(feats[a:b]) if b > a else None for end, (a, b) in spans.items()}


class EndFeatures:
    """Appearance from precomputed end features: `{track id: {"head": vec, "tail": vec}}`."""

    def __init__(self, features: dict[int, dict[str, Any]]) -> None:
        self.features = features

    def end_features(
        self, ends: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], np.ndarray | None]:
        out: dict[tuple[int, str], np.ndarray | None] = {}
        for track_id, side in ends:
            value = self.features.get(track_id, {}).get(side)
            out[(track_id, side)] = None if value is None else np.asarray(value, np.float64)
        return out


def default_embedder() -> Any | None:
    """OSNet re-id when its weights resolve, else MobileNetV2 crop features."""
    from capstone.models.embedders import image_embedder, reid_embedder

    return reid_embedder() or image_embedder()


def appearance_from_frames(
    detections: Detections,
    frames: Iterable[tuple[int, np.ndarray]],
    embedder: Any | None = None,
    window: int = 4,
) -> CropAppearance:
    """Collect end crops for `detections` from `(frame number, image)` pairs in order."""
    appearance = CropAppearance(embedder if embedder is not None else default_embedder(), window)
    by_frame: dict[int, list[int]] = defaultdict(list)
    for i, frame in enumerate(detections["frame"].tolist()):
        by_frame[frame].append(i)
    track_ids = detections.tracker_id.tolist()  # type: ignore[union-attr]
    for number, image in frames:
        for i in by_frame.get(number, ()):
            appearance.add(track_ids[i], image, detections.xyxy[i].tolist())
    return appearance


def repair_mot_rows(
    rows: Sequence[Any],
    fps: float,
    frames: Iterable[tuple[int, np.ndarray]] | None = None,
    *,
    appearance: Appearance | None = None,
    config: RepairConfig | None = None,
    embedder: Any | None = None,
    frame_step: int = 1,
) -> tuple[list[Any], RepairResult]:
    """Repair MOT rows (`capstone.io.mot.MotRow`): ids become identities, short gaps are
    interpolated. `frames` yields `(MOT frame number, BGR image)` for appearance (or pass
    `appearance` directly); without either, only motion-unambiguous links are made."""
    from capstone.io.mot import mot_rows_to_detections

    detections = mot_rows_to_detections(rows)
    if appearance is None and frames is not None:
        appearance = appearance_from_frames(detections, frames, embedder)
    result = repair_identities(detections, fps, appearance, config, frame_step)
    return apply_repair(rows, result), result


def apply_repair(rows: Sequence[Any], result: RepairResult) -> list[Any]:
    """MOT rows with identities for ids, plus the interpolated boxes (score 0.5)."""
    from capstone.io.mot import MotRow

    repaired = [r._replace(track_id=result.identity_of.get(r.track_id, r.track_id)) for r in rows]
    filled = result.interpolated
    repaired += [
        MotRow(frame, result.identity_of.get(tid, tid), x1, y1, x2 - x1, y2 - y1, 0.5)
        for frame, tid, (x1, y1, x2, y2) in zip(
            filled["frame"].tolist(),
            filled.tracker_id.tolist(),  # type: ignore[union-attr]
            filled.xyxy.tolist(),
            strict=True,
        )
    ]
    repaired.sort(key=lambda r: (r.frame, r.track_id))
    return repaired
