"""`capstone videos` and `capstone events`: list what is stored."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from capstone.cli.tables import Column, table
from capstone.errors import InputError


def _time(seconds: Any) -> str:
    """`m:ss.d`, or `h:mm:ss.d` from one hour on.

    >>> _time(83.25), _time(3723.25), _time(None)
    ('1:23.2', '1:02:03.2', '')
    """
    if seconds is None:
        return ""
    tenths = round(float(seconds) * 10)
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    text = f"{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{minutes:02d}:{text}" if hours else f"{minutes}:{text}"


def _date(value: Any) -> str:
    return str(value)[:16] if value is not None else ""


VIDEO_COLUMNS = [
    Column("video_id", "video"),
    Column("status"),
    Column("duration", "length", format=_time, justify="right"),
    Column("fps", min_width=100),
    Column("width", min_width=110),
    Column("height", min_width=110),
    Column("created_at", "created", min_width=90, format=_date),
    Column("title", flexible=True),
]
EVENT_COLUMNS = [
    Column("frame_number", "frame", justify="right"),
    Column("timestamp", "time", format=_time, justify="right"),
    Column("event_type", "type"),
    Column("class_name", "class"),
    Column("track_id", "track", justify="right"),
    Column("confidence", "conf", min_width=90, justify="right"),
    Column("bbox", min_width=130),
    Column("description", flexible=True),
]


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
    console = Console()
    title = f"videos ({page['total']} in all)"
    console.print(table(title, page["items"], VIDEO_COLUMNS, console.width))


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
    title = f"{video_id}: {page['total']} events (showing {len(page['items'])} from {offset})"
    console = Console()
    console.print(table(title, page["items"], EVENT_COLUMNS, console.width))
