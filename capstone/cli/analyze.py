"""`capstone analyze` and `capstone demo`: the main job from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from capstone.errors import CapstoneError, ConfigError, InputError

if TYPE_CHECKING:
    from capstone.runtime.pipeline import AnalysisResult
    from capstone.stages.params import AnalysisParams

console = Console(stderr=True)
# the stage registry's names (`capstone.stages.params.ALL_STAGES`; a test keeps them equal),
# written out so that `--help` does not import the stages
STAGE_NAMES = ("detect", "track", "depth", "events", "display", "embed", "identity", "attributes")


def load_options(path: Path | None) -> dict:
    """Stage options (lines, zones, ...) from a YAML or JSON file."""
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise InputError(f"{path}: no such options file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML/JSON ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: options must be a mapping")
    return data


def build_params(**fields: object) -> AnalysisParams:
    from pydantic import ValidationError

    from capstone.stages.params import AnalysisParams

    clean = {k: v for k, v in fields.items() if v is not None}
    try:
        return AnalysisParams(**clean)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "parameters"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"invalid {where}: {message}") from exc


def analyze(
    source: Annotated[str, typer.Argument(help="video file path or s3://bucket/key")],
    video_id: Annotated[str | None, typer.Option("--video-id", help="id to store under")] = None,
    title: Annotated[str | None, typer.Option(help="human-readable title")] = None,
    stride: Annotated[int | None, typer.Option(help="keep every Nth frame")] = None,
    fps: Annotated[float | None, typer.Option("--fps", help="sample about N frames/s")] = None,
    model: Annotated[str | None, typer.Option(help="detector name or path")] = None,
    tracker: Annotated[str | None, typer.Option(help="botsort (default) or bytetrack")] = None,
    classes: Annotated[
        str | None, typer.Option(help="comma-separated class names to keep, e.g. person,car")
    ] = None,
    conf: Annotated[float | None, typer.Option(help="detector confidence threshold")] = None,
    stages: Annotated[
        str | None, typer.Option(help=f"comma-separated stages ({', '.join(STAGE_NAMES)})")
    ] = None,
    options: Annotated[
        Path | None, typer.Option("--options", help="YAML/JSON file of stage options")
    ] = None,
    lines: Annotated[
        Path | None, typer.Option("--lines", help="YAML/JSON file with counting lines and zones")
    ] = None,
    line: Annotated[
        list[str] | None, typer.Option("--line", help='counting line "A:x1,y1,x2,y2[:in,out]"')
    ] = None,
    zone: Annotated[
        list[str] | None, typer.Option("--zone", help='dwell zone "Z:x1,y1,x2,y2,x3,y3,...[:secs]"')
    ] = None,
    max_frames: Annotated[int | None, typer.Option(help="stop after N sampled frames")] = None,
    detect_every: Annotated[
        str | None,
        typer.Option(
            "--detect-every",
            metavar="N|auto",
            help="detect every Nth sampled frame (1-30) and carry boxes in between, or auto",
        ),
    ] = None,
    chunk_s: Annotated[
        float | None,
        typer.Option("--chunk-s", help="seconds of video per chunk (staged, resumable; 60)"),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=256, help="processes that analyze chunks in parallel")
    ] = 1,
    no_reuse: Annotated[
        bool,
        typer.Option(
            "--no-reuse",
            help="run detection and tracking again even when a stored analysis of this video"
            " differs only in event options (lines, zones, confirm_s, ...)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Analyze a video and publish every result to PostgreSQL + pgvector (one transaction).

    Rows are staged chunk by chunk while it runs; an interrupted run resumes at its first
    unfinished chunk when started again with the same parameters. When a stored analysis of
    the video differs only in event options (lines, zones, confirm_s, counts), its
    detections and tracks are reused and only the events are recomputed (--no-reuse: not)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from capstone.core.geometry import load_geometry, parse_line_spec, parse_zone_spec
    from capstone.runtime.pipeline import analyze as run_analysis

    stage_options = load_options(options)
    geometry = load_geometry(lines) if lines else {"lines": [], "zones": []}
    geometry["lines"] += [parse_line_spec(text) for text in line or []]
    geometry["zones"] += [parse_zone_spec(text) for text in zone or []]
    for key, items in geometry.items():
        if items:
            stage_options[key] = stage_options.get(key, []) + items
    params = build_params(
        model=model,
        stride=stride,
        target_fps=fps,
        tracker=tracker,
        classes=tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else None,
        conf=conf,
        stages=tuple(s.strip() for s in stages.split(",") if s.strip()) if stages else None,
        max_frames=max_frames,
        detect_every=detect_every,
        chunk_s=chunk_s,
        options=stage_options or None,
    )
    with Progress(
        TextColumn("[bold]analyzing[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:>6.1f} fps"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task(Path(source).name, total=None, fps=0.0)

        def on_progress(done: int, total: int) -> None:
            elapsed = bar.tasks[task].elapsed or 1e-9
            bar.update(task, completed=done, total=total, fps=done / elapsed)

        result = run_analysis(
            source,
            video_id=video_id,
            title=title,
            params=params,
            progress=on_progress,
            workers=workers,
            reuse=not no_reuse,
        )
    if as_json:
        typer.echo(json.dumps(result.__dict__, default=str, indent=2))
    else:
        print_summary(result)
    if result.status != "completed":
        raise CapstoneError(f"analysis of {source} failed: {result.error}")


def print_summary(result: AnalysisResult) -> None:
    out = Console()
    table = Table(title=f"{result.video_id}: analysis {result.analysis_id} {result.status}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("frames", f"{result.frames_processed} of {result.frames_expected}")
    table.add_row("chunks", f"{result.chunks_run} of {result.chunks_total}")
    table.add_row("throughput", f"{result.fps:.1f} frames/s")
    table.add_row("wall time", f"{result.wall_time:.1f} s")
    for cls, n in sorted(result.tracks_per_class.items(), key=lambda kv: -kv[1]):
        table.add_row(f"tracks: {cls}", str(n))
    for kind, n in sorted(result.events_per_type.items()):
        table.add_row(f"events: {kind}", str(n))
    for name, n in result.counts.items():
        if n:
            table.add_row(f"rows: {name}", str(n))
    out.print(table)
    if result.reused_from is not None:
        out.print(
            f"reused the detections and tracks of analysis {result.reused_from} (no frame "
            f"decoded); recomputed: {', '.join(result.recomputed) or 'nothing'}"
        )
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/yellow] {warning}")


SPEC_QUERIES = [
    "SELECT video_id, title, duration, status FROM apps_db_video WHERE video_id = 'test-001';",
    "SELECT frame_number, class_name, confidence, bbox FROM apps_db_event\n"
    "  WHERE video_id = 'test-001' ORDER BY frame_number LIMIT 10;",
    "SELECT video_id, frame_number, embedding <-> '{vector}'::vector AS distance\n"
    "  FROM frame_embeddings WHERE video_id = 'test-001' ORDER BY distance LIMIT 5;",
    "SELECT status, progress, created_at, updated_at FROM apps_db_videoanalysis "
    "WHERE video_id = 'test-001';",
    "SELECT COUNT(*) FROM apps_db_event WHERE video_id='test-001';",
]


def default_demo_clip() -> Path:
    for base in (Path.cwd().parent / "shared", Path.cwd() / "shared"):
        clip = base / "data" / "videos" / "bikes.mp4"
        if clip.is_file():
            return clip
    raise InputError(
        "no demo clip found: pass one, e.g. capstone demo ../shared/data/videos/bikes.mp4"
    )


def demo(
    clip: Annotated[Path | None, typer.Argument(help="video to analyze as test-001")] = None,
) -> None:
    """Analyze a real clip as `test-001` and print the SPEC section 6 verification queries."""
    from capstone.store import queries

    clip = clip or default_demo_clip()
    analyze(str(clip), video_id="test-001", title=clip.name)
    out = Console()
    vector = queries.first_frame_embedding("test-001")
    for sql in SPEC_QUERIES:
        if "{vector}" in sql:
            if vector is None:
                out.print("[dim]-- frame_embeddings: no embeddings (embed stage off)[/dim]")
                continue
            shown = sql.replace("{vector}", "[0.1, 0.2, ...]")
            sql = sql.replace("{vector}", vector)
        else:
            shown = sql
        columns, rows = queries.run_sql(sql)
        out.print(f"[bold cyan]{shown}[/bold cyan]")
        table = Table()
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*[_fmt(v) for v in row])
        out.print(table)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in value) + "]"
    return str(value)
