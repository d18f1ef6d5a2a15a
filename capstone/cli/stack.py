"""`capstone stack up|down|status` and `capstone upload FILE`: the local pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from capstone.errors import InputError

app = typer.Typer(help="The local stack: S3/SQS emulator, database, API, job runner.")


@app.command("up")
def stack_up(
    api_port: int = typer.Option(8087, min=1, max=65535, help="API port"),
    s3_port: int = typer.Option(4566, min=1, max=65535, help="S3/SQS emulator port"),
    dashboard_port: int = typer.Option(8501, min=1, max=65535, help="dashboard port"),
    max_jobs: int = typer.Option(2, min=1, max=16, help="analysis jobs running at once"),
    visibility: int = typer.Option(120, min=2, max=43200, help="queue visibility timeout (s)"),
    max_receive: int = typer.Option(3, min=1, max=1000, help="receives before the DLQ"),
    params: str = typer.Option("", help='analysis parameters as JSON, e.g. {"stride": 2}'),
) -> None:
    """Start everything on 127.0.0.1 and print the URLs."""
    from capstone.runtime import local_stack as stack

    parsed = None
    if params:
        try:
            parsed = json.loads(params)
        except json.JSONDecodeError as exc:
            raise InputError(f"--params is not JSON ({exc.msg})") from None
        from capstone.stages.params import AnalysisParams

        try:
            AnalysisParams(**parsed)
        except (TypeError, ValueError) as exc:
            first = str(exc).splitlines()
            raise InputError(f"--params: {first[-1] if first else exc}") from None
    state = stack.up(
        api_port=api_port,
        s3_port=s3_port,
        dashboard_port=dashboard_port,
        max_jobs=max_jobs,
        visibility_s=visibility,
        max_receive=max_receive,
        params=parsed,
    )
    for name, url in state["urls"].items():
        typer.echo(f"{name:10} {url}")
    typer.echo(f"{'queue':10} {state['queue_url']} (DLQ {state['dlq_url']})")
    typer.echo(f"{'job logs':10} {state['jobs_dir']}")
    typer.echo("upload a video with: capstone upload FILE")


@app.command("down")
def stack_down() -> None:
    """Stop what `stack up` started (and nothing else)."""
    from capstone.runtime import local_stack as stack

    stopped = stack.down()
    typer.echo("stopped: " + ", ".join(stopped) if stopped else "nothing was running")


@app.command("status")
def stack_status() -> None:
    """Which parts run, their URLs and the queue depths."""
    from capstone.runtime import local_stack as stack

    state = stack.status()
    if state is None:
        typer.echo("the stack is not running (capstone stack up)")
        raise typer.Exit(1)
    for proc in state["processes"]:
        mark = "up  " if proc["alive"] else "DOWN"
        typer.echo(f"{mark} {proc['name']:32} pid {proc['pid']:<8} log {proc['log']}")
    for name, url in state["urls"].items():
        typer.echo(f"{name:10} {url}")
    typer.echo(f"queues     {json.dumps(state['queues'])}")
    if not all(p["alive"] for p in state["processes"]):
        raise typer.Exit(1)


def upload(
    file: Annotated[Path, typer.Argument(help="video file")],
    video_id: Annotated[
        str | None, typer.Option(help="id to store it under (default: file name)")
    ] = None,
) -> None:
    """Put a video into the running stack's raw bucket; the S3 event starts its analysis."""
    from capstone.runtime import local_stack as stack

    vid, key = stack.upload(file, video_id)
    state = stack.read_state() or {}
    typer.echo(f"uploaded s3://{state.get('bucket')}/{key} as {vid}")
    typer.echo(f"follow it: {state.get('urls', {}).get('api')}/videos/{vid}/analyses")
