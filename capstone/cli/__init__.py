"""The `capstone` command line. Each command group lives in its own module here.

Errors that users can act on (`CapstoneError`) end the process with one readable line
on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from capstone.cli import analyze as analyze_commands
from capstone.cli import browse as browse_commands
from capstone.cli import dashboard as dashboard_commands
from capstone.cli import db as db_commands
from capstone.cli import evaluate as evaluate_commands
from capstone.cli import lab as lab_commands
from capstone.cli import search as search_commands
from capstone.cli import serve as serve_commands
from capstone.cli import stack as stack_commands
from capstone.errors import CapstoneError

app = typer.Typer(
    name="capstone",
    help="capstone: analyse videos, store results in PostgreSQL + pgvector, search them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_commands.app, name="db")
app.command("serve")(serve_commands.serve)
app.command("dashboard")(dashboard_commands.dashboard)
app.add_typer(evaluate_commands.app, name="eval")
app.command("analyze")(analyze_commands.analyze)
app.command("demo")(analyze_commands.demo)
app.command("search")(search_commands.search)
app.command("lab")(lab_commands.lab)
app.command("run-notebook", context_settings=lab_commands.RUN_NOTEBOOK_SETTINGS)(
    lab_commands.run_notebook
)
app.command("videos")(browse_commands.videos)
app.command("events")(browse_commands.events)
app.add_typer(stack_commands.app, name="stack")
app.command("upload")(stack_commands.upload)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        app(args=argv, standalone_mode=False)
    except CapstoneError as exc:
        print(f"capstone: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("capstone: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # a bug: still one line for the user, details on request
        if os.environ.get("CAPSTONE_DEBUG"):
            raise
        print(
            f"capstone: internal error: {type(exc).__name__}: {exc} "
            "(set CAPSTONE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        sys.exit(70)
