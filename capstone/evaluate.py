"""MOT evaluation: run our tracker on a MOTChallenge sequence and score it with `trackeval`.

Tracker output and ground truth are lists of `MotRow` (MOTChallenge 2015 layout, 1-based
frames, top-left `x, y`, width, height). Three ways to get tracker rows:

- `track_detections`: public detections (`det/det.txt`) through `capstone.track.Tracker`;
- `detect_and_track_video`: our detector + tracker over a video;
- `mot_rows_from_database`: the tracks a stored analysis produced (raw tracker ids, or
  with `identities=True` the repaired identities and interpolated boxes);
- `analyze_rows`: exactly what `capstone analyze` stores with the given parameters (every
  class tracked together, the container's frame rate, boxes clipped to the frame, the
  `identity` stage's repair, the chunks): that analysis, run and read back; the `default`
  row of `capstone eval mot`.

`evaluate_mot` scores one set of rows; `evaluate_many` scores several side by side (one
`trackeval` run), e.g. ``{"bytetrack": rows, "botsort": rows}``.

>>> seq = load_sequence("../shared/data/mot/TUD-Campus")  # doctest: +SKIP
>>> dets = load_mot_detections(seq.det_path, num_frames=seq.length)  # doctest: +SKIP
>>> rows = track_detections(dets, "bytetrack", seq.frame_rate)  # doctest: +SKIP
>>> evaluate_mot(seq.root, rows)["MOTA"]  # doctest: +SKIP
0.6...
"""

from __future__ import annotations

import configparser
import contextlib
import io
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from capstone.detections import Detections
from capstone.errors import CapstoneError, InputError

PERSON = {0: "person"}
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
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


class EvaluationError(CapstoneError):
    """MOT evaluation could not run (bad sequence folder, malformed files, metric failure)."""

    exit_code = 6


class MotRow(NamedTuple):
    """One box of one frame: `frame` is 1-based, `x, y` is the top-left corner in pixels."""

    frame: int
    track_id: int
    x: float
    y: float
    w: float
    h: float
    score: float = 1.0


@dataclass(frozen=True)
class MotSequence:
    """A MOTChallenge sequence folder (`gt/gt.txt`, `det/det.txt`, `seqinfo.ini`)."""

    root: Path
    name: str
    gt_path: Path
    det_path: Path | None
    frame_rate: float
    length: int
    width: int | None
    height: int | None
    video: Path | None  # a video file inside the folder, if any
    image_dir: Path | None  # the extracted frames (img1/), if present


# ---------------------------------------------------------------------------- reading


def load_sequence(seq_dir: str | Path) -> MotSequence:
    """Read a sequence folder; raises `EvaluationError` with one line when it is not one."""
    root = Path(seq_dir).expanduser()
    if not root.is_dir():
        raise EvaluationError(f"{root}: not a MOT sequence folder (no such directory)")
    gt_path = root / "gt" / "gt.txt"
    if not gt_path.is_file():
        raise EvaluationError(f"{root}: not a MOT sequence folder (missing gt/gt.txt)")
    info: dict[str, str] = {}
    ini = root / "seqinfo.ini"
    if ini.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(ini)
        except configparser.Error as exc:
            raise EvaluationError(f"{ini}: unreadable ({exc})") from exc
        if parser.has_section("Sequence"):
            info = dict(parser["Sequence"])
    gt_frames = [r.frame for r in load_mot_gt(gt_path, include_ignored=True)]
    try:
        length = int(info.get("seqlength") or max(gt_frames, default=0))
        frame_rate = float(info.get("framerate") or 30.0)
    except ValueError as exc:
        raise EvaluationError(f"{ini}: bad seqLength/frameRate ({exc})") from exc
    if length < 1:
        raise EvaluationError(f"{root}: sequence has no frames")
    image_dir = root / info.get("imdir", "img1")
    videos = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    det_path = root / "det" / "det.txt"
    return MotSequence(
        root=root,
        name=info.get("name") or root.name,
        gt_path=gt_path,
        det_path=det_path if det_path.is_file() else None,
        frame_rate=frame_rate,
        length=length,
        width=int(info["imwidth"]) if info.get("imwidth") else None,
        height=int(info["imheight"]) if info.get("imheight") else None,
        video=videos[0] if videos else None,
        image_dir=image_dir if image_dir.is_dir() else None,
    )


def _read_mot_table(path: str | Path, what: str) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path}: no such {what} file")
    rows = []
    with path.open() as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                values = [float(v) for v in line.replace(" ", "").split(",")]
            except ValueError:
                raise EvaluationError(f"{path}:{number}: not a MOT row: {line[:60]!r}") from None
            if len(values) < 7:
                raise EvaluationError(f"{path}:{number}: a MOT row needs at least 7 columns")
            rows.append(values[:7])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 7)


def load_mot_gt(path: str | Path, *, include_ignored: bool = False) -> list[MotRow]:
    """Ground-truth rows of `gt/gt.txt` (or a sequence folder).

    Rows whose 7th column (the "consider" flag) is 0 are not scored by MOTChallenge and are
    left out unless `include_ignored`; `score` carries that flag.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "gt" / "gt.txt"
    table = _read_mot_table(path, "ground-truth")
    if not include_ignored:
        table = table[table[:, 6] != 0]
    return [
        MotRow(int(r[0]), int(r[1]), *(float(v) for v in r[2:7]))  # type: ignore[arg-type]
        for r in table
    ]


def load_mot_detections(
    path: str | Path, *, num_frames: int | None = None, min_score: float | None = None
) -> list[Detections]:
    """`det.txt` -> one `Detections` (class 0, "person") per frame; entry `i` is MOT frame `i+1`.

    >>> dets = load_mot_detections("../shared/data/mot/TUD-Campus/det/det.txt")  # doctest: +SKIP
    >>> len(dets), dets[0].labels[:1]  # doctest: +SKIP
    (71, ['person'])
    """
    table = _read_mot_table(path, "detections")
    if min_score is not None:
        table = table[table[:, 6] >= min_score]
    frames = table[:, 0].astype(np.int64)
    if len(frames) and frames.min() < 1:
        raise EvaluationError(f"{path}: frame numbers must start at 1")
    count = num_frames if num_frames is not None else int(frames.max(initial=0))
    out = []
    for frame in range(1, count + 1):
        rows = table[frames == frame]
        xyxy = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
        out.append(Detections(xyxy, rows[:, 6], np.zeros(len(rows), np.int64), None, PERSON))
    return out


def sequence_images(seq: MotSequence) -> Iterator[np.ndarray] | None:
    """The sequence's frames (BGR) from its video or its `img1/` folder; None if neither."""
    if seq.video is not None:
        from capstone.media import iter_frames

        return (frame.image for frame in iter_frames(seq.video))
    if seq.image_dir is not None:
        files = sorted(p for p in seq.image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            import cv2

            return (cv2.imread(str(p)) for p in files)
    return None


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
    **tracker_overrides: Any,
) -> list[MotRow]:
    """Run `capstone.track.Tracker` over per-frame detections; returns MOT rows.

    Entry `i` of `frames_of_detections` is MOT frame `i+1` unless `frame_numbers` says
    otherwise (sampled streams). `images` (aligned with the detections) feeds BoT-SORT's
    camera-motion compensation; without images it is switched off (`gmc_method="none"`).
    """
    from capstone.track import Tracker

    if kind == "botsort" and images is None:
        tracker_overrides.setdefault("gmc_method", "none")
    try:
        tracker = Tracker(kind, frame_rate=frame_rate, **tracker_overrides)
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
    from capstone.params import AnalysisParams

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
    from capstone.detect import get_detector
    from capstone.media import iter_frames, probe

    params = _mot_params(params)
    info = probe(video)
    detector = detector or get_detector(params.model)
    detector.conf, detector.imgsz = params.conf, params.imgsz
    try:
        detector.classes = detector.class_ids(params.classes)
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
    from capstone.media import iter_frames

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
        detections, params.tracker, frame_rate or fps, images, frame_numbers=numbers
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
    from capstone.errors import CapstoneError
    from capstone.media import sha256_file
    from capstone.params import AnalysisParams
    from capstone.pipeline import analyze

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
    from sqlmodel import col, select

    from capstone.db.engine import session_scope
    from capstone.db.models import Event, Track

    query = (
        select(Event.frame_number, Event.track_id, Event.bbox, Event.confidence)
        .where(Event.video_id == video_id)
        .where(Event.analysis_id == analysis_id)
        .where(Event.event_type == "detection")
        .where(col(Event.track_id).is_not(None))
        .order_by(col(Event.frame_number), col(Event.track_id))
    )
    if class_name is not None:
        query = query.where(Event.class_name == class_name)
    with session_scope(url) as session:
        result = session.exec(query).all()
        identity_of: dict[int, int] = {}
        if identities:
            pairs = session.exec(
                select(Track.track_id, Track.identity_id)
                .where(Track.video_id == video_id)
                .where(Track.analysis_id == analysis_id)
            ).all()
            identity_of = {int(t): int(i) for t, i in pairs if i is not None}
    rows = []
    for frame_number, track_id, bbox, confidence in result:
        x1, y1, x2, y2 = bbox
        rows.append(
            MotRow(
                int(frame_number) + 1,
                identity_of.get(int(track_id), int(track_id)),
                float(x1),
                float(y1),
                float(x2 - x1),
                float(y2 - y1),
                float(confidence if confidence is not None else 1.0),
            )
        )
    return rows


# ---------------------------------------------------------------------------- writing, scoring


def format_mot(rows: Iterable[MotRow]) -> str:
    """MOTChallenge text: `frame,id,x,y,w,h,score,-1,-1,-1`, sorted by frame then id.

    >>> format_mot([MotRow(1, 7, 10.0, 20.5, 30.25, 60.0, 0.9)])
    '1,7,10,20.5,30.25,60,0.9,-1,-1,-1\\n'
    """

    def num(value: float) -> str:
        return f"{round(value, 3):.10g}"

    lines = [
        f"{r.frame},{r.track_id},{num(r.x)},{num(r.y)},{num(r.w)},{num(r.h)},{num(r.score)},-1,-1,-1"
        for r in sorted(rows, key=lambda r: (r.frame, r.track_id))
    ]
    return "".join(line + "\n" for line in lines)


def write_mot(rows: Iterable[MotRow], path: str | Path) -> Path:
    """Write rows in MOTChallenge format (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_mot(rows))
    return path


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

    >>> gt = "../shared/data/mot/TUD-Campus"
    >>> evaluate_mot(gt, load_mot_gt(gt))["MOTA"]  # doctest: +SKIP
    1.0
    """
    return evaluate_many(gt, {"tracker": tracker_rows})["tracker"]
