"""`capstone ask` (questions in English) and `capstone find` (the query language).

capstone ask "how many people walked left in the first 30 seconds?" --video pets09
capstone ask "when did the white van leave?" --json
capstone find "car color:red dir:left speed>40 t:0:10..0:30"
capstone find "person all:true" --json
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from capstone.cli.browse import _time
from capstone.cli.tables import Column, table

ITEM_COLUMNS = [
    Column("video_id", "video"),
    Column("track_id", "track", justify="right"),
    Column("class_name", "class"),
    Column("t_start", "from", format=_time, justify="right"),
    Column("t_end", "to", format=_time, justify="right"),
    Column("color", min_width=70),
    Column("direction", "dir", min_width=80),
    Column("speed", min_width=100, justify="right"),
    Column("what", flexible=True),
]


def _row(item: dict[str, Any]) -> dict[str, Any]:
    attrs = item.get("attributes") or {}
    speed = attrs.get("speed_px_s")
    what = attrs.get("fine_type") or attrs.get("description") or ""
    if attrs.get("doubts"):
        what = f"{what} (doubts: {', '.join(attrs['doubts'])})".strip()
    if len(attrs.get("track_ids") or []) > 1:  # one object the identity stage linked
        what = f"{what} tracks {'+'.join(map(str, attrs['track_ids']))}".strip()
    return {
        **item,
        "color": attrs.get("color") or "",
        "direction": attrs.get("direction") or "",
        "speed": f"{speed:.0f} px/s" if isinstance(speed, int | float) else "",
        "what": what,
    }


def ask(
    question: Annotated[str, typer.Argument(help="a question in English, or a query")],
    video: Annotated[str | None, typer.Option("--video", help="only this video")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Answer a question from the stored results ("how many people walked left?")."""
    from capstone.search.ask import ask as answer_question

    answer = answer_question(question, video_id=video)
    if as_json:
        typer.echo(json.dumps(answer.model_dump(mode="json"), indent=2))
        return
    console = Console()
    console.print(answer.text, markup=False, highlight=False)
    if answer.note:
        console.print(answer.note, style="yellow", markup=False, highlight=False)
    for heatmap in answer.heatmaps:
        size = f", {heatmap.width}x{heatmap.height} px" if heatmap.width else ""
        console.print(f"where, {heatmap.video_id} ({heatmap.tracks} tracks{size}):", markup=False)
        console.print("\n".join(heatmap.shaded()), markup=False, highlight=False)
    if answer.items:
        rows = [_row(i.model_dump(mode="json")) for i in answer.items]
        title = "moments (guessed: see the note)" if answer.guessing else "moments"
        console.print(table(title, rows, ITEM_COLUMNS, console.width))


def find(
    query: Annotated[
        str,
        typer.Argument(
            help="query, e.g. 'car color:red dir:left t:0:10..'; a minus excludes "
            "('vehicles -bus -color:white'; first in the query: after --)"
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Find tracks with the query language (see `capstone.search.ql`; README: "Query language")."""
    from capstone.search import ql, tracks

    result = tracks.run(ql.parse(query))
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    console = Console()
    busiest = ""
    if result.busiest_t is not None:
        busiest = (
            f"; the busiest moment: {result.busiest} at {_time(result.busiest_t)} "
            f"({result.busiest_video})"
        )
    console.print(
        f"`{result.query}`: {result.matched} track(s), {result.count} distinct, "
        f"at least {result.at_once} in view at once{busiest}",
        markup=False,
        highlight=False,
    )
    if result.hits:
        rows = [_row(h.model_dump(mode="json")) for h in result.hits]
        console.print(table(f"{len(rows)} shown", rows, ITEM_COLUMNS, console.width))
