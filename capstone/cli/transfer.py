"""`capstone export` and `capstone import`: results to files (MOT, COCO, CSV, Parquet) and
MOTChallenge results in as an analysis."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from capstone.errors import InputError

FORMAT_NAMES = ("mot", "coco", "csv", "parquet")  # capstone.store.transfer.FORMATS


def export(
    video_id: Annotated[str, typer.Argument(help="the video whose results to export")],
    fmt: Annotated[str, typer.Option("--format", help=f"one of {', '.join(FORMAT_NAMES)}")] = "mot",
    out: Annotated[Path, typer.Option("--out", help="folder to write into")] = Path("."),
    analysis: Annotated[
        int | None,
        typer.Option("--analysis", min=1, help="this analysis (default: the latest completed)"),
    ] = None,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", help="csv/parquet: events, tracks, depth (default: all)"),
    ] = None,
) -> None:
    """Export an analysis: MOTChallenge tracks, COCO-style JSON, or CSV/Parquet tables."""
    from capstone.store import transfer
    from capstone.store.migrate import ensure_schema

    if fmt not in FORMAT_NAMES:
        raise typer.BadParameter(f"one of {', '.join(FORMAT_NAMES)}", param_hint="--format")
    tables = table or list(transfer.TABLES)
    unknown = [t for t in tables if t not in transfer.TABLES]
    if unknown:
        raise typer.BadParameter(f"one of {', '.join(transfer.TABLES)}", param_hint="--table")
    ensure_schema()
    for path in transfer.export(video_id, fmt, out, analysis_id=analysis, tables=tables):
        typer.echo(f"wrote {path}")


def import_results(
    path: Annotated[Path, typer.Argument(help="MOTChallenge file: frame,id,x,y,w,h,conf,...")],
    video_id: Annotated[str, typer.Option("--video-id", help="the video the rows belong to")],
    video: Annotated[
        Path | None, typer.Option("--video", help="the video file (its size, fps and hash)")
    ] = None,
    fps: Annotated[
        float | None,
        typer.Option(min=0.01, help="frames per second (default: the video's, else 30)"),
    ] = None,
    class_name: Annotated[str, typer.Option(help="class of every box")] = "person",
    name: Annotated[
        str | None, typer.Option(help="what produced the rows (default: the file name)")
    ] = None,
) -> None:
    """Import a MOTChallenge tracker output (or detections, id -1) as a completed analysis,
    to browse, search, export and score it like the pipeline's own results."""
    from capstone.core.video import probe
    from capstone.io.mot import iter_mot_file
    from capstone.stages.params import AnalysisParams
    from capstone.store import transfer
    from capstone.store.migrate import ensure_schema

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    digest = hashlib.sha256()
    tracked = False
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    for row in iter_mot_file(path):  # checks every line before anything is stored
        tracked = tracked or row.track_id >= 0
    info = probe(video) if video is not None else None
    ensure_schema()
    rate = fps or (info.fps if info else None) or transfer.stored_fps(video_id) or 30.0
    source = name or path.name
    params = AnalysisParams(
        model=f"import:{source}:{digest.hexdigest()[:16]}",
        stages=("detect", "track") if tracked else ("detect",),
    )
    analysis_id, counts = transfer.import_mot(
        iter_mot_file(path),
        video_id=video_id,
        params=params,
        fps=rate,
        class_name=class_name,
        info=info,
        summary={"imported": {"format": "mot", "source": source, "fps": rate,
                              "kind": "tracks" if tracked else "detections"}},
    )  # fmt: skip
    typer.echo(
        f"imported {counts['apps_db_event']} boxes and {counts['apps_db_track']} tracks as "
        f"analysis {analysis_id} of video {video_id!r}"
    )
