"""`capstone lab` (JupyterLab with the project kernel) and `capstone run-notebook` (papermill).

capstone lab                                   # http://127.0.0.1:8888/lab
capstone run-notebook --list
capstone run-notebook analyze_video -p video ../shared/data/videos/bikes.mp4 -p max_frames 30
capstone run-notebook --check                  # notebooks and their scripts in sync?
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from capstone.errors import CapstoneError


def lab(
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8888,
    ip: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    token: Annotated[
        str | None, typer.Option(help="access token [default: Jupyter generates one]")
    ] = None,
    browser: Annotated[bool, typer.Option(help="open a browser")] = False,
) -> None:
    """Start JupyterLab in notebooks/ with the `capstone` kernel registered."""
    from capstone.runtime import notebooks

    spec = notebooks.ensure_kernel()
    folder = notebooks.notebooks_dir()
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ip={ip}",
        f"--port={port}",
        f"--ServerApp.root_dir={folder}",
        "--MappingKernelManager.default_kernel_name=capstone",
    ]
    if not browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI run as root
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    typer.echo(f"kernel {notebooks.KERNEL_NAME!r} registered in {spec}", err=True)
    try:
        code = subprocess.call(command, env=notebooks.kernel_environment())
    except KeyboardInterrupt:
        code = 0
    if code:
        raise typer.Exit(code)


def _no_such_option(flag: str, ctx: typer.Context | None) -> Exception:
    """A usage error (exit 2) for an option run-notebook does not have, naming the closest
    (unknown options reach `ctx.args` because `-p KEY VALUE` pairs are parsed here)."""
    from difflib import get_close_matches

    try:
        from typer._click.exceptions import NoSuchOption
    except ImportError:  # pragma: no cover (older typer parses with click itself)
        from click.exceptions import NoSuchOption
    known = ["-p", "--parameter"]
    for param in ctx.command.params if ctx else []:
        known += [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    return NoSuchOption(flag, possibilities=get_close_matches(flag, known), ctx=ctx)


def _parameters(args: list[str], ctx: typer.Context | None = None) -> dict[str, Any]:
    """`-p key value` pairs (also `--parameter key value` and `-p key=value`)."""
    from capstone.runtime.notebooks import NotebookError, parse_value

    params: dict[str, Any] = {}
    i = 0
    while i < len(args):
        flag = args[i]
        if flag not in ("-p", "--parameter") and flag.startswith("-"):
            raise _no_such_option(flag, ctx)
        if flag not in ("-p", "--parameter"):
            raise NotebookError(f"unexpected argument {flag!r} (parameters are -p KEY VALUE)")
        if i + 1 >= len(args):
            raise NotebookError(f"{flag} needs KEY VALUE")
        key = args[i + 1]
        if "=" in key and (i + 2 >= len(args) or args[i + 2] in ("-p", "--parameter")):
            key, value = key.split("=", 1)
            i += 2
        elif i + 2 < len(args):
            value = args[i + 2]
            i += 3
        else:
            raise NotebookError(f"{flag} {key}: missing value")
        if not key.isidentifier():
            raise NotebookError(f"bad parameter name {key!r}")
        params[key] = _absolute_if_path(parse_value(value))
    return params


def _absolute_if_path(value: Any) -> Any:
    """Relative paths that exist here are made absolute: the kernel runs in notebooks/."""
    if isinstance(value, str) and value and not value.startswith(("s3://", "/")):
        candidate = Path(value).expanduser()
        if candidate.exists() and ("/" in value or candidate.suffix):
            return str(candidate.resolve())
    return value


def run_notebook(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="notebook name, e.g. analyze_video")] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(help="folder for the executed copy [default: CAPSTONE_HOME/notebooks]"),
    ] = None,
    store: Annotated[
        bool,
        typer.Option(help="keep the executed copy with the analysis row it reports (if any)"),
    ] = True,
    list_: Annotated[bool, typer.Option("--list", help="list notebooks and parameters")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="check notebooks against their paired scripts")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="seconds one cell may run [default: no limit]")
    ] = None,
) -> None:
    """Run a notebook with papermill: -p KEY VALUE sets a parameter (repeatable).

    Values are read as JSON where they parse (20, 0.5, true, ["person"]), else as text.
    Prints where the executed copy went.
    """
    from capstone.runtime import notebooks

    if name is not None and name.startswith("-"):
        raise _no_such_option(name, ctx)
    if check:
        problems = notebooks.check_pairs()
        for problem in problems:
            typer.echo(problem, err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"{len(notebooks.list_notebooks())} notebooks in sync with their scripts")
        return
    if list_:
        for known in notebooks.list_notebooks():
            params = notebooks.parameters_of(known)
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            typer.echo(f"{known}: {shown}")
        return
    if name is None:
        raise notebooks.NotebookError("give a notebook name (see --list)")
    params = _parameters(list(ctx.args), ctx)
    output = notebooks.run_notebook(name, params, output_dir, timeout=timeout)
    typer.echo(f"executed notebook: {output}")
    result = notebooks.read_result(output)
    if result is not None:
        typer.echo(f"result: {result}")
        analysis_id = result.get("analysis_id")
        if store and isinstance(analysis_id, int):
            try:
                notebooks.store_executed_notebook(analysis_id, output)
            except CapstoneError as exc:
                raise notebooks.NotebookError(f"could not store the notebook: {exc}") from None
            typer.echo(f"stored with analysis {analysis_id}")


RUN_NOTEBOOK_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}
