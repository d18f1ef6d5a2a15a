"""Notebooks: pairing with jupytext scripts, public-API-only code, papermill runs of every
notebook on short real inputs (executed copies kept in artifacts/notebooks/), the stored
executed notebook of an analysis, and JupyterLab serving the project kernel."""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capstone.runtime import notebooks
from capstone.runtime.notebooks import NotebookError
from tests.conftest import ARTIFACTS, MOT, VIDEOS, free_port, require

NOTEBOOKS = notebooks.notebooks_dir()
EXPECTED = ["01_explore_video", "02_tracking_eval", "03_search", "analyze_video"]
OUT = ARTIFACTS / "notebooks"

# Modules a notebook may import: capstone, plus display and table libraries.
ALLOWED_IMPORTS = {
    "capstone",
    "numpy",
    "pandas",
    "matplotlib",
    "ipywidgets",
    "IPython",
    "sqlmodel",  # `select` over capstone.store.tables for reads
    "io",
    "json",
    "pathlib",
    "math",
}
# Pipeline internals that would mean a notebook re-implements a stage or the store.
FORBIDDEN = {
    r"\bYOLO\s*\(": "constructs a YOLO model (use capstone.models.detector)",
    r"BYTETracker|BOTSORT|BOTrack": "drives an Ultralytics tracker (use capstone.tracking.tracker)",
    r"\bultralytics\b": "uses ultralytics directly",
    r"\bcv2\b": "uses OpenCV directly (use capstone.core.drawing / capstone.core.video)",
    r"\bav\.open\b|\bVideoCapture\b": "decodes video itself (use capstone.core.video)",
    r"\bopenvino\b|\btorch\b|\bonnxruntime\b": "runs a model itself (use capstone)",
    r"\b(INSERT\s+INTO|COPY\s+\w+|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b": "writes SQL itself",
    r"\btrackeval\b": "scores tracking itself (use capstone.eval.mot)",
    r"\bsubprocess\b|\bos\.system\b": "shells out",
}


@pytest.fixture(scope="session")
def kernel() -> Path:
    """The `capstone` kernel registered in this environment (idempotent)."""
    return notebooks.ensure_kernel()


def _outputs(path: Path) -> list[dict]:
    nb = json.loads(path.read_text())
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _assert_executed_cleanly(path: Path) -> list[dict]:
    outputs = _outputs(path)
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot in the notebook"
    return outputs


# ---------------------------------------------------------------------------- static checks


def test_every_notebook_is_stored_clean_paired_and_in_sync() -> None:
    assert notebooks.list_notebooks() == EXPECTED
    assert notebooks.check_pairs() == []
    for name in EXPECTED:
        params = notebooks.parameters_of(name)
        assert params, f"{name}: empty parameters cell"


def test_pair_check_reports_drift_outputs_and_missing_scripts(tmp_path: Path) -> None:
    for suffix in (".ipynb", ".py"):
        shutil.copy(NOTEBOOKS / f"analyze_video{suffix}", tmp_path / f"analyze_video{suffix}")
    assert notebooks.check_pairs(tmp_path) == []

    script = tmp_path / "analyze_video.py"
    script.write_text(script.read_text().replace("stride = 1", "stride = 2", 1))
    problems = notebooks.check_pairs(tmp_path)
    assert len(problems) == 1 and "out of sync" in problems[0], problems

    shutil.copy(NOTEBOOKS / "analyze_video.py", script)
    nb = json.loads((tmp_path / "analyze_video.ipynb").read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["x\n"]}]
    code["metadata"]["tags"] = []  # and the parameters tag is gone
    (tmp_path / "analyze_video.ipynb").write_text(json.dumps(nb))
    problems = notebooks.check_pairs(tmp_path)
    assert any("with outputs" in p for p in problems), problems
    assert any("'parameters'" in p for p in problems), problems

    script.unlink()
    (tmp_path / "orphan.py").write_text("# %%\nx = 1\n")
    problems = notebooks.check_pairs(tmp_path)
    assert any("no paired script" in p for p in problems), problems
    assert any("orphan.py" in p for p in problems), problems


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_calls_only_public_capstone_api(name: str) -> None:
    source = (NOTEBOOKS / f"{name}.py").read_text()
    code = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith("#")
    )  # comments and markdown cells
    for pattern, why in FORBIDDEN.items():
        match = re.search(pattern, code)
        assert match is None, f"{name}.py {why}: {match.group(0)!r}"
    tree = ast.parse(source)
    capstone_imports = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
            assert not any(a.name.startswith("_") for a in node.names), (
                f"{name}.py imports a private name from {node.module}"
            )
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            assert top in ALLOWED_IMPORTS, f"{name}.py imports {module}"
            assert not any(part.startswith("_") for part in module.split(".")), module
            capstone_imports += top == "capstone"
    private = [
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__")
    ]
    assert not private, f"{name}.py uses private attributes {private}"
    assert capstone_imports, f"{name}.py does not use capstone"


def test_kernel_registration_is_idempotent(kernel: Path) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    spec_file = kernel / "kernel.json"
    before = spec_file.stat().st_mtime_ns
    assert notebooks.ensure_kernel() == kernel
    assert spec_file.stat().st_mtime_ns == before
    spec = json.loads(spec_file.read_text())
    assert spec["argv"][0] == sys.executable
    assert spec["env"]["YOLO_OFFLINE"] == "1"
    found = KernelSpecManager().find_kernel_specs()
    assert Path(found[notebooks.KERNEL_NAME]).resolve() == kernel.resolve()


def test_parameter_values_and_bad_requests_give_one_line_errors() -> None:
    from capstone.cli.lab import _parameters

    assert notebooks.parse_value("20") == 20
    assert notebooks.parse_value("0.5") == 0.5
    assert notebooks.parse_value("true") is True
    assert notebooks.parse_value("None") is None
    assert notebooks.parse_value('["person", "car"]') == ["person", "car"]
    assert notebooks.parse_value("yolo11n") == "yolo11n"
    assert _parameters(["-p", "stride", "2", "--parameter", "model", "x", "-p", "conf=0.4"]) == {
        "stride": 2,
        "model": "x",
        "conf": 0.4,
    }
    with pytest.raises(NotebookError, match="missing value"):
        _parameters(["-p", "stride"])
    with pytest.raises(NotebookError, match=r"no notebook named 'nope'.*analyze_video"):
        notebooks.run_notebook("nope")
    with pytest.raises(NotebookError, match=r"unknown parameter.*strid\b.*known:.*stride"):
        notebooks.run_notebook("analyze_video", {"strid": 2})
    assert notebooks.read_result(NOTEBOOKS / "analyze_video.ipynb") is None  # no outputs
    bad = NOTEBOOKS.parent / "pyproject.toml"
    with pytest.raises(NotebookError, match="not a notebook"):
        notebooks.read_result(bad)


# ---------------------------------------------------------------------------- papermill runs


@pytest.mark.slow
def test_analyze_video_notebook_via_cli_stores_executed_copy(
    kernel: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from capstone.cli import main
    from capstone.store import queries

    video = require(VIDEOS / "pets09-s2l1.avi")
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "analyze_video.ipynb"
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    main(
        [
            "run-notebook",
            "analyze_video",
            "-p", "video", str(video),
            "-p", "video_id", "nb-pets",
            "-p", "max_frames", "20",
            "-p", "stride", "2",
            "--output-dir", str(OUT),
        ]
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    printed = capsys.readouterr().out
    executed = Path(re.search(r"executed notebook: (\S+)", printed).group(1))
    shutil.move(executed, out)
    _assert_executed_cleanly(out)
    result = notebooks.read_result(out)
    assert result["video_id"] == "nb-pets" and result["status"] == "completed"
    assert result["frames_processed"] == 20
    assert f"stored with analysis {result['analysis_id']}" in printed

    stored = notebooks.load_stored_notebook(result["analysis_id"])
    assert stored is not None
    assert stored["metadata"]["papermill"]["parameters"]["video_id"] == "nb-pets"
    analysis = queries.get_analysis(result["analysis_id"])
    assert analysis["status"] == "completed"
    events = queries.list_events("nb-pets", event_type="detection", limit=1)
    assert events["total"] > 0
    print(f"analyze_video via CLI: {elapsed:.1f} s")


@pytest.mark.slow
def test_a_failing_cell_fails_the_run_and_keeps_the_copy(
    kernel: Path, db_url: str, tmp_path: Path
) -> None:
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("this is not a video\n")
    with pytest.raises(NotebookError, match=r"cell \d+ failed: RuntimeError: .*failed") as info:
        notebooks.run_notebook(
            "analyze_video",
            {"video": str(not_a_video), "video_id": "not-a-video"},
            OUT,
            output_name="analyze_video-failing.ipynb",
        )
    assert "executed copy" in str(info.value)
    errors = [
        o for o in _outputs(OUT / "analyze_video-failing.ipynb") if o["output_type"] == "error"
    ]
    assert len(errors) == 1
    published = notebooks.read_result(OUT / "analyze_video-failing.ipynb")
    assert published["status"] == "failed" and published["analysis_id"] >= 1
    assert published["video_id"] == "not-a-video" and published["error"]


@pytest.mark.slow
def test_explore_notebook_runs_every_stage(kernel: Path, db_url: str) -> None:
    video = require(VIDEOS / "pets09-s2l1.avi")
    out = notebooks.run_notebook(
        "01_explore_video",
        {"video": str(video), "max_frames": 10, "stride": 3, "show": 3},
        OUT,
        output_name="01_explore_video.ipynb",
    )
    outputs = _assert_executed_cleanly(out)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5  # frames, detections, tracks, depth (2), interactive view
    text = json.dumps(outputs)
    assert "person" in text and "completed" in text and "enter" in text
    assert "reused analysis" in text and "events" in text  # the moved line reused the tracks


@pytest.mark.slow
def test_tracking_eval_notebook_scores_trackers(kernel: Path) -> None:
    seq = require(MOT / "TUD-Campus")
    out = notebooks.run_notebook(
        "02_tracking_eval",
        {"sequences": [str(seq)], "sweep_values": [0.5, 0.7]},
        OUT,
        output_name="02_tracking_eval.ipynb",
    )
    text = json.dumps(_assert_executed_cleanly(out))
    for needle in ("MOTA", "IDF1", "HOTA", "bytetrack", "botsort", "track_high_thresh"):
        assert needle in text


@pytest.mark.slow
def test_search_notebook_queries_the_analysis(kernel: Path, db_url: str) -> None:
    video = require(VIDEOS / "bikes.mp4")
    out = notebooks.run_notebook(
        "03_search",
        {"video": str(video), "video_id": "nb-bikes", "max_frames": 20, "stride": 6, "k": 3},
        OUT,
        output_name="03_search.ipynb",
    )
    outputs = _assert_executed_cleanly(out)
    text = json.dumps(outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the PCA plot, frames like the example, hybrid hits
    assert "vector_rank" in text and "distance" in text and "car" in text
    # questions answered inline: the canonical query, the kind, the sentence, the fallback
    assert "query: 'car video:nb-bikes' (count)" in text and "Understood: how many of" in text
    assert "(where)" in text and "I could not map" in text
    assert "Understood: how many at once of" in text and "t:-0:10.." in text
    assert "car -color:black video:nb-bikes" in text and "whether there are any" in text
    assert "Yes: " in text or "No: no cars not black" in text
    assert "car t:0%..50% video:nb-bikes" in text and "in the first half of the video" in text
    assert "car pause>=2 video:nb-bikes" in text
    assert "car during:person video:nb-bikes" in text and "in view while a person was" in text


# ---------------------------------------------------------------------------- JupyterLab


def test_jupyterlab_serves_the_project_kernel(kernel: Path, tmp_path: Path) -> None:
    import httpx

    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
        "--port", str(port), f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={NOTEBOOKS}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = notebooks.kernel_environment()
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}
    try:
        deadline = time.monotonic() + 25
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"{base}/api/status", headers=headers, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert status is not None, f"JupyterLab did not answer: {proc.poll()}"
        assert status.status_code == 200 and "started" in status.json()
        specs = httpx.get(f"{base}/api/kernelspecs", headers=headers, timeout=5).json()
        assert notebooks.KERNEL_NAME in specs["kernelspecs"]
        spec = specs["kernelspecs"][notebooks.KERNEL_NAME]["spec"]
        assert spec["argv"][0] == sys.executable
        assert httpx.get(f"{base}/api/status", timeout=5).status_code == 403  # token needed
        lab = httpx.get(f"{base}/lab", headers=headers, timeout=5)
        assert lab.status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
