"""`capstone videos` and `capstone events`: list what is stored."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from capstone.errors import InputError


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in columns])
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.0f}" if isinstance(v, float) else str(v) for v in value) + "]"
    return str(value)


def videos(
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    limit: Annotated[int, typer.Option(help="rows per page")] = 50,
    offset: Annotated[int, typer.Option(help="rows to skip")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List stored videos with their status and latest analysis."""
    from capstone.store import queries

    page = queries.list_videos(status=status, limit=limit, offset=offset)
    if as_json:
        typer.echo(json.dumps(page, default=str, indent=2))
        return
    if not page["items"]:
        typer.echo("no videos yet: run `capstone analyze VIDEO` or upload one")
        return
    columns = ["video_id", "title", "status", "duration", "fps", "width", "height", "created_at"]
    Console().print(_table(f"videos ({page['total']} in all)", page["items"], columns))


def events(
    video_id: Annotated[str, typer.Argument(help="video id")],
    event_type: Annotated[str | None, typer.Option("--type", help="detection, enter, ...")] = None,
    class_name: Annotated[str | None, typer.Option("--class", help="class name")] = None,
    track: Annotated[int | None, typer.Option(help="track id")] = None,
    t_from: Annotated[float | None, typer.Option("--from", help="from second")] = None,
    t_to: Annotated[float | None, typer.Option("--to", help="to second")] = None,
    limit: Annotated[int, typer.Option(help="rows per page")] = 50,
    offset: Annotated[int, typer.Option(help="rows to skip")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the events of a video's latest completed analysis, filtered and paged."""
    from capstone.store import queries

    if queries.get_video(video_id) is None:
        raise InputError(f"unknown video {video_id!r} (see `capstone videos`)")
    page = queries.list_events(
        video_id,
        event_type=event_type,
        class_name=class_name,
        track_id=track,
        t_from=t_from,
        t_to=t_to,
        limit=limit,
        offset=offset,
    )
    if as_json:
        typer.echo(json.dumps(page, default=str, indent=2))
        return
    columns = [
        "frame_number",
        "timestamp",
        "event_type",
        "class_name",
        "track_id",
        "confidence",
        "bbox",
        "description",
    ]
    title = f"{video_id}: {page['total']} events (showing {len(page['items'])} from {offset})"
    Console().print(_table(title, page["items"], columns))
