"""`capstone search`: similarity, full-text and hybrid search from the command line.

capstone search "red car"                          # hybrid over keyframes
capstone search "person enters" --target events --mode text --video test-001
capstone search --image query.jpg --class person -k 20
capstone search --frame test-001:120               # frames like this keyframe
capstone search --track test-001:7 --target tracks # tracks like this one (or a row id)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from capstone.cli.tables import Column, table
from capstone.errors import InputError


def _frame_ref(value: str) -> dict[str, Any]:
    video, sep, frame = value.rpartition(":")
    if not sep or not video or not frame.isdigit():
        raise InputError(f"--frame {value!r}: expected VIDEO:FRAME, e.g. test-001:120")
    return {"video_id": video, "frame_number": int(frame)}


def _track_ref(value: str) -> dict[str, Any]:
    if value.isdigit():
        return {"id": int(value)}
    video, sep, track = value.rpartition(":")
    if not sep or not video or not track.isdigit():
        raise InputError(f"--track {value!r}: expected a track row id or VIDEO:TRACK_ID")
    return {"video_id": video, "track_id": int(track)}


def search(
    query: Annotated[str | None, typer.Argument(help="text query (websearch syntax)")] = None,
    image: Annotated[Path | None, typer.Option(help="query image file (JPEG/PNG)")] = None,
    frame: Annotated[str | None, typer.Option(help="example keyframe VIDEO:FRAME")] = None,
    track: Annotated[str | None, typer.Option(help="example track: row id or VIDEO:TRACK")] = None,
    vector_file: Annotated[
        Path | None, typer.Option("--vector-file", help="JSON list of floats (a raw vector)")
    ] = None,
    target: Annotated[str, typer.Option(help="frames, tracks or events")] = "frames",
    mode: Annotated[str | None, typer.Option(help="vector, text or hybrid")] = None,
    space: Annotated[str, typer.Option(help="auto, image, text, clip or reid")] = "auto",
    k: Annotated[int, typer.Option("-k", "--k", help="number of results")] = 10,
    video: Annotated[list[str] | None, typer.Option("--video", help="video id (repeat)")] = None,
    class_name: Annotated[
        list[str] | None, typer.Option("--class", help="class name (repeat)")
    ] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--event-type", help="event type (repeat)")
    ] = None,
    t_from: Annotated[float | None, typer.Option("--from", help="seconds")] = None,
    t_to: Annotated[float | None, typer.Option("--to", help="seconds")] = None,
    min_track_length: Annotated[int | None, typer.Option(help="observations")] = None,
    depth_min: Annotated[float | None, typer.Option(help="minimum average depth")] = None,
    depth_max: Annotated[float | None, typer.Option(help="maximum average depth")] = None,
    analysis_id: Annotated[
        list[int] | None, typer.Option("--analysis-id", help="search these analyses (repeat)")
    ] = None,
    vector_weight: Annotated[float, typer.Option(help="RRF weight of the vector ranking")] = 1.0,
    text_weight: Annotated[float, typer.Option(help="RRF weight of the text ranking")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Search keyframes, tracks or events by text, image, example frame/track or vector."""
    from capstone.search import query as searching

    fields: dict[str, Any] = {
        "text": query,
        "target": target,
        "mode": mode,
        "space": space,
        "k": k,
        "weights": (vector_weight, text_weight),
        "filters": {
            "video_ids": video or None,
            "class_names": class_name or None,
            "event_types": event_type or None,
            "t_from": t_from,
            "t_to": t_to,
            "min_track_length": min_track_length,
            "depth_min": depth_min,
            "depth_max": depth_max,
            "analysis_ids": analysis_id or None,
        },
    }
    if image is not None:
        if not image.is_file():
            raise InputError(f"{image}: no such image file")
        fields["image"] = image.read_bytes()
    if frame is not None:
        fields["frame"] = _frame_ref(frame)
    if track is not None:
        fields["track"] = _track_ref(track)
    if vector_file is not None:
        try:
            fields["vector"] = json.loads(vector_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{vector_file}: not a readable JSON list of floats") from exc
    hits = searching.search(searching.SearchQuery.parse(**fields))
    if as_json:
        typer.echo(json.dumps(searching.hits_table(hits), indent=2))
        return
    if not hits:
        Console(stderr=True).print("no results")
        return
    rows = [
        {
            "#": i,
            "video": h.video_id,
            "frame": h.frame_number,
            "t (s)": f"{h.timestamp:.2f}" if h.timestamp is not None else "",
            "class": h.class_name or "",
            "score": f"{h.score:.4f}",
            "by": h.retriever,
            "what": h.description or (f"track {h.track_id}" if h.track_id is not None else ""),
        }
        for i, h in enumerate(hits, 1)
    ]
    columns = [
        Column("#", justify="right"),
        Column("video"),
        Column("frame", justify="right"),
        Column("t (s)", justify="right"),
        Column("class"),
        Column("score", justify="right"),
        Column("by", min_width=100),
        Column("what", flexible=True),
    ]
    console = Console()
    console.print(table(f"{len(hits)} result(s)", rows, columns, console.width))
