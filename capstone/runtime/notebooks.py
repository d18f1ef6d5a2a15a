"""Notebooks: the project kernel, papermill runs, the jupytext pairing check, stored copies.

The notebooks in `notebooks/` are stored without outputs and paired with jupytext
percent-format scripts (`notebooks/NAME.py`) so that reviews see code diffs. Every notebook
has a cell tagged `parameters`, so papermill can run it with other values.

>>> from capstone.runtime import notebooks
>>> notebooks.list_notebooks()[:2], "analyze_video" in notebooks.list_notebooks()
(['01_explore_video', '02_tracking_eval'], True)
>>> out = notebooks.run_notebook("analyze_video", {"video": "a.mp4"})  # doctest: +SKIP
>>> notebooks.read_result(out)["analysis_id"]  # doctest: +SKIP
1
>>> notebooks.check_pairs()  # pairing problems; takes seconds  # doctest: +SKIP
[]
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from capstone.errors import CapstoneError

KERNEL_NAME = "capstone"
KERNEL_DISPLAY_NAME = "Python (capstone)"
PARAMETERS_TAG = "parameters"
RESULT_TAG = "result"
RESULT_MIME = "application/json"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Environment every kernel of the project gets: nothing may reach a model hub at run time.
KERNEL_ENV = {
    "YOLO_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # inline figures even when the caller's environment says otherwise (Streamlit, for one,
    # sets MPLBACKEND=Agg in its process, and kernels inherit the environment)
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}
_COMPARED_METADATA = ("tags",)


class NotebookError(CapstoneError):
    """A notebook could not be found, parameterized, executed or stored."""

    exit_code = 7
    http_status = 500
    retryable = True  # an execution may fail for passing reasons (a kernel, the database)
    code = "notebook_failed"


# ---------------------------------------------------------------------------- locating


def notebooks_dir() -> Path:
    """The notebooks folder: `CAPSTONE_NOTEBOOKS_DIR`, else `notebooks/` of this checkout."""
    configured = os.environ.get("CAPSTONE_NOTEBOOKS_DIR")
    return Path(configured).expanduser().resolve() if configured else REPO_ROOT / "notebooks"


def list_notebooks(directory: Path | None = None) -> list[str]:
    """Names (file stems) of the notebooks, sorted."""
    folder = directory or notebooks_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def notebook_path(name: str | Path, directory: Path | None = None) -> Path:
    """The `.ipynb` for a notebook name (`analyze_video`), file name or path.

    Unknown names raise `NotebookError` listing the notebooks that exist.
    """
    candidate = Path(name).expanduser()
    if candidate.suffix == ".ipynb" and candidate.is_file():
        return candidate.resolve()
    folder = directory or notebooks_dir()
    stem = candidate.name.removesuffix(".ipynb").removesuffix(".py")
    path = folder / f"{stem}.ipynb"
    if path.is_file():
        return path
    known = ", ".join(list_notebooks(folder)) or "none"
    raise NotebookError(f"no notebook named {str(name)!r} in {folder} (known: {known})")


# ---------------------------------------------------------------------------- kernel


def kernel_dir(prefix: str | Path | None = None) -> Path:
    """Where the project kernel's spec lives under `prefix` (default: this environment)."""
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME


def ensure_kernel(prefix: str | Path | None = None) -> Path:
    """Register the `capstone` kernel (this Python) under `prefix`; idempotent.

    The same as `python -m ipykernel install --prefix .venv --name capstone`, with the
    offline environment variables in the spec. Returns the kernel spec folder.
    """
    spec_dir = kernel_dir(prefix)
    spec_file = spec_dir / "kernel.json"
    if spec_file.is_file():
        try:
            spec = json.loads(spec_file.read_text())
        except (OSError, json.JSONDecodeError):
            spec = {}
        if spec.get("argv", [None])[0] == sys.executable and spec.get("env") == KERNEL_ENV:
            return spec_dir
    from ipykernel.kernelspec import install

    try:
        installed = install(
            kernel_name=KERNEL_NAME,
            display_name=KERNEL_DISPLAY_NAME,
            prefix=str(prefix or sys.prefix),
            env=dict(KERNEL_ENV),
        )
    except OSError as exc:
        raise NotebookError(f"cannot register the {KERNEL_NAME!r} kernel: {exc}") from exc
    return Path(installed)


def kernel_environment() -> dict[str, str]:
    """The environment for kernels and JupyterLab: offline flags, and an absolute
    `CAPSTONE_HOME` so a kernel started in `notebooks/` uses the same embedded database."""
    from capstone.config import get_settings

    env = dict(os.environ)
    for key, value in KERNEL_ENV.items():
        env.setdefault(key, value)
    env["MPLBACKEND"] = KERNEL_ENV["MPLBACKEND"]
    settings = get_settings()
    env["CAPSTONE_HOME"] = str(settings.home.expanduser().resolve())
    if settings.capstone_model_cache is not None:  # absolute too: kernels start elsewhere
        env["CAPSTONE_MODEL_CACHE"] = str(settings.model_cache)
    return env


# ---------------------------------------------------------------------------- running


def parameters_of(name: str | Path) -> dict[str, Any]:
    """The notebook's parameters and their defaults (from its `parameters` cell)."""
    import papermill

    path = notebook_path(name)
    found = papermill.inspect_notebook(str(path))
    if not found:
        raise NotebookError(f"{path.name}: no cell tagged {PARAMETERS_TAG!r}")
    return {key: info["default"] for key, info in found.items()}


def parse_value(text: str) -> Any:
    """A command-line parameter value: JSON (`20`, `0.5`, `true`, `null`, `["a"]`,
    `{"k": 1}`), the Python spellings `True`/`False`/`None`, else the string itself."""
    python = {"True": True, "False": False, "None": None}
    if text in python:
        return python[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_notebook(
    name: str | Path,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | Path | None = None,
    *,
    output_name: str | None = None,
    timeout: float | None = None,
    log_output: bool = False,
) -> Path:
    """Execute a notebook with papermill on the `capstone` kernel; returns the executed copy.

    `parameters` must be names of the notebook's `parameters` cell (a typo raises
    `NotebookError` instead of being ignored). The copy goes to `output_dir` (default
    `CAPSTONE_HOME/notebooks`) as `NAME-YYYYmmdd-HHMMSS.ipynb`, or `output_name`. A cell
    error raises `NotebookError` naming the cell, the error and the (kept) executed copy.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from capstone.config import get_settings

    path = notebook_path(name)
    params = dict(parameters or {})
    known = parameters_of(path)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise NotebookError(
            f"{path.stem}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    folder = Path(output_dir) if output_dir else get_settings().home / "notebooks"
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = folder / (output_name or f"{path.stem}-{stamp}.ipynb")
    ensure_kernel()
    env = kernel_environment()
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=params,
            kernel_name=KERNEL_NAME,
            cwd=str(path.parent),
            progress_bar=False,
            log_output=log_output,
            execution_timeout=timeout,
        )
    except PapermillExecutionError as exc:
        raise NotebookError(
            f"{path.stem}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue} "
            f"(executed copy: {output})"
        ) from None
    except Exception as exc:  # kernel died, timeout, bad notebook file
        raise NotebookError(
            f"{path.stem}: could not execute: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return output


def read_result(path: str | Path) -> dict[str, Any] | None:
    """The JSON a notebook published in its cell tagged `result` (None if there is none).

    A notebook publishes it with
    `IPython.display.display({"application/json": summary}, raw=True)`.
    """
    nb = _load_json(Path(path))
    for cell in nb.get("cells", []):
        if RESULT_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULT_MIME in data:
                value = data[RESULT_MIME]
                return json.loads(value) if isinstance(value, str) else value
    return None


def store_executed_notebook(analysis_id: int, path: str | Path) -> None:
    """Keep an executed notebook with its analysis row (`apps_db_videoanalysis.notebook`)."""
    from capstone.store.analyses import store_notebook

    if not store_notebook(analysis_id, _load_json(Path(path))):
        raise NotebookError(f"no analysis with id {analysis_id}")


def load_stored_notebook(analysis_id: int) -> dict[str, Any] | None:
    """The executed notebook stored with an analysis (None when it has none)."""
    from capstone.store.queries import analysis_notebook

    found, notebook = analysis_notebook(analysis_id)
    if not found:
        raise NotebookError(f"no analysis with id {analysis_id}")
    return notebook


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such notebook file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(f"{path}: not a notebook ({exc})") from None
    if not isinstance(data, dict) or "cells" not in data:
        raise NotebookError(f"{path}: not a notebook (no cells)")
    return data


# ---------------------------------------------------------------------------- pairing


def _cells(nb: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (
            cell.cell_type,
            cell.source.strip(),
            tuple(sorted(cell.metadata.get("tags", []))),
        )
        for cell in nb.cells
    ]


def check_pair(ipynb: Path) -> list[str]:
    """Problems of one notebook: missing or out-of-sync paired script, stored outputs,
    no `parameters` cell. Empty when all is well."""
    import jupytext

    problems: list[str] = []
    script = ipynb.with_suffix(".py")
    name = ipynb.name
    try:
        notebook = jupytext.read(ipynb)
    except Exception as exc:
        return [f"{name}: unreadable ({exc})"]
    if not script.is_file():
        problems.append(f"{name}: no paired script {script.name} (jupytext --set-formats)")
    else:
        try:
            paired = jupytext.read(script, fmt="py:percent")
        except Exception as exc:
            return [f"{script.name}: unreadable ({exc})"]
        left, right = _cells(notebook), _cells(paired)
        if left != right:
            where = next(
                (i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b),
                min(len(left), len(right)),
            )
            problems.append(
                f"{name} and {script.name} are out of sync (first difference at cell "
                f"{where + 1}; run `jupytext --sync notebooks/{name}`)"
            )
    code = [c for c in notebook.cells if c.cell_type == "code"]
    if any(c.get("outputs") or c.get("execution_count") for c in code):
        problems.append(f"{name}: stored with outputs (clear them before committing)")
    if not any(PARAMETERS_TAG in c.metadata.get("tags", []) for c in code):
        problems.append(f"{name}: no code cell tagged {PARAMETERS_TAG!r}")
    return problems


def check_pairs(directory: Path | None = None, names: Sequence[str] | None = None) -> list[str]:
    """`check_pair` over every notebook (or `names`); also flags scripts without notebook."""
    folder = directory or notebooks_dir()
    selected = list(names) if names is not None else list_notebooks(folder)
    problems: list[str] = []
    for name in selected:
        problems.extend(check_pair(notebook_path(name, folder)))
    if names is None:
        for script in sorted(folder.glob("*.py")):
            if not script.with_suffix(".ipynb").is_file():
                problems.append(f"{script.name}: a script without its notebook")
    return problems
