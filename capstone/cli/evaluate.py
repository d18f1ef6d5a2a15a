"""`capstone eval ...`: score trackers against MOTChallenge ground truth.

    capstone eval mot --seq ../shared/data/mot/TUD-Campus                  # public det.txt
    capstone eval mot --seq ../shared/data/mot/PETS09-S2L1 \\
        --video ../shared/data/videos/pets09-s2l1.avi --tracker all       # our detector

Rows: each stock tracker, each tracker after offline identity repair (`+repair`), and
`default`: with `--video`, exactly what `capstone analyze VIDEO` stores with the default
parameters (`capstone.eval.mot.analyze_rows`: every class tracked together at the
container's frame rate, the identity stage's repair with appearance; `--detect-every N|auto`
detects only every Nth sampled frame and carries the boxes between by optical flow); with
detections, the default tracker + repair.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import numpy as np

app = typer.Typer(help="Evaluate tracking against ground truth.", no_args_is_help=True)

TRACKER_CHOICES = ("bytetrack", "botsort", "all")
TABLE_COLUMNS = ("MOTA", "IDF1", "HOTA", "IDSW", "DetA", "AssA", "FP", "FN", "MT", "ML", "IDs")


def parse_detect_every(value: str) -> int | str:
    """`--detect-every`: an integer from 1 to 30 or `auto` (else click's usage error, exit 2)."""
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    if text.isdigit() and 1 <= int(text) <= 30:
        return int(text)
    raise typer.BadParameter(f"{value!r} is not an integer from 1 to 30 or 'auto'")


def _check_detect_every(value: str) -> str:
    parse_detect_every(value)
    return value


def _format(value: float | int) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def print_table(title: str, results: dict[str, dict[str, float | int]]) -> None:
    """One row per tracker, the main MOT metrics as columns."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("tracker")
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="right")
    for name, metrics in results.items():
        table.add_row(name, *(_format(metrics[c]) for c in TABLE_COLUMNS))
    Console(width=max(120, len(TABLE_COLUMNS) * 9 + 20)).print(table)


@app.command("mot")
def mot(
    seq: Annotated[
        Path, typer.Option("--seq", help="MOTChallenge sequence folder (with gt/gt.txt)")
    ],
    detections: Annotated[
        Path | None,
        typer.Option(help="track these MOT detections (default: det/det.txt unless --video)"),
    ] = None,
    video: Annotated[
        Path | None,
        typer.Option(help="run our detector on this video (with --detections: frames for GMC)"),
    ] = None,
    tracker: Annotated[str, typer.Option(help="bytetrack, botsort or all")] = "all",
    model: Annotated[str, typer.Option(help="detector for --video")] = "yolo11n",
    conf: Annotated[float, typer.Option(help="detector confidence for --video")] = 0.25,
    stride: Annotated[int, typer.Option(min=1, help="keep every Nth frame for --video")] = 1,
    detect_every: Annotated[
        str,
        typer.Option(
            "--detect-every",
            callback=_check_detect_every,
            help="for the `default` row (--video): run the detector on every Nth sampled"
            " frame (1..30) and carry tracks between by optical flow, or 'auto'",
        ),
    ] = "1",
    output: Annotated[
        Path | None,
        typer.Option(help="folder for the MOTChallenge output [default: CAPSTONE_HOME/eval]"),
    ] = None,
    repair: Annotated[
        bool, typer.Option(help="also score each tracker after offline identity repair")
    ] = True,
) -> None:
    """Run the tracker(s) on a sequence and print MOTA, IDF1, HOTA and ID switches."""
    from capstone.errors import EvaluationError, InputError
    from capstone.eval import mot as evaluate
    from capstone.io import mot as mot_files
    from capstone.stages.params import AnalysisParams

    if tracker not in TRACKER_CHOICES:
        raise EvaluationError(
            f"--tracker must be one of {', '.join(TRACKER_CHOICES)}, not {tracker!r}"
        )
    every = parse_detect_every(detect_every)
    kinds = ["bytetrack", "botsort"] if tracker == "all" else [tracker]
    sequence = mot_files.load_sequence(seq)
    if video is not None and not video.is_file():
        raise InputError(f"{video}: no such video file")

    started = time.perf_counter()
    if video is not None and detections is None:
        source = Path(model).name
        try:
            params = AnalysisParams(model=model, conf=conf, stride=stride, classes=("person",))
        except ValueError as exc:
            raise EvaluationError(f"bad detector options: {exc}") from exc
        frames, numbers, _ = evaluate.detect_video(video, params)
    else:
        det_path = detections or sequence.det_path
        if det_path is None:
            raise EvaluationError(f"{sequence.root}: no det/det.txt; pass --detections or --video")
        source = "public" if detections is None else det_path.stem
        frames = mot_files.load_mot_detections(det_path, num_frames=sequence.length)
        numbers = list(range(1, len(frames) + 1))

    def images(kind: str) -> Iterator[np.ndarray] | None:
        """Frames for BoT-SORT's motion compensation: the video, else the sequence's own."""
        if kind != "botsort":
            return None
        if video is not None:
            return evaluate.video_images(video, numbers)
        return mot_files.sequence_images(sequence)

    detect_s = time.perf_counter() - started
    # name -> MOT rows: one table row each (add more entries to compare more variants)
    rows: dict[str, list[mot_files.MotRow]] = {}
    for kind in kinds:
        rows[kind] = evaluate.track_detections(
            frames, kind, sequence.frame_rate, images(kind), frame_numbers=numbers
        )
        if repair:
            from capstone.tracking.repair import repair_mot_rows

            source_frames = (
                evaluate.video_images(video, numbers)
                if video is not None
                else mot_files.sequence_images(sequence)
            )
            framed = None if source_frames is None else zip(numbers, source_frames, strict=False)
            rows[f"{kind}+repair"], _ = repair_mot_rows(rows[kind], sequence.frame_rate, framed)
    default = AnalysisParams()
    if video is not None and detections is None:
        rows["default"] = evaluate.analyze_rows(
            video,
            AnalysisParams(model=model, conf=conf, stride=stride, detect_every=every),
        )
    elif repair:  # what `capstone analyze` would do with these detections: our tracker + repair
        from capstone.tracking.repair import repair_mot_rows

        ours = evaluate.track_detections(
            frames,
            default.tracker,
            sequence.frame_rate,
            images(default.tracker),
            frame_numbers=numbers,
            stock=False,
        )
        pictures = mot_files.sequence_images(sequence) if video is None else None
        framed = None if pictures is None else zip(numbers, pictures, strict=False)
        if video is not None:
            framed = zip(numbers, evaluate.video_images(video, numbers), strict=False)
        rows["default"], _ = repair_mot_rows(ours, sequence.frame_rate, framed)
    results = evaluate.evaluate_many(sequence.root, rows)

    from capstone.config import get_settings

    out_dir = (output or get_settings().home / "eval") / sequence.name
    written = [mot_files.write_mot(r, out_dir / f"{source}-{name}.txt") for name, r in rows.items()]
    metrics_path = out_dir / f"{source}-metrics.json"
    metrics_path.write_text(json.dumps(results, indent=2) + "\n")

    print_table(f"{sequence.name}: {source} detections", results)
    typer.echo(f"{len(numbers)} frames; detections ready in {detect_s:.1f} s")
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"wrote {metrics_path}")
