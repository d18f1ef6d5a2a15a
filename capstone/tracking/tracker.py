"""Track: Ultralytics' ByteTrack / BoT-SORT driven by our own `Detections`.

Because the tracker is fed detections rather than a model, the same code tracks external
detections too (MOT `det.txt`, see `capstone.eval.mot`).

>>> from capstone.core.video import iter_frames
>>> from capstone.models.detector import get_detector
>>> tracker = Tracker("bytetrack", frame_rate=25)  # doctest: +SKIP
>>> for frame, detections in get_detector().stream(iter_frames("clip.mp4")):  # doctest: +SKIP
...     tracked = tracker.update(detections, frame.image)
...     print(frame.index, tracked.tracker_id)

(`Tracker` has an example without a video.)
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from capstone.core.detections import Detections
from capstone.core.geometry import box_iou, crop_box
from capstone.tracking.reassociation import ReassociationCheck

TRACKERS = ("bytetrack", "botsort")

# Classes one physical object can be reported as at once: the detector's NMS is per class,
# so a van can come out as a `car` box and a `truck` box over the same pixels, and each
# would start a track. Motorcycles and bicycles stay separate (a rider next to a car is a
# second object, and their boxes overlap a car's only partly).
VEHICLES = frozenset({"car", "truck", "bus"})
# IoU above which two boxes of these classes are one object: the detector's own NMS
# threshold (`Detector(iou=0.7)`), i.e. what its NMS would have done had it been
# class-agnostic among vehicles. Distinct vehicles that per-class NMS keeps apart are
# below it by construction. On highway-cctv.avi the best cross-class IoU of a vehicle box
# is either below 0.3 (another vehicle) or above 0.8 (the same one), nothing in between
# (`bench/vehicle_duplicates.py`), so the choice is not a fine line.
VEHICLE_IOU = 0.7


# What our tracking does to the same detections changed (1: Ultralytics' trackers as
# shipped, ByteTrack by default; 2: `TUNED`, vehicle suppression and the class vote,
# BoT-SORT by default; 3: the Kalman filter's velocity noise scaled by the frame interval;
# 4: only the position velocities' noise scaled, box sizes' as shipped; 5: a person track
# given back after a gap to a box that looks like someone else is cut, `ReassociationCheck`).
# It is part of every `params_hash`, so a result stored by an earlier revision is
# recomputed, never served (or reused) as the current one's.
REVISION = 5

# Ultralytics' Kalman filters add the same velocity noise per frame at any frame rate,
# tuned on 25-30 fps footage (MOT17), so at 7 fps a walker's velocity estimate trusts its
# past three to four times as long in seconds. Ours: the per-frame noise of the x and y
# velocities x (VELOCITY_NOISE_FPS / fps) ** exponent below that rate
# (`_scaled_position_noise`), Ultralytics' filter at 25 fps and above. The exponent is
# `velocity_noise_exponent` in `TUNED`; `bench/identity_repair.py --velocity-noise`
# compares the choices (README, "Which tracker, and why").
VELOCITY_NOISE_FPS = 25.0

# Our settings over Ultralytics' stock ones (`Tracker(stock=False)`, what `capstone analyze`
# uses). A new track needs a detection of confidence >= 0.6 (stock: 0.25, the detector's
# own floor, so every doubtful box started a track); boxes down to 0.25 still extend
# tracks. 0.6 is ByteTrack's own choice (its paper: track threshold 0.5 + 0.1) and what
# `bench/identity_repair.py --loo-tracker` picks on PETS09-S2L1 and its variants; scored
# on held-out TUD-Campus (README, "Tracking quality").
TUNED: dict[str, dict[str, Any]] = {
    "bytetrack": {"new_track_thresh": 0.6, "velocity_noise_exponent": 0.75},
    "botsort": {"new_track_thresh": 0.6, "velocity_noise_exponent": 0.75},
}


def velocity_noise_scale(frame_rate: float, exponent: float) -> float:
    """Factor on the Kalman filter's per-frame position-velocity noise at `frame_rate`.

    >>> round(velocity_noise_scale(7.0, 0.75), 2), velocity_noise_scale(30.0, 0.75)
    (2.6, 1.0)
    """
    return max(1.0, VELOCITY_NOISE_FPS / max(frame_rate, 1e-6)) ** exponent


@functools.cache
def _scaled_position_noise(base: type) -> type:
    """Ultralytics' Kalman filter `base` whose per-frame noise on the *position* velocities
    (x, y) is `velocity_scale` times its own; box sizes, the first frame and the update as
    shipped. People turn and speed up between frames; their boxes do not grow faster, and a
    size that follows every jitter of the detections drifts while a track is lost."""
    from ultralytics.trackers.utils.kalman_filter import KalmanFilterXYWH

    # the state's x- and y-velocity noise scale with (w, h) in XYWH, with h in XYAH
    sizes = [2, 3] if issubclass(base, KalmanFilterXYWH) else [3, 3]

    class ScaledPositionNoise(base):  # type: ignore[misc, valid-type]
        velocity_scale = 1.0

        def _extra(self, mean: np.ndarray) -> np.ndarray:
            """(n, 2) variance added to the x and y velocities of n states per frame."""
            weight = self._std_weight_velocity * np.atleast_2d(mean)[:, sizes]
            return (self.velocity_scale**2 - 1.0) * np.square(weight)

        def predict(self, mean: np.ndarray, covariance: np.ndarray) -> Any:
            extra = self._extra(mean)[0]
            mean, covariance = super().predict(mean, covariance)
            covariance = covariance.copy()
            covariance[[4, 5], [4, 5]] += extra
            return mean, covariance

        def multi_predict(self, mean: np.ndarray, covariance: np.ndarray) -> Any:
            extra = self._extra(mean)
            mean, covariance = super().multi_predict(mean, covariance)
            covariance[:, 4, 4] += extra[:, 0]
            covariance[:, 5, 5] += extra[:, 1]
            return mean, covariance

    ScaledPositionNoise.__name__ = ScaledPositionNoise.__qualname__ = base.__name__
    return ScaledPositionNoise


@functools.cache
def _tracker_classes() -> dict[str, type]:
    """Ultralytics' trackers, each owning its Kalman filter.

    Their tracks predict with a Kalman filter held by the *class* (`STrack.shared_kalman`),
    shared by every tracker in the process; ours predict with the tracker's own, so one
    analysis' noise settings never reach another's.
    """
    from ultralytics.trackers.basetrack import TrackState
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker

    def own_filter(base: type, still: tuple[int, ...]) -> type:
        class Owned(base):  # type: ignore[misc, valid-type]
            velocity_scale = 1.0

            def get_kalmanfilter(self) -> Any:
                kalman = _scaled_position_noise(type(super().get_kalmanfilter()))()
                kalman.velocity_scale = self.velocity_scale
                return kalman

            def multi_predict(self, tracks: list[Any]) -> None:
                # as Ultralytics' `multi_predict`: a lost track's size stops changing
                if not tracks:
                    return
                means = np.asarray([t.mean for t in tracks])
                covariances = np.asarray([t.covariance for t in tracks])
                for i, t in enumerate(tracks):
                    if t.state != TrackState.Tracked:
                        means[i, list(still)] = 0
                means, covariances = self.kalman_filter.multi_predict(means, covariances)
                for t, mean, covariance in zip(tracks, means, covariances, strict=True):
                    t.mean, t.covariance = mean, covariance

        Owned.__name__ = Owned.__qualname__ = base.__name__
        return Owned

    return {"bytetrack": own_filter(BYTETracker, (7,)), "botsort": own_filter(BOTSORT, (6, 7))}


def suppress_cross_class(
    detections: Detections, iou: float = VEHICLE_IOU, classes: frozenset[str] = VEHICLES
) -> Detections:
    """Class-agnostic NMS among `classes`: of boxes of these classes that overlap by IoU
    >= `iou`, only the most confident stays (other classes and the order are untouched).

    >>> names = {0: "person", 2: "car", 7: "truck"}
    >>> dets = Detections([[0, 0, 40, 20], [1, 0, 40, 21], [0, 0, 40, 20], [60, 0, 99, 20]],
    ...                   [0.6, 0.8, 0.9, 0.7], [2, 7, 0, 2], class_names=names)
    >>> suppress_cross_class(dets).labels  # the car under the truck goes, the person stays
    ['truck', 'person', 'car']
    """
    if len(detections) < 2:
        return detections
    labels = detections.labels
    idx = np.array([i for i, name in enumerate(labels) if name in classes], np.int64)
    if len(idx) < 2 or len({labels[i] for i in idx}) < 2:
        return detections  # one class only: the detector's NMS already did this
    order = idx[np.argsort(-detections.confidence[idx], kind="stable")]
    overlap = box_iou(detections.xyxy[order], detections.xyxy[order])
    dropped = np.zeros(len(order), bool)
    for k in range(len(order)):
        if not dropped[k]:
            dropped[k + 1 :] |= overlap[k, k + 1 :] >= iou
    if not dropped.any():
        return detections
    keep = np.ones(len(detections), bool)
    keep[order[dropped]] = False
    return detections[keep]


def tracker_config(kind: str, **overrides: Any) -> Any:
    """Ultralytics' tracker settings for `kind`, with overrides applied."""
    import ultralytics
    from ultralytics.utils import YAML, IterableSimpleNamespace

    if kind not in TRACKERS:
        raise ValueError(f"unknown tracker {kind!r}; choose one of {', '.join(TRACKERS)}")
    path = Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{kind}.yaml"
    cfg = dict(YAML.load(path))
    cfg.update(overrides)
    return IterableSimpleNamespace(**cfg)


class Tracker:
    """Stateful multi-object tracker; call `update` once per sampled frame, in order.

    `frame_rate` is the rate of the *sampled* stream: the lost-track buffer (in frames) is
    scaled so that a track survives the same time however sparsely frames are sampled.

    Args:
        kind: `"bytetrack"` or `"botsort"` (Ultralytics' trackers; BoT-SORT without ReID).
        frame_rate: frames per second of the stream given to `update`.
        stock: Ultralytics' tracker exactly as shipped (its settings, every box, the class
            of the latest box): the baseline `capstone eval mot` compares against. Else our
            settings (`TUNED`), cross-class suppression and the class vote.
        vehicle_iou: boxes of different vehicle classes (`VEHICLES`) overlapping by this
            IoU are one object: only the most confident goes to the tracker
            (`suppress_cross_class`); None keeps them all (the stock trackers).
        class_vote: each track reports the class with the highest summed confidence over
            its boxes so far, so one track keeps one class when the detector flips between
            e.g. `car` and `truck` (stock: the class of the latest box).
        reassociation: cut a person track where the tracker gives it back after a gap to
            a box whose re-id features differ (`ReassociationCheck`, OSNet; only when its
            weights resolve and `update` gets the image). Off for the stock trackers.
        **overrides: Ultralytics tracker settings (`track_high_thresh`, `track_buffer`,
            `match_thresh`, ...; see `tracker_config`), and `velocity_noise_exponent`
            (`velocity_noise_scale`; 0 is Ultralytics' filter, `TUNED` has ours).

    `update(detections, image)` returns the tracked boxes as `Detections` with `tracker_id`
    set (the image is optional for ByteTrack; BoT-SORT uses it for camera motion).

    The example imports Ultralytics (about 2 s), so it is not run as a doctest:

    >>> import numpy as np
    >>> from capstone.core.detections import Detections
    >>> tracker = Tracker("bytetrack", frame_rate=25)  # doctest: +SKIP
    >>> dets = Detections([[10, 10, 50, 90], [100, 20, 140, 100]], [0.9, 0.8], [0, 0])
    >>> [tracker.update(dets).tracker_id.tolist() for _ in range(3)]  # doctest: +SKIP
    [[1, 2], [1, 2], [1, 2]]
    """

    def __init__(
        self,
        kind: str = "botsort",
        *,
        frame_rate: float = 30.0,
        stock: bool = False,
        vehicle_iou: float | None = VEHICLE_IOU,
        class_vote: bool = True,
        reassociation: bool = True,
        **overrides: Any,
    ):
        settings = {} if stock else dict(TUNED.get(kind, {}))
        settings.update(overrides)
        exponent = float(settings.pop("velocity_noise_exponent", 0.0))
        cfg = tracker_config(kind, **settings)
        if "track_buffer" not in overrides:
            cfg.track_buffer = max(1, round(cfg.track_buffer * frame_rate / 30.0))
        if kind == "botsort":
            cfg.with_reid = False
        self.kind = kind
        self.config = cfg
        self.velocity_scale = velocity_noise_scale(frame_rate, exponent)
        self._tracker = _tracker_classes()[kind](cfg)
        self._tracker.velocity_scale = self.velocity_scale
        self._tracker.kalman_filter = self._tracker.get_kalmanfilter()
        self.vehicle_iou = None if stock else vehicle_iou
        self.class_vote = class_vote and not stock
        self._votes: dict[int, dict[int, float]] = {}
        self.check = _reid_check(cfg.track_buffer) if reassociation and not stock else None
        self._frames = 0

    def update(self, detections: Detections, image: np.ndarray | None = None) -> Detections:
        """Assign track ids; returns the tracked boxes (the tracker's smoothed positions)."""
        from ultralytics.engine.results import Boxes

        if self.vehicle_iou is not None:
            detections = suppress_cross_class(detections, self.vehicle_iou)
        shape = image.shape[:2] if image is not None else (1 << 15, 1 << 15)
        boxes = Boxes(detections.as_array(), shape)
        rows = self._tracker.update(boxes, image)
        self._frames += 1
        if len(rows) == 0:
            empty = Detections.empty(detections.class_names)
            empty.tracker_id = np.zeros(0, dtype=np.int64)
            return empty
        rows = np.asarray(rows, dtype=np.float64)
        class_id = rows[:, 6].astype(np.int64)
        if self.class_vote:
            class_id = self._vote(rows[:, 4].astype(np.int64), class_id, rows[:, 5])
        tracked = Detections(
            xyxy=rows[:, :4].astype(np.float32),
            confidence=rows[:, 5].astype(np.float32),
            class_id=class_id,
            tracker_id=rows[:, 4].astype(np.int64),
            class_names=detections.class_names,
        )
        if self.check is None or image is None:
            return tracked
        return self.check.update(self._frames, tracked, lambda i: crop_box(image, tracked.xyxy[i]))

    @property
    def cuts(self) -> int:
        """Tracks cut so far where given back to someone else (`ReassociationCheck`)."""
        return len(self.check.cuts) if self.check is not None else 0

    def _vote(self, track_ids: np.ndarray, class_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Each track's class by confidence-weighted vote over its boxes so far."""
        out = class_ids.copy()
        for k, (tid, cls, score) in enumerate(
            zip(track_ids.tolist(), class_ids.tolist(), scores.tolist(), strict=True)
        ):
            votes = self._votes.setdefault(tid, {})
            votes[cls] = votes.get(cls, 0.0) + score
            out[k] = max(votes, key=votes.__getitem__)
        return out


def _reid_check(track_buffer: int) -> ReassociationCheck | None:
    """A `ReassociationCheck` embedding with OSNet (loaded at the first check), or None
    when its weights do not resolve: other features have another distance scale."""
    from capstone.models.embedders import reid_model_path

    path = reid_model_path()
    if path is None or not path.is_file():
        return None

    def embed(crops: Any) -> np.ndarray:
        from capstone.models.embedders import reid_embedder

        model = reid_embedder(path)
        assert model is not None
        return model.embed(list(crops))

    return ReassociationCheck(embed, forget_after=track_buffer + 1)
