"""MOTChallenge files: sequence folders, `gt.txt` / `det.txt` tables, and writing rows back.

Rows are `MotRow` (MOTChallenge 2015 layout: 1-based frames, top-left `x, y`, width, height):
one line of the file, as read and written. Code that works on the boxes takes
`mot_rows_to_detections(rows)`, the `Detections` every stage uses.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from capstone.core.detections import Detections
from capstone.errors import EvaluationError

PERSON = {0: "person"}
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


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
    """Read a sequence folder; raises `EvaluationError` with one line when it is not one.

    Args:
        seq_dir: a MOTChallenge sequence folder: `gt/gt.txt` required; `seqinfo.ini`,
            `det/det.txt`, `img1/` and a video file inside are picked up when present.

    Returns:
        `MotSequence`: name and frame rate / length / size from `seqinfo.ini` (without
        it: the folder name, 30 fps and the last ground-truth frame), and the paths found.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()) / "tiny"
    >>> gt = [MotRow(f, 1, 10.0 + f, 20.0, 30.0, 60.0) for f in range(1, 6)]
    >>> _ = write_mot(gt, root / "gt" / "gt.txt")
    >>> seq = load_sequence(root)
    >>> seq.name, seq.length, seq.frame_rate, seq.det_path
    ('tiny', 5, 30.0, None)
    >>> load_sequence("../shared/data/mot/TUD-Campus").length  # doctest: +SKIP
    71
    """
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


def _mot_values(path: str | Path, what: str) -> Iterator[tuple[int, list[float]]]:
    """(line number, the first 7 values) of each non-empty line of a MOT text file."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path}: no such {what} file")
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
            yield number, values[:7]


def _read_mot_table(path: str | Path, what: str) -> np.ndarray:
    rows = [values for _, values in _mot_values(path, what)]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 7)


def iter_mot_file(path: str | Path) -> Iterator[MotRow]:
    """The rows of a MOTChallenge results file (a tracker's output, or `det.txt` with id -1),
    one line at a time: `frame,id,x,y,w,h,score[,...]` (1-based frames).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "t.txt"
    >>> _ = path.write_text("1,7,10,20,5,8,0.9,-1,-1,-1\\n\\n2,-1,1,2,3,4,0.5\\n")
    >>> [tuple(r) for r in iter_mot_file(path)]
    [(1, 7, 10.0, 20.0, 5.0, 8.0, 0.9), (2, -1, 1.0, 2.0, 3.0, 4.0, 0.5)]
    """
    for number, values in _mot_values(path, "MOT"):
        if values[0] != int(values[0]) or values[1] != int(values[1]):
            raise EvaluationError(f"{path}:{number}: frame and id must be whole numbers")
        yield MotRow(int(values[0]), int(values[1]), *values[2:7])  # type: ignore[arg-type]


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
        out.append(
            Detections(
                xyxy.astype(np.float32),
                rows[:, 6].astype(np.float32),
                np.zeros(len(rows), np.int64),
                None,
                PERSON,
            )
        )
    return out


def sequence_images(seq: MotSequence) -> Iterator[np.ndarray] | None:
    """The sequence's frames (BGR) from its video or its `img1/` folder; None if neither."""
    if seq.video is not None:
        from capstone.core.video import iter_frames

        return (frame.image for frame in iter_frames(seq.video))
    if seq.image_dir is not None:
        files = sorted(p for p in seq.image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            import cv2

            return (cv2.imread(str(p)) for p in files)
    return None


def mot_rows_to_detections(rows: Iterable[MotRow]) -> Detections:
    """Rows as person `Detections`, in row order: `tracker_id` is the row's id, the
    `frame` column its (1-based) frame.

    >>> dets = mot_rows_to_detections([MotRow(3, 7, 10.0, 20.0, 5.0, 8.0, 0.5)])
    >>> dets.xyxy.tolist(), dets.tracker_id.tolist(), dets["frame"].tolist(), dets.labels
    ([[10.0, 20.0, 15.0, 28.0]], [7], [3], ['person'])
    """
    table = np.array([tuple(r) for r in rows], np.float64).reshape(-1, 7)
    xyxy = np.concatenate([table[:, 2:4], table[:, 2:4] + table[:, 4:6]], axis=1)
    n = len(table)
    return Detections(
        xyxy,
        table[:, 6],
        np.zeros(n, np.int64),
        table[:, 1].astype(np.int64),
        PERSON,
        {"frame": table[:, 0].astype(np.int64)},
    )


# ---------------------------------------------------------------------------- writing


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
