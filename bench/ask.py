"""Questions benchmark: count accuracy, direction precision@5 and latency of `ask`.

1. Analyses (cached in the bench database `bench_ask`, on the bench-only embedded server;
   `--fresh` redoes them): PETS09-S2L1 (`pets09-s2l1.avi`) and TUD-Campus
   (`TUD-Campus.mp4`) with detect, track, identity, events and attributes.
2. The labelled questions of `bench/data/questions.json` (answers derived from the MOT
   ground truth by `bench/make_questions.py`) are asked with `capstone.search.ask.ask`.
   A count is right when within ±10 % of the ground truth (exact below 10). The
   questions marked `at_once` ("how many people were in view at the same time ...") are
   reported apart: the most ground-truth people in one frame of the window.
3. Threshold chosen on one sequence, reported on the other: the minimum track duration
   (`dur>=D`) added to every question is chosen on sequence A (best accuracy, then least
   absolute error) and scored on sequence B, both ways round; `D = 0` is plain `ask`.
4. Direction precision@5: the first five tracks of "people walking left/right" are matched
   to ground-truth identities (mean IoU of their boxes on shared frames >= 0.3); a hit is
   right when that identity's ground-truth direction is the one asked. Direction of short
   glimpses: 0.4-1.5 s pieces of those tracks against the ground-truth walk around each,
   `walk_min` (`capstone.core.motion.WALK_MIN`) chosen on one sequence, reported on the other.
5. Latency, warm: a video with `--events` detection events (1M) and `--tracks` tracks with
   attributes and line crossings, written with COPY; p50/p99 of `ask` over a question mix.

    .venv/bin/python -m bench.ask                      # everything (analyses cached)
    .venv/bin/python -m bench.ask --events 200000      # quicker latency part
    .venv/bin/python -m bench.ask --skip-latency --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import (
    BENCH_HOME,
    SHARED,
    _clear_caches,
    _with_db,
    copy_synthetic_detections,
    machine_note,
    setup_environment,
)
from bench import table as md_table
from bench.make_questions import OUT as QUESTIONS
from bench.make_questions import SEQUENCES, load_gt, tracks_of
from capstone.core.geometry import box_iou
from capstone.core.motion import HEAT_COLS, HEAT_ROWS, WALK_MIN, Motion, direction_of, motion_of

STAGES = ("detect", "track", "identity", "events", "attributes")
VIDEO_IDS = {"PETS09-S2L1": "pets09", "TUD-Campus": "tud-campus"}
LABELS = Path(__file__).parent / "data" / "attribute_labels.json"
# hand-labelled footage (colour and type of track crops): file name -> video id
LABELLED = {"highway-cctv.avi": "highway-cctv", "bikes.mp4": "bikes"}
DURATIONS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)
BIG_VIDEO = "bench-ask-1m"
LATENCY_QUESTIONS = (
    "how many people walked left between 0:10 and 0:30?",
    "how many cars?",
    "when did the red cars leave?",
    "show me the white cars going towards the camera",
    "which cars crossed line A faster than 40",
    "how many people in zone door",
    "where were the cars?",
    "show me the sedans",
    "show me the fastest car",
    "when did the white van leave?",
)
# question forms measured apart (the mix above is the target): the busiest moment,
# a window before the end, a count per minute (one statement per period), a stated value,
# an average, an exclusion, a yes/no question, a breakdown, a comparison, a checked superlative,
# times relative to another object, arrivals and departures, running, how many at a time on
# average, the video's length
MORE_FORMS = (
    "how many people were in view at the same time?",
    "how many cars in the last 5 minutes?",
    "how many cars per minute?",
    "how fast was the fastest car?",
    "what was the average speed of the cars?",
    "how many people did not walk left?",
    "were there any red trucks?",
    "what was the most common colour of the cars?",
    "were there more cars than trucks?",
    "was the fastest car red?",
    "how many cars in the first half of the video?",
    "what was the busiest minute for cars?",
    "how many people walked slowly?",
    "was the fastest car faster than 40?",
    "how many people were there while a truck was there?",
    "how many people were there while a car was stopped?",
    "how many cars were there when the fastest car left?",
    "how many cars arrived after 10 minutes?",
    "how many people left before 0:30?",
    "did anyone run?",
    "on average, how many cars were in view?",
    "how long is the video?",
)
# the synthetic tracks' classifier labels (for the zero-shot question)
SYNTHETIC_LABELS = ("passenger_car", "limousine", "minivan", "window_screen", "suit", "jersey")


def _database(fresh: bool) -> str:
    """The cached bench database (created and migrated on first use)."""
    from sqlalchemy import create_engine, text

    from capstone.store import migrate
    from capstone.store.server import acquire_embedded

    BENCH_HOME.mkdir(parents=True, exist_ok=True)
    server = acquire_embedded(BENCH_HOME / "pgdata")
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if fresh:
            conn.execute(text("DROP DATABASE IF EXISTS bench_ask WITH (FORCE)"))
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = 'bench_ask'"))
        if exists.first() is None:
            conn.execute(text("CREATE DATABASE bench_ask"))
    admin.dispose()
    url = _with_db(server, "bench_ask")
    migrate.upgrade(url)
    os.environ["DATABASE_URL"] = url
    _clear_caches()
    return url


def _analysed(video_id: str, params: Any) -> int | None:
    """The cached analysis of `video_id` made with `params` by this code (its params hash)."""
    from sqlalchemy import text

    from capstone.store.engine import session_scope

    with session_scope() as s:
        row = s.execute(
            text(
                "SELECT a.id FROM apps_db_videoanalysis a WHERE a.video_id = :v "
                "AND a.status = 'completed' AND a.params_hash = :h AND EXISTS "
                "(SELECT 1 FROM apps_db_trackattributes t WHERE t.analysis_id = a.id) "
                "ORDER BY a.id DESC LIMIT 1"
            ),
            {"v": video_id, "h": params.params_hash()},
        ).first()
    return int(row[0]) if row else None


def analyse(max_frames: int | None) -> dict[str, float]:
    """Analyse both sequences unless cached; seconds spent per sequence."""
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    spent = {}
    for sequence, (video, _fps, _w, _windows) in SEQUENCES.items():
        video_id = VIDEO_IDS[sequence]
        params = AnalysisParams(stages=STAGES, max_frames=max_frames)
        if _analysed(video_id, params) is not None:
            spent[sequence] = 0.0
            continue
        t = time.perf_counter()
        result = analyze(video, video_id=video_id, params=params)
        if result.status != "completed":
            raise SystemExit(f"{sequence}: analysis failed: {result.error}")
        spent[sequence] = time.perf_counter() - t
    return spent


def analyse_labelled() -> dict[str, float]:
    """Analyse the hand-labelled videos unless cached; seconds spent per video."""
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    spent = {}
    params = AnalysisParams(stages=STAGES)
    for name, video_id in LABELLED.items():
        if _analysed(video_id, params) is not None:
            spent[name] = 0.0
            continue
        t = time.perf_counter()
        result = analyze(SHARED / "data" / "videos" / name, video_id=video_id, params=params)
        if result.status != "completed":
            raise SystemExit(f"{name}: analysis failed: {result.error}")
        spent[name] = time.perf_counter() - t
    return spent


def _label_of(hit: Any, labels: list[dict]) -> dict | None:
    """The hand label of the object `hit` (a track) followed: IoU >= 0.5 on its frame."""
    from sqlalchemy import text

    from capstone.store.engine import session_scope

    mine = [lb for lb in labels if LABELLED[lb["video"]] == hit.video_id]
    if not mine:
        return None
    with session_scope() as s:
        boxes = s.execute(
            text(
                "SELECT frame_number, bbox FROM apps_db_event WHERE analysis_id = :a "
                "AND track_id = :t AND event_type = 'detection' AND frame_number = ANY(:f)"
            ),
            {"a": hit.analysis_id, "t": hit.track_id, "f": [lb["frame"] for lb in mine]},
        ).all()
    best, best_iou = None, 0.5
    for frame, box in boxes:
        for lb in mine:
            if lb["frame"] == frame:
                iou = float(box_iou(box, lb["bbox"])[0, 0])
                if iou >= best_iou:
                    best, best_iou = lb, iou
    return best


def color_precision(k: int = 5) -> list[list[Any]]:
    """precision@k of `color:X` per labelled video: of the first k hits that match a labelled
    object, how many have that colour (strict: the label; fair: the label or an `also`)."""
    from capstone.search import tracks
    from capstone.search.ql import parse

    labels = json.loads(LABELS.read_text())["labels"]
    colors = sorted({lb["color"] for lb in labels})
    out = []
    for name, video_id in LABELLED.items():
        for color in colors:
            if sum(lb["color"] == color and lb["video"] == name for lb in labels) < 2:
                continue
            hits = tracks.find_tracks(parse(f"color:{color} video:{video_id} limit:{k}"))
            known = [lb for lb in (_label_of(h, labels) for h in hits) if lb is not None]
            strict = sum(lb["color"] == color for lb in known)
            fair = sum(lb["color"] == color or color in lb["also"] for lb in known)
            out.append([name, color, len(hits), len(known), strict, fair,
                        round(strict / len(known), 2) if known else None,
                        round(fair / len(known), 2) if known else None])  # fmt: skip
    return out


# hand-labelled types -> the fine types (ImageNet labels) that name them
TYPE_QUERIES = {"van": "type:minivan,moving_van,police_van", "truck": "type:pickup,trailer_truck"}


def type_precision(k: int = 5) -> list[list[Any]]:
    """precision@k of fine-type queries over the labelled videos: of the first k hits that
    match a labelled object, how many have that hand-labelled type."""
    from capstone.search import tracks
    from capstone.search.ql import parse

    labels = json.loads(LABELS.read_text())["labels"]
    videos = ",".join(LABELLED.values())
    out = []
    for wanted, query in TYPE_QUERIES.items():
        hits = tracks.find_tracks(parse(f"{query} video:{videos} limit:{k}"))
        known = [lb for lb in (_label_of(h, labels) for h in hits) if lb is not None]
        right = sum(lb["type"] == wanted for lb in known)
        truth = sum(lb["type"] == wanted for lb in labels)
        out.append([wanted, query, truth, len(hits), len(known), right,
                    round(right / len(known), 2) if known else None])  # fmt: skip
    return out


def _right(got: int, want: int) -> bool:
    return abs(got - want) <= 0.1 * want if want else got == 0


def _print_accuracy(rows: list[dict], what: str) -> None:
    """Per sequence: the share of answers within ±10 % and the mean absolute error."""
    for seq in SEQUENCES:
        mine = [r for r in rows if r["sequence"] == seq]
        acc = sum(_right(r["got"], r["answer"]) for r in mine) / max(len(mine), 1)
        err = float(np.mean([abs(r["got"] - r["answer"]) for r in mine])) if mine else 0.0
        print(f"{seq}: {what} accuracy (±10 %) {acc:.2f} over {len(mine)} questions, "
              f"mean |error| {err:.2f}")  # fmt: skip


def _bracketed(row: dict) -> bool:
    """The ground truth lies in the range the answer gives: [at least, count]."""
    return row["at_least"] <= row["answer"] <= row["got"]


def count_answers(questions: list[dict]) -> list[dict]:
    """Each question asked once per duration threshold: the counts."""
    from capstone.search import tracks
    from capstone.search.ask import ask
    from capstone.search.ql import Condition, Query
    from capstone.search.understand import understand

    rows = []
    for q in questions:
        video_id = VIDEO_IDS[q["sequence"]]
        answer = ask(q["question"], video_id=video_id)
        understood = understand(q["question"], video_id).query
        by_dur = {}
        for d in DURATIONS:
            query = understood
            if d:
                conds = (*understood.conditions, Condition(field="dur", op=">=", value=d))
                query = Query(**{**understood.model_dump(), "conditions": conds})
            by_dur[d] = tracks.run(query.model_copy(update={"limit": 1})).count
        rows.append(
            {**q, "got": answer.count, "at_least": answer.at_least, "query": answer.query,
             "by_dur": by_dur}
        )  # fmt: skip
    return rows


def choose_and_report(rows: list[dict]) -> list[list[Any]]:
    """Duration threshold chosen on one sequence, scored on the other."""
    out = []
    seqs = list(SEQUENCES)
    for choose_on in seqs:
        report_on = next(s for s in seqs if s != choose_on)

        def score(seq: str, d: float) -> tuple[float, float]:
            mine = [r for r in rows if r["sequence"] == seq]
            acc = sum(_right(r["by_dur"][d], r["answer"]) for r in mine) / len(mine)
            err = sum(abs(r["by_dur"][d] - r["answer"]) for r in mine) / len(mine)
            return acc, err

        best = max(DURATIONS, key=lambda d: (score(choose_on, d)[0], -score(choose_on, d)[1]))
        acc_a, _ = score(choose_on, best)
        acc_b, err_b = score(report_on, best)
        plain_b, plain_err_b = score(report_on, 0.0)
        out.append([choose_on, best, acc_a, report_on, acc_b, err_b, plain_b, plain_err_b])
    return out


def _gt_boxes(sequence: str) -> dict[int, dict[int, np.ndarray]]:
    """Ground-truth identity -> MOT frame (1-based) -> xyxy box."""
    boxes: dict[int, dict[int, np.ndarray]] = {}
    for f, i, x, y, w, h in load_gt(sequence):
        boxes.setdefault(int(i), {})[int(f)] = np.array([x, y, x + w, y + h])
    return boxes


def _truth_of(
    analysis_id: int, track_id: int, truth: dict[int, dict[int, np.ndarray]]
) -> int | None:
    """The ground-truth identity a stored track follows: the best mean IoU over the frames
    both have, at least 0.3; None when it follows no one."""
    from sqlalchemy import text

    from capstone.store.engine import session_scope

    with session_scope() as s:
        det = s.execute(
            text(
                "SELECT frame_number, bbox FROM apps_db_event WHERE analysis_id = :a "
                "AND track_id = :t AND event_type = 'detection'"
            ),
            {"a": analysis_id, "t": track_id},
        ).all()
    best, best_iou = None, 0.0
    for ident, gt_boxes in truth.items():
        ious = [float(box_iou(b, gt_boxes[f + 1])[0, 0]) for f, b in det if f + 1 in gt_boxes]
        if ious and np.mean(ious) > best_iou:
            best, best_iou = ident, float(np.mean(ious))
    return best if best_iou >= 0.3 else None


def direction_precision(k: int = 5) -> list[list[Any]]:
    """precision@k of "people walking left/right" against ground-truth directions."""
    from capstone.search import tracks
    from capstone.search.ql import parse

    out = []
    for sequence, (_video, fps, width, _windows) in SEQUENCES.items():
        video_id = VIDEO_IDS[sequence]
        truth = _gt_boxes(sequence)
        gt_tracks = tracks_of(load_gt(sequence), fps, width)
        for direction in ("left", "right"):
            hits = tracks.find_tracks(parse(f"person dir:{direction} video:{video_id} limit:{k}"))
            right = 0
            for h in hits:
                best = _truth_of(h.analysis_id, h.track_id, truth)
                if best is not None:
                    right += gt_tracks[best]["direction"] == direction
            out.append([sequence, direction, len(hits), right, right / len(hits) if hits else None])
    return out


def direction_agreement() -> list[list[Any]]:
    """Every plausible person track that follows a ground-truth person: does its stored
    direction say what the person's whole walk says (`make_questions`: left, right, or
    neither)? The questions count people by that direction."""
    from capstone.search import tracks
    from capstone.search.ql import parse

    out = []
    for sequence, (_video, fps, width, _windows) in SEQUENCES.items():
        truth = _gt_boxes(sequence)
        gt_tracks = tracks_of(load_gt(sequence), fps, width)
        hits = tracks.find_tracks(parse(f"person video:{VIDEO_IDS[sequence]} limit:1000"))
        agree = compared = 0
        for h in hits:
            best = _truth_of(h.analysis_id, h.track_id, truth)
            if best is None:
                continue
            said = h.attributes.get("direction")
            compared += 1
            agree += (said if said in ("left", "right") else None) == gt_tracks[best]["direction"]
        out.append([sequence, len(hits), compared, agree, agree / compared if compared else None])
    return out


GLIMPSE_S = (0.4, 0.6, 1.0, 1.5)  # lengths of the pieces cut from each track
GLIMPSE_CONTEXT_S = 1.5  # the ground truth's walk around a piece, each side
WALK_MINS = (math.inf, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)  # inf: half a height, however brief


def _left_right(direction: str) -> str:
    return direction if direction in ("left", "right") else "other"


def _followed(sequence: str) -> list[tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]]:
    """Every stored plausible person track that follows a ground-truth person: its frames
    (0-based), its boxes and that person's boxes (MOT frame, 1-based -> xyxy)."""
    from sqlalchemy import text

    from capstone.search import tracks
    from capstone.search.ql import parse
    from capstone.store.engine import session_scope

    truth = _gt_boxes(sequence)
    hits = tracks.find_tracks(parse(f"person video:{VIDEO_IDS[sequence]} limit:1000"))
    out = []
    for h in hits:
        person = _truth_of(h.analysis_id, h.track_id, truth)
        if person is None:
            continue
        with session_scope() as s:
            det = s.execute(
                text(
                    "SELECT frame_number, bbox FROM apps_db_event WHERE analysis_id = :a "
                    "AND track_id = :t AND event_type = 'detection' ORDER BY frame_number"
                ),
                {"a": h.analysis_id, "t": h.track_id},
            ).all()
        frames = np.array([f for f, _ in det])
        out.append((frames, np.array([b for _, b in det], np.float64), truth[person]))
    return out


def glimpses(sequence: str) -> list[tuple[str, Motion]]:
    """Pieces of every stored person track that follows a ground-truth person, as brief
    tracks would be: per piece, the direction the person's ground-truth walk has around it
    (`GLIMPSE_CONTEXT_S` each side, judged like a long track) and the piece's own motion."""
    _video, fps, _width, _windows = SEQUENCES[sequence]
    out = []
    for frames, boxes, walk in _followed(sequence):
        for seconds in GLIMPSE_S:
            n = max(3, round(seconds * fps))
            for i in range(0, len(frames) - n + 1, n):
                piece = frames[i : i + n]
                if piece[-1] - piece[0] > 1.5 * n:  # a gap: not one glimpse
                    continue
                middle = (piece[0] + piece[-1]) / 2 + 1
                around = [f for f in sorted(walk) if abs(f - middle) <= GLIMPSE_CONTEXT_S * fps]
                if len(around) < fps:
                    continue
                gt = motion_of(np.array(around) / fps, np.array([walk[f] for f in around]))
                reference = direction_of(gt.dx_px, gt.dy_px, gt.height_px, gt.growth)
                out.append((_left_right(reference), motion_of(piece / fps, boxes[i : i + n])))
    return out


def glimpse_directions() -> list[list[Any]]:
    """Left / right / neither of brief tracks against the ground truth, for each `walk_min`
    (`capstone.core.motion.WALK_MIN`): chosen on one sequence, reported on the other."""
    pieces = {seq: glimpses(seq) for seq in SEQUENCES}

    def accuracy(seq: str, walk_min: float) -> float:
        said = [
            _left_right(direction_of(m.dx_px, m.dy_px, m.height_px, m.growth, m.duration_s,
                                     walk_min=walk_min)) == ref
            for ref, m in pieces[seq]
        ]  # fmt: skip
        return sum(said) / len(said)

    out = []
    for choose_on in SEQUENCES:
        report_on = next(s for s in SEQUENCES if s != choose_on)
        best = max(WALK_MINS, key=lambda w: accuracy(choose_on, w))
        out.append([choose_on, len(pieces[choose_on]), best, accuracy(choose_on, best),
                    report_on, len(pieces[report_on]), accuracy(report_on, best),
                    accuracy(report_on, math.inf), accuracy(report_on, WALK_MIN)])  # fmt: skip
    return out


STOPPED_S = 2.0  # "did anyone stop?": a pause this long (`understand.STOP_MIN_S`)


def pause_agreement() -> list[list[Any]]:
    """Stopped or not (a pause of `STOPPED_S` or more, `capstone.core.motion`), every
    stored person track that follows a ground-truth person against that person's
    ground-truth boxes over the same frames (annotations are smooth: the same rule reads
    them without detector jitter). For each stop found, where: the distance between the
    place the track stood (`Motion.pause_at`) and the place the person stood, in box
    heights."""
    out = []
    for sequence, (_video, fps, _width, _windows) in SEQUENCES.items():
        said = []
        still = []  # stood still (`still`): a pause, or a whole visit without moving
        off: list[float] = []
        for frames, boxes, walk in _followed(sequence):
            shared = [f for f in range(frames[0] + 1, frames[-1] + 2) if f in walk]
            if len(shared) < 3:
                continue
            truth = motion_of(np.array(shared) / fps, np.stack([walk[f] for f in shared]))
            mine = motion_of(frames / fps, boxes)
            said.append((truth.pause_s >= STOPPED_S, mine.pause_s >= STOPPED_S))
            still.append((_still(truth) >= STOPPED_S, _still(mine) >= STOPPED_S))
            if said[-1] == (True, True) and truth.pause_at and mine.pause_at:
                gap = np.subtract(truth.pause_at, mine.pause_at)
                off.append(float(np.linalg.norm(gap)) / max(truth.height_px, 1.0))
        stopped = sum(t for t, _ in said)
        found = sum(t and m for t, m in said)
        false = sum(m and not t for t, m in said)
        agree = sum(t == m for t, m in said)
        where = round(float(np.median(off)), 2) if off else None
        out.append(
            [sequence, len(said), stopped, found, false, agree / len(said) if said else None,
             where, sum(t for t, _ in still), sum(t and m for t, m in still),
             sum(m and not t for t, m in still)]
        )  # fmt: skip
    return out


def _still(m: Motion) -> float:
    """How long it stood still (the query language's `still`): its longest pause, or its
    whole time when it never moved."""
    return max(m.pause_s, m.duration_s if m.direction == "static" else 0.0)


def occupancy_accuracy() -> list[list[Any]]:
    """ "On average, how many people were in view between A and B?" over the windows of the
    question set, against the ground truth's boxes per frame in the window."""
    from capstone.search.ask import ask

    out = []
    for sequence, (video, fps, _width, windows) in SEQUENCES.items():
        gt = load_gt(sequence)
        times = (gt[:, 0] - 1) / fps
        length = _video_frames(video)
        for lo, hi in windows:
            frames = [f for f in range(1, length + 1) if lo <= (f - 1) / fps <= hi]
            truth = float(((times >= lo) & (times <= hi)).sum()) / max(len(frames), 1)
            window = f"between {lo // 60}:{lo % 60:02d} and {hi // 60}:{hi % 60:02d}"
            answer = ask(f"on average, how many people were in view {window}?",
                         VIDEO_IDS[sequence])  # fmt: skip
            got = answer.in_view
            error = None if got is None else round((got - truth) / truth, 3) if truth else None
            out.append([sequence, window, round(truth, 2), got, error])
    return out


def _video_frames(video: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def running() -> list[list[Any]]:
    """Pace (speed in the object's own heights per second) of the people of each sequence:
    the ground truth's walks (people seen 1 s or more), the same walks played twice as fast
    (a jog of about 2.5-3 m/s), and the stored plausible person tracks; how many of each
    "ran" (`RUN_PACE` or more: "did anyone run?"). Nobody runs in either sequence."""
    from capstone.search import tracks
    from capstone.search.ql import parse
    from capstone.search.understand import RUN_PACE

    out = []
    for sequence, (_video, fps, _width, _windows) in SEQUENCES.items():
        walks: dict[str, list[float]] = {"ground truth": [], "ground truth, twice as fast": []}
        for boxes in _gt_boxes(sequence).values():
            frames = np.array(sorted(boxes))
            if len(frames) < fps:
                continue
            xyxy = np.stack([boxes[f] for f in frames])
            for name, times in (
                ("ground truth", (frames - 1) / fps),
                ("ground truth, twice as fast", (frames - 1) / fps / 2),
            ):
                m = motion_of(times, xyxy)
                walks[name].append(m.speed_px_s / max(m.height_px, 1.0))  # fmt: skip
        hits = tracks.find_tracks(parse(f"person video:{VIDEO_IDS[sequence]} limit:1000"))
        walks["stored person tracks"] = [
            h.attributes["speed_px_s"] / h.attributes["height_px"]
            for h in hits
            if h.attributes.get("speed_px_s") is not None and h.attributes.get("height_px")
        ]
        for name, paces in walks.items():
            out.append([sequence, name, len(paces), round(float(np.median(paces)), 2),
                        round(max(paces), 2), sum(p >= RUN_PACE for p in paces)])  # fmt: skip
    return out


def synthesize(events: int, n_tracks: int) -> None:
    """A completed analysis with `events` detection rows and `n_tracks` tracks with
    attributes and line crossings (COPY), unless it is there already."""
    from sqlalchemy import text

    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses
    from capstone.store.bulk import copy_rows
    from capstone.store.engine import session_scope

    with session_scope() as s:
        have = s.execute(
            text("SELECT count(*) FROM apps_db_event WHERE video_id = :v"), {"v": BIG_VIDEO}
        ).scalar_one()
        labelled = s.execute(
            text(
                "SELECT count(*) FROM apps_db_trackattributes WHERE video_id = :v "
                "AND heat IS NOT NULL"
            ),
            {"v": BIG_VIDEO},
        ).scalar_one()
    if have >= events and labelled:
        return
    if have:
        with session_scope() as s:  # made by an earlier version of this bench: redo it
            s.execute(text("DELETE FROM apps_db_video WHERE video_id = :v"), {"v": BIG_VIDEO})
    rng = np.random.default_rng(0)
    params = AnalysisParams(max_frames=1, stages=STAGES)
    lease = analyses.claim_analysis(BIG_VIDEO, params, analyses.worker_id())
    per_frame = 20
    classes = np.array(["person", "car", "truck", "bicycle", "bus"])
    colors = np.array(["red", "white", "black", "grey", "blue", "green"])
    dirs = np.array(["left", "right", "toward", "away", "static"])
    with session_scope() as session:
        analyses.fence(session, lease)
        copy_synthetic_detections(
            session,
            BIG_VIDEO,
            lease.analysis_id,
            events,
            confidence=0.6,
            track_of=lambda row, _frame: row % n_tracks + 1,
            per_frame=per_frame,
        )
        length = events / per_frame / 25.0
        track_rows, attr_rows, crossings = [], [], []
        for t in range(1, n_tracks + 1):
            t0 = float(rng.uniform(0, length))
            dur = float(rng.uniform(0.2, 30))
            cls = str(rng.choice(classes))
            track_rows.append(
                {
                    "video_id": BIG_VIDEO,
                    "analysis_id": lease.analysis_id,
                    "track_id": t,
                    "class_name": cls,
                    "first_frame": int(t0 * 25),
                    "last_frame": int((t0 + dur) * 25),
                    "first_timestamp": t0,
                    "last_timestamp": t0 + dur,
                    "length": int(dur * 25),
                    "mean_confidence": 0.6,
                }
            )
            conf = float(rng.uniform(0.25, 0.95))
            attr_rows.append(
                {
                    "video_id": BIG_VIDEO,
                    "analysis_id": lease.analysis_id,
                    "track_id": t,
                    "class_name": cls,
                    "t_start": t0,
                    "t_end": t0 + dur,
                    "duration_s": dur,
                    "confidence": conf,
                    "color": str(rng.choice(colors)),
                    "direction": str(rng.choice(dirs)),
                    "speed_px_s": float(rng.uniform(0, 120)),
                    "size_frac": float(rng.uniform(0.001, 0.3)),
                    "plausible": bool(conf >= 0.4 and dur >= 0.5),
                    "doubts": [] if conf >= 0.4 else ["doubtful"],
                    "heat": rng.poisson(0.5, size=HEAT_COLS * HEAT_ROWS).tolist(),
                    "imagenet": {
                        str(k): round(float(p), 3)
                        for k, p in zip(
                            rng.choice(SYNTHETIC_LABELS, 3, replace=False),
                            rng.dirichlet(np.ones(3)),
                            strict=True,
                        )
                    },
                }
            )
            if rng.random() < 0.3:
                crossings.append(
                    {
                        "video_id": BIG_VIDEO,
                        "analysis_id": lease.analysis_id,
                        "frame_number": int((t0 + dur / 2) * 25),
                        "timestamp": t0 + dur / 2,
                        "event_type": "line_cross",
                        "class_name": cls,
                        "track_id": t,
                        "attributes": {"line": "A", "direction": "in"},
                    }
                )
        copy_rows(session, "apps_db_track", track_rows)
        copy_rows(session, "apps_db_trackattributes", attr_rows)
        copy_rows(session, "apps_db_event", crossings)
        analyses.mark_completed(
            session, lease, frames_processed=events // per_frame, fps=0.0, summary={}
        )
    with session_scope() as s:
        s.execute(text("ANALYZE"))


def latency(repeat: int, questions: Sequence[str] = LATENCY_QUESTIONS) -> dict[str, Any]:
    from capstone.search.ask import ask

    for q in questions:  # warm: connections, plans, caches
        ask(q, video_id=BIG_VIDEO)
    times: dict[str, list[float]] = {q: [] for q in questions}
    for _ in range(repeat):
        for q in questions:
            t = time.perf_counter()
            ask(q, video_id=BIG_VIDEO)
            times[q].append(time.perf_counter() - t)
    every = sorted(x for v in times.values() for x in v)
    cuts = statistics.quantiles(every, n=100)
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "per_question_p50_ms": {q: round(statistics.median(v) * 1000, 1) for q, v in times.items()},
        "n": len(every),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="redo the cached analyses")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--tracks", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    setup_environment()
    if not (SHARED / "data" / "mot").exists():
        raise SystemExit("../shared/data/mot is missing")
    _database(args.fresh)
    report: dict[str, Any] = {"machine": machine_note()}
    report["analysis_s"] = analyse(args.max_frames)
    labelled = json.loads(QUESTIONS.read_text())
    questions = [q for q in labelled if not q.get("at_once") and not q.get("moving")]
    rows = count_answers(questions)
    mapped = sum(r["query"].startswith(r["expected_query"]) for r in rows)
    print(f"\nquestions mapped to the expected query: {mapped}/{len(rows)}")
    print(
        md_table(
            [
                [r["sequence"], r["question"], r["answer"], r["got"], _right(r["got"], r["answer"]),
                 r["at_least"], _bracketed(r)]
                for r in rows
            ],
            ["sequence", "question", "truth", "answer", "within 10%", "at least (in view at once)",
             "truth in [at least, answer]"],
        )
    )  # fmt: skip
    for seq in SEQUENCES:
        mine = [r for r in rows if r["sequence"] == seq]
        acc = sum(_right(r["got"], r["answer"]) for r in mine) / len(mine)
        print(f"{seq}: count accuracy (±10 %) {acc:.2f} over {len(mine)} questions; "
              f"truth within [at least, answer] for {sum(map(_bracketed, mine))}")  # fmt: skip
    together = count_answers([q for q in labelled if q.get("at_once")])
    print("\nhow many in view at the same time (the most ground-truth people in one frame):")
    print(
        md_table(
            [[r["sequence"], r["question"], r["answer"], r["got"], _right(r["got"], r["answer"])]
             for r in together],
            ["sequence", "question", "truth", "answer", "within 10%"],
        )
    )  # fmt: skip
    _print_accuracy(together, "at-once")
    report["at_once"] = [
        {k: r[k] for k in ("sequence", "question", "answer", "got")} for r in together
    ]
    moving = count_answers([q for q in labelled if q.get("moving")])
    print("\nhow many arrived / left in a window (ground truth: first / last box in it):")
    print(
        md_table(
            [[r["sequence"], r["question"], r["answer"], r["got"], _right(r["got"], r["answer"]),
              r["query"].startswith(r["expected_query"])] for r in moving],
            ["sequence", "question", "truth", "answer", "within 10%", "mapped"],
        )
    )  # fmt: skip
    _print_accuracy(moving, "arrived / left")
    report["moving"] = [
        {k: r[k] for k in ("sequence", "question", "answer", "got")} for r in moving
    ]
    chosen = choose_and_report(rows)
    print("\nminimum duration chosen on one sequence, reported on the other:")
    print(
        md_table(
            chosen,
            ["chosen on", "dur>=", "acc there", "reported on", "acc", "mean |err|",
             "acc (plain ask)", "mean |err| (plain)"],
        )
    )  # fmt: skip
    precision = direction_precision()
    print("\ndirection precision@5 (ground-truth directions):")
    print(md_table(precision, ["sequence", "direction", "hits (<= 5)", "right", "precision"]))
    agreement = direction_agreement()
    print("\ndirection of every person track that follows a ground-truth person:")
    print(md_table(agreement, ["sequence", "tracks", "following a person", "agree", "share"]))
    glimpse = glimpse_directions()
    print(
        "\ndirection of short glimpses (0.4-1.5 s pieces of person tracks; walk_min chosen on "
        "one sequence, reported on the other; inf = half a height however brief):"
    )
    print(md_table(glimpse, ["chosen on", "pieces", "walk_min", "accuracy there", "reported on",
                             "pieces", "accuracy", "accuracy (half a height)",
                             f"accuracy (default {WALK_MIN})"]))  # fmt: skip
    pauses = pause_agreement()
    print(
        f"\nstopped (a pause of {STOPPED_S:g} s or more) of every person track that follows a "
        "ground-truth person, against the ground truth over the same frames:"
    )
    print(md_table(pauses, ["sequence", "tracks", "stopped (truth)", "found", "false stops",
                            "agree", "where: median distance (box heights)",
                            "stood still (truth)", "found", "false"]))  # fmt: skip
    occupied = occupancy_accuracy()
    print("\non average, how many people in view (ground truth: boxes per frame in the window):")
    print(md_table(occupied, ["sequence", "window", "truth", "answer", "relative error"]))
    paces = running()
    print("\npace of people (own heights per second; 'ran': at RUN_PACE or more):")
    print(md_table(paces, ["sequence", "walks", "people", "median", "max", "ran"]))
    report["labelled_analysis_s"] = analyse_labelled()
    colour = color_precision()
    print("\ncolour precision@5 (hand labels, bench/data/attribute_labels.json):")
    print(md_table(colour, ["video", "color", "hits", "labelled", "right", "right (fair)",
                            "precision", "precision (fair)"]))  # fmt: skip
    for name in LABELLED:
        mine = [r for r in colour if r[0] == name and r[3]]
        labelled = sum(r[3] for r in mine)
        if labelled:
            strict, fair = sum(r[4] for r in mine), sum(r[5] for r in mine)
            print(f"{name}: precision@5 {strict / labelled:.2f} strict, "
                  f"{fair / labelled:.2f} fair over {labelled} hits")  # fmt: skip
    kinds = type_precision()
    print("\nfine-type precision@5 (hand labels):")
    print(md_table(kinds, ["type", "query", "labelled", "hits", "matched", "right",
                           "precision"]))  # fmt: skip
    report.update(
        counts=rows,
        chosen=chosen,
        precision=precision,
        agreement=agreement,
        glimpse=glimpse,
        pauses=pauses,
        paces=paces,
        occupancy=occupied,
        mapped=mapped,
        colour=colour,
        types=kinds,
    )
    if not args.skip_latency:
        t = time.perf_counter()
        synthesize(args.events, args.tracks)
        print(f"\nsynthetic video: {args.events} events, {args.tracks} tracks "
              f"({time.perf_counter() - t:.0f} s to write or find)")  # fmt: skip
        report["latency"] = latency(args.repeat)
        lat = report["latency"]
        print(f"ask latency, warm, {lat['n']} questions: p50 {lat['p50_ms']} ms, "
              f"p99 {lat['p99_ms']} ms")  # fmt: skip
        for q, v in lat["per_question_p50_ms"].items():
            print(f"  p50 {v:7.1f} ms  {q}")
        report["latency_more_forms"] = latency(max(args.repeat // 3, 3), MORE_FORMS)
        print("other question forms, warm:")
        for q, v in report["latency_more_forms"]["per_question_p50_ms"].items():
            print(f"  p50 {v:7.1f} ms  {q}")
    print(f"\n{report['machine']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
