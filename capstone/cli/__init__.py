"""The `capstone` command line. Each command group lives in its own module here.

Errors that users can act on (`CapstoneError`) end the process with one readable line
on stderr and a non-zero exit code, never a traceback. A wrong option, a missing argument or
a bad value is a usage error: click's usage line and one `Error:` line (with the closest
valid option), exit code 2. Third-party libraries' logs and warnings are kept out of the
output unless `--verbose` or `CAPSTONE_DEBUG=1` asks for them.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

import click
import typer
import typer.exceptions

try:  # typer >= 0.25 parses with its own copy of click
    from typer._click.exceptions import ClickException as _TyperClickException
    from typer._click.exceptions import NoSuchOption as _TyperNoSuchOption
except ImportError:  # pragma: no cover (older typer: click itself)
    _TyperClickException = click.ClickException
    _TyperNoSuchOption = click.NoSuchOption

from capstone.cli import analyze as analyze_commands
from capstone.cli import ask as ask_commands
from capstone.cli import browse as browse_commands
from capstone.cli import dashboard as dashboard_commands
from capstone.cli import db as db_commands
from capstone.cli import evaluate as evaluate_commands
from capstone.cli import lab as lab_commands
from capstone.cli import search as search_commands
from capstone.cli import serve as serve_commands
from capstone.cli import stack as stack_commands
from capstone.cli import transfer as transfer_commands
from capstone.errors import CapstoneError, DatabaseError, policy_of

app = typer.Typer(
    name="capstone",
    help="capstone: analyse videos, store results in PostgreSQL + pgvector, search them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Libraries that talk on import or on first use (settings files, config notes, progress bars).
NOISY_LOGGERS = (
    "ultralytics",
    "transformers",
    "sentence_transformers",
    "huggingface_hub",
    "torch",
    "openvino",
    "nncf",
    "matplotlib",
    "PIL",
    "urllib3",
    "botocore",
    "httpx",
)


def quiet_third_party(verbose: bool = False) -> None:
    """Keep third-party logs and warnings out of the CLI's output (unless `verbose`).

    The environment variables are read when those libraries are first imported, which
    the commands do lazily, after this has run.
    """
    if verbose or os.environ.get("CAPSTONE_DEBUG"):
        return
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"capstone(\.|$)")


def _root(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="show third-party libraries' logs and warnings"
    ),
) -> None:
    quiet_third_party(verbose)


app.callback()(_root)
app.add_typer(db_commands.app, name="db")
app.command("serve")(serve_commands.serve)
app.command("dashboard")(dashboard_commands.dashboard)
app.add_typer(evaluate_commands.app, name="eval")
app.command("analyze")(analyze_commands.analyze)
app.command("demo")(analyze_commands.demo)
app.command("search")(search_commands.search)
app.command("ask")(ask_commands.ask)
app.command("find")(ask_commands.find)
app.command("lab")(lab_commands.lab)
app.command("run-notebook", context_settings=lab_commands.RUN_NOTEBOOK_SETTINGS)(
    lab_commands.run_notebook
)
app.command("videos")(browse_commands.videos)
app.command("events")(browse_commands.events)
app.add_typer(stack_commands.app, name="stack")
app.command("upload")(stack_commands.upload)
app.command("export")(transfer_commands.export)
app.command("import")(transfer_commands.import_results)


def show_usage_error(exc: Exception) -> None:
    """click's usage line, its help hint and one `Error:` line naming the closest option."""
    if isinstance(exc, _TyperNoSuchOption) and exc.possibilities:
        # "No such option: --detect-evry. Did you mean --detect-every?" (difflib's best)
        best = next(iter(exc.possibilities))
        exc.format_message = lambda: f"{exc.message}. Did you mean {best}?"  # type: ignore[method-assign]
    if type(exc).__name__ == "NoArgsIsHelpError" and not str(exc).strip():
        return  # the help was printed already (rich prints it while it is formatted)
    exc.show()  # type: ignore[attr-defined]


def _undefined_table(exc: BaseException) -> bool:
    """A query on a database that was never migrated (SQLSTATE 42P01, undefined table)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "42P01"


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        code = app(args=argv, standalone_mode=False, prog_name="capstone")
    except CapstoneError as exc:
        print(f"capstone: error: {exc}", file=sys.stderr)
        sys.exit(policy_of(exc).exit_code)
    except (_TyperClickException, click.ClickException) as exc:  # usage errors: exit code 2
        show_usage_error(exc)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.exceptions.Abort, click.exceptions.Abort):
        print("capstone: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # a bug (or a database without our tables)
        if _undefined_table(exc):
            print(
                "capstone: error: the database has no capstone tables yet "
                "(run `capstone db up`, or analyze a video first)",
                file=sys.stderr,
            )
            sys.exit(DatabaseError.exit_code)
        # a bug: still one line for the user, details on request
        if os.environ.get("CAPSTONE_DEBUG"):
            raise
        print(
            f"capstone: internal error: {type(exc).__name__}: {exc} "
            "(set CAPSTONE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        sys.exit(policy_of(exc).exit_code)
    # without standalone mode click returns `typer.Exit(code)`'s code instead of exiting
    if isinstance(code, int) and not isinstance(code, bool) and code:
        if code == 130:
            print("capstone: interrupted", file=sys.stderr)
        sys.exit(code)
