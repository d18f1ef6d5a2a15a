"""The `attributes` stage: what each track looks like and does, and whether it may be counted.

One `apps_db_trackattributes` row per final track (the `track_id` of `apps_db_track`),
made in `publish`:

- times (`t_start`, `t_end`, `duration_s`, seconds of video) and `confidence` (the mean
  detector confidence of its boxes, as `apps_db_track.mean_confidence`);
- `color` / `color_shares`: the 11 basic colour terms of Berlin & Kay
  (`capstone.core.colors`, values stretched by the frame's own levels) over the *centre*
  of the box (people: the middle half of the
  width, 20-70 % of the height, i.e. the torso, not the face, legs or ground; other
  classes: the inner 60 %), sampled while the frame is in memory at most once every
  `SAMPLE_EVERY_S` s per track, keeping the `MAX_SAMPLES` best samples (confident, large,
  not covered by another box, not cut by the frame border). Each sample weighs the same;
  the shares are their mean, and `color` is the dominant chromatic term when it holds at
  least 30 % of the pixels, else the dominant one of black/white/grey;
- `direction`, `dx_px`, `dy_px`, `path_px`, `speed_px_s`, `pause_s`, `width_px`, `height_px`,
  `size_frac`, and `heat` (where its boxes stood: counts of their bottom centres on a 12 x 9
  grid over the frame, summed into heatmaps for *where* questions) from every tracked box
  of the video (`capstone.core.motion`). The movement (`direction`, `dx_px`, `dy_px`,
  `path_px`, the speeds) is the *object's*: when the `identity` stage linked several tracks
  into one identity, over all their boxes in time order (`object_motions`), so a person
  lost behind another and found again has one direction; size, `heat` and plausibility
  stay the track's own. `pause_heat`: where the object stood during its longest pause
  (`pause_at`'s cell of the same grid, holding the pause in tenths of a second; None
  without a pause), summed into heatmaps for "where did people stop?"; `pause_from`,
  `pause_to`: when it stood (seconds), for "while the bus was stopped". `speed_m_s`
  only with a ground calibration: option `ground_scale_m_per_px` (metres per pixel on the
  ground), or `ground_points` (two image points `[[x, y], [x, y]]`) and
  `ground_distance_m` (their distance on the ground). One scale for the whole image: right
  for a camera looking straight down, rough for an oblique one (no perspective model);
- `fine_type` / `fine_types`: the MobileNetV2 ImageNet classifier (the embed stage's
  model instance, `capstone.models.embedders.image_embedder`) on the best crop of each
  track (at its chunk's end, one forward pass per track), keeping only ImageNet
  labels that refine its class (`capstone.core.fine_types.FINE_TYPES`, e.g. car ->
  minivan, pickup, cab, ...), with their probabilities; `fine_type` is the likeliest when
  it reaches `FINE_MIN_SCORE`;
- `imagenet`: the same classifier's `IMAGENET_TOP_K` likeliest ImageNet labels of the best
  crop of every track (people too: suit, jersey, backpack, ...) with their probabilities,
  which zero-shot nouns are matched against (`capstone.search.zeroshot`). Option
  `classify_fine_types` (true) turns both off;
- `plausible` / `doubts`: whether the track may be counted or answered (`plausibility`):

  * `doubtful`: mean confidence below `DOUBTFUL_CONF` (0.4);
  * `short`: fewer than `MIN_BOXES` (3) boxes or shorter than `MIN_DURATION_S` (0.5 s),
    the same rule the events stage uses to confirm an object;
  * `oversized`: a vehicle track with at least `OVERSIZED_SHARE` (5 %, and at least 3) of
    its boxes covering more than `OVERSIZED_FRAC` (35 %) of the frame *and* more than
    `OVERSIZED_VS_SCENE` (4) times the median size of the video's vehicle tracks: a box
    over several vehicles, a whole-frame "train"; a lone close-up (no scene to compare
    with) is never flagged;
  * `static_overlay`: a class that moves by itself (vehicles, animals), detected without
    conviction (mean confidence below `OVERLAY_MAX_CONF`, 0.5) in at least 3 boxes, that
    did not move half its height (however brief; not the `direction` rule for brief
    tracks), with at least `STABLE_SHARE` (80 %) of its boxes over its
    median box (IoU >= 0.5), placed like a caption: its centre in the top or bottom
    `CAPTION_BAND` (20 %) of the frame, or its median box within `CAPTION_BORDER` (3 %)
    of the frame width from the left or right border: burnt-in captions and logos
    detected as a bus or a car. Parked vehicles are detected with conviction (0.68-0.69
    for the car and the van parked at the top of pets09-s2l1) and stay plausible; a
    poorly seen vehicle parked at the border is flagged, a logo detected with conviction
    is not;
  * `class_flips`: the track's class holds less than `CLASS_MIN_SHARE` (70 %) of its
    boxes' labels (as the stages see them: after the tracker's class vote).

  `plausible` is false when doubtful, short, oversized or static_overlay holds, or when
  the track's class holds less than `CLASS_MAJORITY` (50 %) of its labels (the class is
  wrong); `class_flips` above that is a doubt only (vans go from car to truck).

Measured on highway-cctv.avi (320x240, 748 frames at 25 fps, default parameters): the
vehicle tracks' median box covers 0.44 % of the frame; the `train` track (the lorry,
whose first boxes were a whole-frame "train" detection) has 22 of its 179 boxes (12 %)
over 35 % of the frame (up to 85 %) and `train` on 31 % of its labels: oversized and
class_flips. Ultralytics' stock ByteTrack (the tracker issue 27 saw) makes a `train` track
of 28 boxes over 85 % of the frame (oversized) and `bus` tracks on the burnt-in
"PEDESTRIAN ALARM" caption at the left border (x 3-88, y 64-111): one of 1 box (short,
doubtful) and one of 5 boxes, all over their median box (static_overlay, short,
doubtful); the motorcyclist (`person`, 7 s) stays plausible. Thresholds were chosen on
highway-cctv and checked on pets09-s2l1.avi (people: no oversized or static_overlay
doubt on a track lasting 1.5 s or more); `tests/test_attributes.py` checks both.

Chunks: the per-track state of a chunk is small and bounded (class counts, at most
`MAX_SAMPLES` colour histograms of 11 counts, the fine-type scores of one crop); `publish`
merges the fragments of a stitched track through `VideoResult.final_id_of`. Samples are
placed on a fixed time grid (one per `SAMPLE_EVERY_S` slot of video time), so the same
boxes give the same samples however the video is cut into chunks.

Cost (pets09-s2l1.avi, 768x576, 150 frames, every default stage, 2 CPU cores): 1.5 ms
per frame in the pass (colour samples; the whole pass is about 115 ms per frame, so
about 1.5 %), 24 ms at the chunk's end for the fine types of 2 vehicle tracks (the embed
stage's model, already loaded), 27 ms in publish for 13 tracks. `attributes.fine_type` in
the timings is the classifier's share.

>>> sample_region([0, 0, 100, 200], "person")
(25.0, 40.0, 75.0, 140.0)
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import numpy as np
from pydantic import Field, StrictBool, model_validator

from capstone.core.colors import TERMS, dominant_color, frame_levels, shares_of
from capstone.core.detections import Detections
from capstone.core.fine_types import FINE_TYPES
from capstone.core.geometry import box_iou
from capstone.core.motion import Motion, direction_of, motion_of, pause_place, place_counts
from capstone.core.records import Record, TrackSummary, objects_of
from capstone.core.video import Frame
from capstone.stages.base import Number, RunContext, Stage, StageOptions, VideoResult

SAMPLE_EVERY_S = 0.5
MAX_SAMPLES = 12
FINE_MIN_SCORE = 0.1
FINE_TOP_K = 20
IMAGENET_TOP_K = 10  # labels kept per track for zero-shot nouns (`capstone.search.zeroshot`)

DOUBTFUL_CONF = 0.4
MIN_BOXES = 3
MIN_DURATION_S = 0.5
OVERSIZED_FRAC = 0.35
OVERSIZED_VS_SCENE = 4.0
OVERSIZED_SHARE = 0.05
STABLE_SHARE = 0.8
OVERLAY_MAX_CONF = 0.5
CAPTION_BAND = 0.2
CAPTION_BORDER = 0.03
CLASS_MIN_SHARE = 0.7
CLASS_MAJORITY = 0.5

VEHICLES = frozenset({"car", "truck", "bus", "train", "motorcycle", "bicycle", "boat"})
# classes that move by themselves: a box of one that never moves near a frame's top or
# bottom edge is an overlay (caption, logo) rather than the thing
MOVERS = VEHICLES | {"airplane", "horse", "dog", "cat", "cow", "sheep", "bird"}
DISQUALIFYING = ("doubtful", "short", "oversized", "static_overlay")


def sample_region(box: Sequence[float], class_name: str) -> tuple[float, float, float, float]:
    """The part of a box whose colour names the object: a person's torso (the middle half
    of the width, 20-70 % of the height), else the inner 60 %.

    >>> sample_region([0, 0, 100, 100], "car")
    (20.0, 20.0, 80.0, 80.0)
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if class_name == "person":
        return (x1 + 0.25 * w, y1 + 0.2 * h, x1 + 0.75 * w, y1 + 0.7 * h)
    return (x1 + 0.2 * w, y1 + 0.2 * h, x1 + 0.8 * w, y1 + 0.8 * h)


def sample_quality(xyxy: np.ndarray, confidence: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """How well each box of a frame shows its object: confidence x sqrt(area) x the share
    of it no other box covers, halved when the box touches the frame border.

    >>> boxes = np.array([[10, 10, 20, 20], [15, 10, 25, 20], [0, 50, 10, 60]], float)
    >>> [round(float(v), 2) for v in sample_quality(boxes, np.ones(3), (100, 100))]
    [5.0, 5.0, 5.0]
    """
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    area = np.maximum((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 1e-6)
    ix = np.clip(
        np.minimum(xyxy[:, None, 2], xyxy[None, :, 2])
        - np.maximum(xyxy[:, None, 0], xyxy[None, :, 0]),
        0,
        None,
    )
    iy = np.clip(
        np.minimum(xyxy[:, None, 3], xyxy[None, :, 3])
        - np.maximum(xyxy[:, None, 1], xyxy[None, :, 1]),
        0,
        None,
    )
    inter = ix * iy
    np.fill_diagonal(inter, 0.0)
    covered = np.clip(inter.max(axis=1, initial=0.0) / area, 0.0, 1.0) if len(xyxy) else area
    width, height = size
    border = (
        (xyxy[:, 0] <= 1)
        | (xyxy[:, 1] <= 1)
        | (xyxy[:, 2] >= width - 1)
        | (xyxy[:, 3] >= height - 1)
    )
    return (
        np.asarray(confidence, np.float64)
        * np.sqrt(area)
        * (1.0 - covered)
        * np.where(border, 0.5, 1.0)
    )


class AttributesOptions(StageOptions):
    """A ground calibration for speeds in m/s (a scale, or two image points and their
    distance on the ground), and whether vehicle crops are classified into fine types."""

    ground_scale_m_per_px: Annotated[Number, Field(gt=0)] | None = None
    ground_points: list[tuple[Number, Number]] | None = None
    ground_distance_m: Annotated[Number, Field(gt=0)] | None = None
    classify_fine_types: StrictBool = True

    @model_validator(mode="after")
    def _calibration(self) -> AttributesOptions:
        if (self.ground_points is None) != (self.ground_distance_m is None):
            raise ValueError("ground_points and ground_distance_m go together")
        if self.ground_points is not None:
            if len(self.ground_points) != 2:
                raise ValueError("ground_points must be two points [[x, y], [x, y]]")
            if self.ground_scale_m_per_px is not None:
                raise ValueError("give ground_scale_m_per_px or ground_points, not both")
            (ax, ay), (bx, by) = self.ground_points
            if math.hypot(bx - ax, by - ay) < 1:
                raise ValueError("ground_points must be at least 1 px apart")
        return self

    def metres_per_px(self) -> float | None:
        """The ground scale, or None without calibration.

        >>> AttributesOptions(ground_points=[(0, 0), (0, 100)], ground_distance_m=5).metres_per_px()
        0.05
        """
        if self.ground_scale_m_per_px is not None:
            return float(self.ground_scale_m_per_px)
        if self.ground_points is not None and self.ground_distance_m is not None:
            (ax, ay), (bx, by) = self.ground_points
            return float(self.ground_distance_m) / math.hypot(bx - ax, by - ay)
        return None


@dataclass
class _TrackState:
    """One track's colour samples (slot -> (quality, counts)) and label counts in a chunk."""

    labels: Counter[str] = field(default_factory=Counter)
    samples: dict[int, tuple[float, list[int]]] = field(default_factory=dict)

    def worst(self) -> tuple[float, int]:
        return min((q, -slot) for slot, (q, _) in self.samples.items())


class AttributesStage(Stage):
    """The `attributes` stage (see the module docstring)."""

    name = "attributes"
    Options = AttributesOptions
    after = ("identity",)
    emits = (Record.TRACK_ATTRIBUTES,)
    revision = 6  # 2: colours stretched by the frame's levels, `heat`, `imagenet`; 3: motion
    # of repaired identities; 4: a brief track moving `WALK_MIN` heights/s has a direction;
    # 5: `pause_s`; 6: `pause_heat`, `pause_from`, `pause_to`

    def __init__(self, ctx: RunContext) -> None:
        self.options = AttributesOptions.pick(ctx.params.options)
        self.state: dict[int, _TrackState] = defaultdict(_TrackState)
        self.crops: dict[int, np.ndarray] = {}

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        if detections.tracker_id is None or not len(detections):
            return
        slot = math.floor(frame.timestamp / SAMPLE_EVERY_S + 1e-9)
        labels = detections.labels
        quality: np.ndarray | None = None
        levels: tuple[float, float] | None = None
        for i, tid in enumerate(detections.tracker_id.tolist()):
            if tid < 0:
                continue
            st = self.state[tid]
            st.labels[labels[i]] += 1
            summary = ctx.tracks.get(tid)
            if (
                self.options.classify_fine_types
                and summary is not None
                and summary.best_frame == frame.index
            ):
                self.crops[tid] = _crop(frame.image, detections.xyxy[i])
            if slot in st.samples:
                continue
            if quality is None:
                quality = sample_quality(
                    detections.xyxy, detections.confidence, (ctx.info.width, ctx.info.height)
                )
            q = round(float(quality[i]), 4)
            if len(st.samples) >= MAX_SAMPLES and (q, -slot) <= st.worst():
                continue
            name = summary.class_name if summary is not None else labels[i]
            if levels is None:
                levels = frame_levels(frame.image)
            counts = _region_counts(frame.image, detections.xyxy[i], name, levels)
            if counts is None:
                continue
            st.samples[slot] = (q, counts)
            if len(st.samples) > MAX_SAMPLES:
                del st.samples[-st.worst()[1]]

    def end_chunk(self, ctx: RunContext) -> dict[str, Any]:
        """Per staged track: label counts, colour samples, and fine-type scores of its best
        crop (classified here, in one pass per crop)."""
        fine = self._classify(ctx)
        tracks = {
            str(tid): {
                "labels": dict(st.labels),
                "samples": [[slot, q, counts] for slot, (q, counts) in sorted(st.samples.items())],
                "fine": fine.get(tid),
            }
            for tid, st in self.state.items()
        }
        self.state = defaultdict(_TrackState)
        return {"tracks": tracks}

    def _classify(self, ctx: RunContext) -> dict[int, dict[str, Any]]:
        crops = {tid: c for tid, c in self.crops.items() if tid in ctx.tracks}
        self.crops = {}
        if not crops:
            return {}
        from capstone.models import embedders

        started = time.perf_counter()
        model = embedders.image_embedder()
        tids = sorted(crops)
        _, labels = model.embed_and_classify([crops[t] for t in tids], top_k=FINE_TOP_K)
        out: dict[int, dict[str, Any]] = {}
        for tid, top in zip(tids, labels, strict=True):
            summary = ctx.tracks[tid]
            allowed = FINE_TYPES.get(summary.class_name, frozenset())
            named = [(label.replace(" ", "_"), p) for label, p in top]
            out[tid] = {
                "score": summary.best_score,
                "types": {n: p for n, p in named if n in allowed},
                "imagenet": dict(named[:IMAGENET_TOP_K]),
            }
        ctx.timings["attributes.fine_type"] = ctx.timings.get("attributes.fine_type", 0.0) + (
            time.perf_counter() - started
        )
        return out

    @classmethod
    def publish(cls, video: VideoResult) -> None:
        """One attribute row per final track, from the chunk states and every box."""
        options = AttributesOptions.pick(video.params.options)
        merged = merge_states(video.states(cls.name), video.final_id_of)
        for row in attribute_rows(
            video.tracks,
            video.observations,
            merged,
            (video.info.width, video.info.height),
            options.metres_per_px(),
        ):
            video.emit(Record.TRACK_ATTRIBUTES, row)


@dataclass
class MergedTrack:
    """What the chunks saw of one final track: label counts, its best colour samples, and
    the fine-type scores of its best crop."""

    labels: Counter[str] = field(default_factory=Counter)
    samples: dict[int, tuple[float, list[int]]] = field(default_factory=dict)
    fine_score: float = -1.0
    fine: dict[str, float] | None = None
    imagenet: dict[str, float] | None = None

    def color_shares(self) -> dict[str, float]:
        """The mean of the best `MAX_SAMPLES` samples' shares (each sample weighs the same)."""
        best = sorted(self.samples.items(), key=lambda kv: (-kv[1][0], kv[0]))[:MAX_SAMPLES]
        total = np.zeros(len(TERMS))
        for _, (_, counts) in best:
            arr = np.asarray(counts, np.float64)
            if arr.sum() > 0:
                total += arr / arr.sum()
        return shares_of(total)


def merge_states(states: Any, final_id_of: Mapping[int, int]) -> dict[int, MergedTrack]:
    """The chunk states (in chunk order) of this stage merged per final track id.

    >>> s = {"tracks": {"7": {"labels": {"car": 3}, "samples": [[0, 1.0, [0] * 11]],
    ...                       "fine": {"score": 0.5, "types": {"cab": 0.6}}}}}
    >>> m = merge_states([s], {7: 1})[1]
    >>> m.labels, m.fine
    (Counter({'car': 3}), {'cab': 0.6})
    """
    merged: dict[int, MergedTrack] = defaultdict(MergedTrack)
    for state in states:
        for key, part in (state.get("tracks") or {}).items():
            staged = int(key)
            track = merged[final_id_of.get(staged, staged)]
            track.labels.update(part.get("labels") or {})
            for slot, q, counts in part.get("samples") or []:
                known = track.samples.get(int(slot))
                if known is None or q > known[0]:
                    track.samples[int(slot)] = (float(q), list(counts))
            fine = part.get("fine")
            if fine is not None and fine["score"] > track.fine_score:
                track.fine_score, track.fine = float(fine["score"]), dict(fine["types"])
                track.imagenet = dict(fine.get("imagenet") or {}) or None
    return dict(merged)


@dataclass(frozen=True)
class Evidence:
    """What the plausibility rules look at for one track (see the module docstring)."""

    class_name: str
    confidence: float  # mean detector confidence
    boxes: int
    duration_s: float
    oversized_share: float = 0.0  # share of its boxes far too big for the scene
    stable_share: float = 0.0  # share of its boxes over its median box (IoU >= 0.5)
    moved: bool = True  # its direction is not `static`
    caption_like: bool = False  # in the top/bottom band or on the left/right border
    class_share: float | None = None  # share of its boxes' labels that are its class


def plausibility(e: Evidence) -> tuple[bool, list[str]]:
    """Whether a track may be counted, and its doubts (see the module docstring).

    >>> plausibility(Evidence("bus", 0.45, 50, 5.0, stable_share=1.0, moved=False,
    ...                       caption_like=True, class_share=1.0))
    (False, ['static_overlay'])
    >>> plausibility(Evidence("person", 0.3, 2, 0.1, class_share=0.6))
    (False, ['doubtful', 'short', 'class_flips'])
    >>> plausibility(Evidence("car", 0.6, 90, 3.6, class_share=0.6))
    (True, ['class_flips'])
    >>> plausibility(Evidence("train", 0.5, 179, 7.1, oversized_share=0.17, class_share=0.31))
    (False, ['oversized', 'class_flips'])
    """
    doubts: list[str] = []
    if e.confidence < DOUBTFUL_CONF:
        doubts.append("doubtful")
    if e.boxes < MIN_BOXES or e.duration_s < MIN_DURATION_S - 1e-6:
        doubts.append("short")
    oversized = e.oversized_share >= OVERSIZED_SHARE and e.oversized_share * e.boxes >= MIN_BOXES
    if e.class_name in VEHICLES and oversized:
        doubts.append("oversized")
    if (
        e.class_name in MOVERS
        and e.boxes >= MIN_BOXES
        and e.confidence < OVERLAY_MAX_CONF
        and not e.moved
        and e.stable_share >= STABLE_SHARE
        and e.caption_like
    ):
        doubts.append("static_overlay")
    flips = e.class_share is not None and e.class_share < CLASS_MIN_SHARE
    if flips:
        doubts.append("class_flips")
    minority = e.class_share is not None and e.class_share < CLASS_MAJORITY
    disqualified = minority or any(d in DISQUALIFYING for d in doubts)
    return not disqualified, doubts


def attribute_rows(
    tracks: Mapping[int, TrackSummary],
    boxes: Detections,
    merged: Mapping[int, MergedTrack],
    size: tuple[int, int],
    metres_per_px: float | None = None,
) -> list[dict[str, Any]]:
    """One `apps_db_trackattributes` row per track of `tracks`, from its `boxes` (sorted by
    track, with a `timestamp` column) and its merged chunk state."""
    width, height = size
    frame_area = float(max(1, width * height))
    slices = dict(boxes.by_track()) if len(boxes) else {}
    xyxy = np.asarray(boxes.xyxy, np.float64)
    stamps = boxes["timestamp"] if len(boxes) else np.zeros(0)
    box_frac = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]) / frame_area
    motions = {
        tid: motion_of(stamps[slices[tid]], xyxy[slices[tid]]) for tid in tracks if tid in slices
    }
    moves = {**motions, **object_motions(tracks, stamps, xyxy, slices)}
    fracs = {tid: m.width_px * m.height_px / frame_area for tid, m in motions.items()}
    vehicle_fracs = [f for t, f in fracs.items() if tracks[t].class_name in VEHICLES]
    scene = float(np.median(vehicle_fracs)) if vehicle_fracs else None
    too_big = max(OVERSIZED_FRAC, OVERSIZED_VS_SCENE * scene) if scene is not None else math.inf
    rows = []
    for tid, summary in sorted(tracks.items()):
        state = merged.get(tid, MergedTrack())
        motion = motions.get(tid)
        total_labels = sum(state.labels.values())
        duration = max(0.0, summary.last_timestamp - summary.first_timestamp)
        evidence = Evidence(
            summary.class_name,
            summary.mean_confidence,
            summary.length,
            duration,
            class_share=(
                state.labels.get(summary.class_name, 0) / total_labels if total_labels else None
            ),
        )
        if motion is not None:
            own = xyxy[slices[tid]]
            median_box = np.median(own, axis=0)
            border = CAPTION_BORDER * width
            centre_y = (median_box[1] + median_box[3]) / 2 / max(1, height)
            evidence = replace(
                evidence,
                oversized_share=float(np.mean(box_frac[slices[tid]] > too_big)),
                stable_share=float(np.mean(box_iou(median_box, own)[0] >= 0.5)),
                # went somewhere: half its height, however brief (a caption goes nowhere)
                moved=direction_of(motion.dx_px, motion.dy_px, motion.height_px, motion.growth)
                != "static",
                caption_like=bool(
                    centre_y < CAPTION_BAND
                    or centre_y > 1 - CAPTION_BAND
                    or median_box[0] <= border
                    or median_box[2] >= width - border
                ),
            )
        plausible, doubts = plausibility(evidence)
        shares = state.color_shares()
        fine = state.fine or {}
        ranked = sorted(fine.items(), key=lambda kv: (-kv[1], kv[0]))
        fine_type = ranked[0][0] if ranked and ranked[0][1] >= FINE_MIN_SCORE else None
        row: dict[str, Any] = {
            "track_id": tid,
            "class_name": summary.class_name,
            "t_start": round(summary.first_timestamp, 4),
            "t_end": round(summary.last_timestamp, 4),
            "duration_s": round(duration, 4),
            "confidence": round(summary.mean_confidence, 4),
            "color": dominant_color(shares),
            "color_shares": shares or None,
            "direction": None,
            "dx_px": None,
            "dy_px": None,
            "path_px": None,
            "speed_px_s": None,
            "speed_m_s": None,
            "pause_s": None,
            "width_px": None,
            "height_px": None,
            "size_frac": None,
            "fine_type": fine_type,
            "fine_types": {k: round(v, 4) for k, v in ranked} or None,
            "imagenet": state.imagenet,
            "plausible": plausible,
            "doubts": doubts,
            "heat": None,
            "pause_heat": None,
            "pause_from": None,
            "pause_to": None,
        }
        if motion is not None:
            move = moves[tid]
            speed_m_s = None if metres_per_px is None else move.speed_px_s * metres_per_px
            row.update(
                direction=move.direction,
                dx_px=round(move.dx_px, 2),
                dy_px=round(move.dy_px, 2),
                path_px=round(move.path_px, 2),
                speed_px_s=round(move.speed_px_s, 2),
                speed_m_s=None if speed_m_s is None else round(speed_m_s, 3),
                pause_s=round(move.pause_s, 3),
                width_px=round(motion.width_px, 2),
                height_px=round(motion.height_px, 2),
                size_frac=round(fracs[tid], 5),
                heat=place_counts(xyxy[slices[tid]], size),
                pause_heat=pause_place(move, size),
                pause_from=None if move.pause_from is None else round(move.pause_from, 4),
                pause_to=None if move.pause_to is None else round(move.pause_to, 4),
            )
        rows.append(row)
    return rows


def object_motions(
    tracks: Mapping[int, TrackSummary],
    stamps: np.ndarray,
    xyxy: np.ndarray,
    slices: Mapping[int, slice],
) -> dict[int, Motion]:
    """The movement of each object that several tracks make up (the `identity` stage linked
    them: `extra["identity_id"]`), over all their boxes in time order, for each of those
    tracks. A person lost behind another and found again walked left once, not left in one
    fragment and up in the next.

    >>> def track(i):
    ...     summary = TrackSummary(i, 0, "person", 0, 0, 0.0, 0.0)
    ...     summary.extra["identity_id"] = 1
    ...     return summary
    >>> t = np.arange(6.0)
    >>> boxes = np.stack([100 - 10 * t, t * 0, 120 - 10 * t, t * 0 + 40], axis=1)
    >>> boxes[3:, 1::2] -= [[15], [30], [45]]  # the second fragment also rises: alone, "up"
    >>> fragments = {1: slice(0, 3), 2: slice(3, 6)}
    >>> motion_of(t[3:], boxes[3:]).direction
    'up'
    >>> m = object_motions({1: track(1), 2: track(2)}, t, boxes, fragments)
    >>> m[1].direction, m[2].direction, round(m[2].dx_px)
    ('left', 'left', -40)
    """
    out: dict[int, Motion] = {}
    for tids in objects_of(tracks, slices).values():
        if len(tids) < 2:
            continue
        rows = np.concatenate([np.arange(slices[t].start, slices[t].stop) for t in tids])
        rows = rows[np.argsort(stamps[rows], kind="stable")]
        movement = motion_of(stamps[rows], xyxy[rows])
        out.update(dict.fromkeys(tids, movement))
    return out


def _crop(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    from capstone.stages.embed import crop_box

    return crop_box(image, box)


def _region_counts(
    image: np.ndarray, box: Sequence[float], class_name: str, levels: tuple[float, float]
) -> list[int] | None:
    """Colour term counts of the sampled part of a box (values stretched from the frame's
    `levels`); None when it is under 2x2 px."""
    from capstone.core.colors import color_counts

    h, w = image.shape[:2]
    x1, y1, x2, y2 = sample_region(box, class_name)
    x1, y1 = max(0, int(x1)), max(0, int(y1))
    x2, y2 = min(w, math.ceil(x2)), min(h, math.ceil(y2))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return [int(c) for c in color_counts(image[y1:y2, x1:x2], levels=levels)]
