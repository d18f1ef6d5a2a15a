"""MOT evaluation: run our tracker on a MOTChallenge sequence and score it with `trackeval`.

Tracker output and ground truth are lists of `MotRow` (MOTChallenge 2015 layout, 1-based
frames, top-left `x, y`, width, height). Three ways to get tracker rows:

- `track_detections`: public detections (`det/det.txt`) through `capstone.tracking.tracker.Tracker`;
- `detect_and_track_video`: our detector + tracker over a video;
- `mot_rows_from_database`: the tracks a stored analysis produced (raw tracker ids, or
  with `identities=True` the repaired identities and interpolated boxes);
- `analyze_rows`: exactly what `capstone analyze` stores with the given parameters (every
  class tracked together, the container's frame rate, boxes clipped to the frame, the
  `identity` stage's repair, the chunks): that analysis, run and read back; the `default`
  row of `capstone eval mot`.

`evaluate_mot` scores one set of rows; `evaluate_many` scores several side by side (one
`trackeval` run), e.g. ``{"bytetrack": rows, "botsort": rows}``.

>>> from capstone.io.mot import load_mot_detections, load_sequence
>>> seq = load_sequence("../shared/data/mot/TUD-Campus")  # doctest: +SKIP
>>> dets = load_mot_detections(seq.det_path, num_frames=seq.length)  # doctest: +SKIP
>>> rows = track_detections(dets, "bytetrack", seq.frame_rate)  # doctest: +SKIP
>>> round(evaluate_mot(seq.root, rows)["MOTA"], 2)  # doctest: +SKIP
0.54
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np

from capstone.core.detections import Detections
from capstone.errors import EvaluationError, InputError
from capstone.io.mot import (
    MotRow,
    load_mot_gt,
    load_sequence,
    write_mot,
)

# The metrics every result dict carries (fractions in 0..1 for the rates, counts for the rest).
METRIC_KEYS = (
    "MOTA",
    "IDF1",
    "HOTA",
    "IDSW",
    "DetA",
    "AssA",
    "MOTP",
    "IDP",
    "IDR",
    "Recall",
    "Precision",
    "TP",
    "FP",
    "FN",
    "Frag",
    "MT",
    "PT",
    "ML",
    "GT_IDs",
    "IDs",
)


# ---------------------------------------------------------------------------- tracking


def _rows_of(frame: int, tracked: Detections) -> list[MotRow]:
    rows = []
    assert tracked.tracker_id is not None
    for (x1, y1, x2, y2), tid, conf in zip(
        tracked.xyxy, tracked.tracker_id, tracked.confidence, strict=True
    ):
        rows.append(
            MotRow(
                frame,
                int(tid),
                round(float(x1), 2),
                round(float(y1), 2),
                round(float(x2 - x1), 2),
                round(float(y2 - y1), 2),
                round(float(conf), 4),
            )
        )
    return sorted(rows, key=lambda r: r.track_id)


def track_detections(
    frames_of_detections: Sequence[Detections],
    kind: str,
    frame_rate: float,
    images: Iterable[np.ndarray | None] | None = None,
    *,
    frame_numbers: Sequence[int] | None = None,
    stock: bool = True,
    **tracker_overrides: Any,
) -> list[MotRow]:
    """Run `capstone.tracking.tracker.Tracker` over per-frame detections; returns MOT rows.

    Entry `i` of `frames_of_detections` is MOT frame `i+1` unless `frame_numbers` says
    otherwise (sampled streams). `images` (aligned with the detections) feeds BoT-SORT's
    camera-motion compensation; without images it is switched off (`gmc_method="none"`).
    `stock`: Ultralytics' tracker as shipped (the baseline rows); False: the tracker as
    `capstone analyze` runs it (our settings, cross-class suppression, class vote).
    """
    from capstone.tracking.tracker import Tracker

    if kind == "botsort" and images is None:
        tracker_overrides.setdefault("gmc_method", "none")
    try:
        tracker = Tracker(kind, frame_rate=frame_rate, stock=stock, **tracker_overrides)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from exc
    numbers = list(frame_numbers) if frame_numbers is not None else None
    if numbers is not None and len(numbers) != len(frames_of_detections):
        raise ValueError("frame_numbers must have one entry per frame of detections")
    image_iter: Iterable[np.ndarray | None] = images if images is not None else ()
    rows: list[MotRow] = []
    pairs = zip_longest(frames_of_detections, image_iter)
    for i, (dets, image) in enumerate(pairs):
        if dets is None:  # more images than detections
            break
        tracked = tracker.update(dets, image)
        rows.extend(_rows_of(numbers[i] if numbers is not None else i + 1, tracked))
    return rows


def _mot_params(params: Any) -> Any:
    """Analysis parameters restricted to people (MOT ground truth has only people)."""
    from capstone.stages.params import AnalysisParams

    params = params or AnalysisParams()
    if not params.classes:
        params = params.model_copy(update={"classes": ("person",)})
    return params


def detect_video(
    video: str | Path, params: Any = None, *, detector: Any = None
) -> tuple[list[Detections], list[int], float]:
    """Our detector over a video (stride from `params`; people only unless `params.classes`).

    Returns the per-frame detections, their 1-based MOT frame numbers (video frame index + 1)
    and the sampled frame rate.
    """
    from capstone.core.video import iter_frames, probe
    from capstone.models.detector import get_detector

    params = _mot_params(params)
    info = probe(video)
    detector = detector or get_detector(params.model)
    try:  # a view: the cached detector other callers share keeps its own settings
        detector = detector.using(
            conf=params.conf, imgsz=params.imgsz, classes=detector.class_ids(params.classes)
        )
    except ValueError as exc:
        raise EvaluationError(str(exc)) from exc
    step = params.stride if not params.target_fps else max(1, round(info.fps / params.target_fps))
    detections: list[Detections] = []
    numbers: list[int] = []
    for frame in iter_frames(info.path, stride=step, max_frames=params.max_frames):
        detections.append(detector([frame.image])[0])
        numbers.append(frame.index + 1)
    if not detections:
        raise InputError(f"{video}: no frames could be decoded")
    return detections, numbers, info.fps / step


def video_images(video: str | Path, frame_numbers: Sequence[int]) -> Iterator[np.ndarray]:
    """The frames of `video` whose MOT numbers (index + 1) are in `frame_numbers`, in order."""
    from capstone.core.video import iter_frames

    wanted = set(frame_numbers)
    return (f.image for f in iter_frames(video) if f.index + 1 in wanted)


def detect_and_track_video(
    video: str | Path,
    params: Any = None,
    *,
    frame_rate: float | None = None,
    detector: Any = None,
) -> list[MotRow]:
    """Detector + `params.tracker` over a video; returns MOT rows (frame = video index + 1).

    `frame_rate` overrides the container's rate for the tracker (e.g. PETS09-S2L1's AVI says
    10 fps while the sequence is 7 fps).
    """
    params = _mot_params(params)
    detections, numbers, fps = detect_video(video, params, detector=detector)
    images = video_images(video, numbers) if params.tracker == "botsort" else None
    return track_detections(
        detections, params.tracker, frame_rate or fps, images, frame_numbers=numbers, stock=False
    )


def analyze_rows(
    video: str | Path,
    params: Any = None,
    *,
    class_name: str = "person",
    detector: Any = None,
) -> list[MotRow]:
    """What `capstone analyze video` stores with `params` (default: `AnalysisParams()`),
    as MOT rows of `class_name`: ids are the repaired identities (the raw tracker id when
    the `identity` stage is off), plus the interpolated boxes of short gaps.

    It *is* that analysis (chunks, stitching and repair included), run into the database
    under the video id `eval-<content hash>` with only the stages that change tracks
    (detect, track, identity), then read back.
    """
    from capstone.core.video import sha256_file
    from capstone.errors import CapstoneError
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    params = params or AnalysisParams()
    keep = tuple(s for s in params.stages if s in ("detect", "track", "identity"))
    run_params = AnalysisParams(**{**params.model_dump(), "stages": keep})
    video_id = f"eval-{sha256_file(Path(video))[:16]}"
    result = analyze(video, video_id=video_id, params=run_params, detector=detector)
    if result.status != "completed":
        raise CapstoneError(f"analysis of {Path(video).name} failed: {result.error}")
    rows = mot_rows_from_database(
        video_id,
        result.analysis_id,
        class_name=class_name,
        identities=params.runs("identity"),
    )
    return sorted(rows, key=lambda r: (r.frame, r.track_id))


def mot_rows_from_database(
    video_id: str,
    analysis_id: int,
    *,
    class_name: str | None = "person",
    url: str | None = None,
    identities: bool = False,
) -> list[MotRow]:
    """The tracked detections of a stored analysis as MOT rows.

    The stored `frame_number` is the 0-based video frame index; MOT frames are 1-based.
    Boxes without a track id are left out; `class_name=None` keeps every class. With
    `identities`, ids are the tracks' `identity_id` (after repair) instead of the raw
    tracker ids; the interpolated boxes are detection rows too, so they are included
    either way.
    """
    from capstone.store.queries import tracked_detections

    result = tracked_detections(video_id, analysis_id, class_name, identities=identities, url=url)
    rows = []
    for frame_number, track_id, bbox, confidence in result:
        x1, y1, x2, y2 = bbox
        rows.append(
            MotRow(
                int(frame_number) + 1,
                track_id,
                float(x1),
                float(y1),
                float(x2 - x1),
                float(y2 - y1),
                float(confidence if confidence is not None else 1.0),
            )
        )
    return rows


# ---------------------------------------------------------------------------- writing, scoring


def _gt_source(gt: str | Path) -> tuple[Path, str, int | None]:
    """(gt.txt, sequence name, length from seqinfo.ini or None) for a folder or a gt file."""
    gt = Path(gt)
    if gt.is_dir():
        seq = load_sequence(gt)
        return seq.gt_path, seq.name, seq.length
    if not gt.is_file():
        raise EvaluationError(f"{gt}: no such ground-truth file or sequence folder")
    return gt, "SEQ", None


def _summary(res: Mapping[str, Any]) -> dict[str, float | int]:
    clear, ident, count = res["CLEAR"], res["Identity"], res["Count"]
    nan = {"HOTA": [float("nan")], "DetA": [float("nan")], "AssA": [float("nan")]}
    hota = res.get("HOTA", nan)
    return {
        "MOTA": float(clear["MOTA"]),
        "IDF1": float(ident["IDF1"]),
        "HOTA": float(np.mean(hota["HOTA"])),
        "IDSW": int(clear["IDSW"]),
        "DetA": float(np.mean(hota["DetA"])),
        "AssA": float(np.mean(hota["AssA"])),
        "MOTP": float(clear["MOTP"]),
        "IDP": float(ident["IDP"]),
        "IDR": float(ident["IDR"]),
        "Recall": float(clear["CLR_Re"]),
        "Precision": float(clear["CLR_Pr"]),
        "TP": int(clear["CLR_TP"]),
        "FP": int(clear["CLR_FP"]),
        "FN": int(clear["CLR_FN"]),
        "Frag": int(clear["Frag"]),
        "MT": int(clear["MT"]),
        "PT": int(clear["PT"]),
        "ML": int(clear["ML"]),
        "GT_IDs": int(count["GT_IDs"]),
        "IDs": int(count["IDs"]),
    }


def evaluate_many(
    gt: str | Path, trackers: Mapping[str, Iterable[MotRow]], *, hota: bool = True
) -> dict[str, dict[str, float | int]]:
    """Score several trackers' rows against one ground truth (a sequence folder or gt.txt).

    Returns `{name: metrics}` in the order given; see `METRIC_KEYS`. Rows outside the
    sequence's frames (1..seqLength) are ignored, as MOTChallenge would reject them.
    `hota=False` skips HOTA (the slowest metric; HOTA, DetA and AssA are then NaN).
    """
    import trackeval
    from trackeval.utils import TrackEvalException

    if not trackers:
        return {}
    gt_path, seq_name, length = _gt_source(gt)
    gt_rows = load_mot_gt(gt_path, include_ignored=True)
    tracker_rows = {name: list(rows) for name, rows in trackers.items()}
    if length is None:
        length = max([r.frame for r in gt_rows] + [1])
    folders = {name: f"t{i}" for i, name in enumerate(tracker_rows)}
    with tempfile.TemporaryDirectory(prefix="capstone-mot-") as tmp:
        root = Path(tmp)
        (root / "gt" / seq_name / "gt").mkdir(parents=True)
        (root / "gt" / seq_name / "gt" / "gt.txt").write_text(
            "".join(
                f"{r.frame},{r.track_id},{r.x},{r.y},{r.w},{r.h},{r.score:g},-1,-1,-1\n"
                for r in gt_rows
            )
        )
        for name, rows in tracker_rows.items():
            inside = [r for r in rows if 1 <= r.frame <= length]
            write_mot(inside, root / "trackers" / folders[name] / "data" / f"{seq_name}.txt")
        eval_config = {
            "USE_PARALLEL": False,
            "BREAK_ON_ERROR": True,
            "LOG_ON_ERROR": None,
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_EMPTY_CLASSES": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
        }
        dataset_config = {
            "GT_FOLDER": str(root / "gt"),
            "TRACKERS_FOLDER": str(root / "trackers"),
            "OUTPUT_FOLDER": str(root / "out"),
            "TRACKERS_TO_EVAL": list(folders.values()),
            "BENCHMARK": "MOT15",
            "SPLIT_TO_EVAL": "train",
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {seq_name: length},
            "PRINT_CONFIG": False,
        }
        metric_config = {"PRINT_CONFIG": False, "THRESHOLD": 0.5}
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                evaluator = trackeval.Evaluator(eval_config)
                dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
                metrics = [
                    trackeval.metrics.CLEAR(metric_config),
                    trackeval.metrics.Identity(metric_config),
                ]
                if hota:
                    metrics.insert(0, trackeval.metrics.HOTA({"PRINT_CONFIG": False}))
                output, _ = evaluator.evaluate([dataset], metrics)
        except TrackEvalException as exc:
            raise EvaluationError(f"trackeval: {exc}") from exc
    results = output["MotChallenge2DBox"]
    return {
        name: _summary(results[folder][seq_name]["pedestrian"]) for name, folder in folders.items()
    }


def evaluate_mot(gt: str | Path, tracker_rows: Iterable[MotRow]) -> dict[str, float | int]:
    """MOTA, IDF1, HOTA, IDSW (and the rest of `METRIC_KEYS`) of one tracker's rows.

    Args:
        gt: a MOTChallenge sequence folder (`capstone.io.mot.load_sequence`) or a `gt.txt`.
        tracker_rows: the tracker's boxes as `MotRow` (1-based frames); rows outside the
            sequence's frames are ignored.

    Returns:
        `{metric: value}` for every key of `METRIC_KEYS`: rates (MOTA, IDF1, HOTA, ...) as
        fractions, counts (IDSW, TP, FP, FN, ...) as ints.

    Raises:
        EvaluationError: not a sequence folder or gt file, or `trackeval` refused the data.

    A tiny sequence, and a tracker that switches identity once:

    >>> import tempfile
    >>> gt = [MotRow(f, 1, 10.0 + f, 20.0, 30.0, 60.0) for f in range(1, 6)]
    >>> seq = write_mot(gt, Path(tempfile.mkdtemp()) / "tiny" / "gt" / "gt.txt").parents[1]
    >>> evaluate_mot(seq, gt)["MOTA"]
    1.0
    >>> switched = gt[:3] + [r._replace(track_id=2) for r in gt[3:]]
    >>> {k: round(v, 2) for k, v in evaluate_mot(seq, switched).items() if k in ("MOTA", "IDSW")}
    {'MOTA': 0.8, 'IDSW': 1}
    >>> gt_dir = "../shared/data/mot/TUD-Campus"
    >>> evaluate_mot(gt_dir, load_mot_gt(gt_dir))["MOTA"]  # doctest: +SKIP
    1.0
    """
    return evaluate_many(gt, {"tracker": tracker_rows})["tracker"]
