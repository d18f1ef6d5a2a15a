"""`capstone dashboard`: the Streamlit dashboard (dashboards/app.py), headless, no usage stats."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from capstone.errors import ConfigError

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"


def streamlit_argv(host: str, port: int, app: Path = APP) -> list[str]:
    """The command line that serves the dashboard.

    >>> streamlit_argv("127.0.0.1", 8501)[1:4]
    ['-m', 'streamlit', 'run']
    """
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def dashboard(
    host: str = typer.Option("127.0.0.1", help="interface to bind (0.0.0.0 in containers)"),
    port: int = typer.Option(8501, min=1, max=65535, help="TCP port"),
) -> None:
    """Serve the dashboard: videos, events, tracks, similarity and hybrid search."""
    if not APP.is_file():
        raise ConfigError(f"dashboard app not found at {APP} (run from a source checkout)")
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    typer.echo(f"dashboard on http://{host}:{port}", err=True)
    try:
        code = subprocess.call(streamlit_argv(host, port), env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
