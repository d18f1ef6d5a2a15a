"""Usage errors (issue 20): a wrong option, a missing argument or a bad value, in every
command group, is click's usage line and one `Error:` line (the closest valid option named
when there is one), exit code 2, never "internal error" and never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# (argv, what the Error: line says)
CASES = [
    # unknown options
    (
        ["analyze", "clip.mp4", "--max-frame", "3"],
        "No such option: --max-frame. Did you mean --max-frames?",
    ),
    (["analyze", "clip.mp4", "--detect-evry", "auto"], "No such option: --detect-evry"),
    (["search", "person", "--targt", "events"], "No such option: --targt. Did you mean --target?"),
    (["videos", "--json-out"], "No such option: --json-out"),
    (["events", "v1", "--clas", "car"], "No such option: --clas. Did you mean --class?"),
    (["db", "status", "--verbose"], "No such option: --verbose"),
    (["eval", "mot", "--seqs", "x"], "No such option: --seqs. Did you mean --seq?"),
    (["stack", "up", "--api-prt", "1"], "No such option: --api-prt. Did you mean --api-port?"),
    (["upload", "v.mp4", "--video"], "No such option: --video. Did you mean --video-id?"),
    (["serve", "--prot", "1"], "No such option: --prot. Did you mean --port?"),
    (["dashboard", "--hots", "x"], "No such option: --hots. Did you mean --host?"),
    (["lab", "--tokn", "x"], "No such option: --tokn. Did you mean --token?"),
    (["demo", "--clip", "x"], "No such option: --clip"),
    (["run-notebook", "--bogus"], "No such option: --bogus"),
    (
        ["run-notebook", "analyze_video", "--output-di", "x"],
        "No such option: --output-di. Did you mean --output-dir?",
    ),
    (["--verbos", "videos"], "No such option: --verbos. Did you mean --verbose?"),
    # unknown commands
    (["analyse", "clip.mp4"], "No such command 'analyse'. Did you mean 'analyze'?"),
    (["db", "upp"], "No such command 'upp'. Did you mean 'up'?"),
    (["eval", "motx"], "No such command 'motx'. Did you mean 'mot'?"),
    (["stack", "stat"], "No such command 'stat'. Did you mean 'status'?"),
    # missing arguments and option values
    (["analyze"], "Missing argument 'source'."),
    (["events"], "Missing argument 'video_id'."),
    (["upload"], "Missing argument 'file'."),
    (["eval", "mot"], "Missing option '--seq'."),
    (["eval", "mot", "--seq"], "Option '--seq' requires an argument."),
    (["analyze", "clip.mp4", "--stride"], "Option '--stride' requires an argument."),
    # bad values
    (["analyze", "clip.mp4", "--stride", "abc"], "Invalid value for '--stride'"),
    (["analyze", "clip.mp4", "--conf", "high"], "Invalid value for '--conf'"),
    (["search", "person", "-k", "ten"], "Invalid value for '-k' / '--k'"),
    (["videos", "--limit", "x"], "Invalid value for '--limit'"),
    (["events", "v1", "--from", "start"], "Invalid value for '--from'"),
    (["lab", "--port", "99999"], "Invalid value for '--port'"),
    (["serve", "--workers", "0"], "Invalid value for '--workers'"),
    (["dashboard", "--port", "abc"], "Invalid value for '--port'"),
    (["stack", "up", "--api-port", "0"], "Invalid value for '--api-port'"),
    (["eval", "mot", "--seq", "x", "--stride", "0"], "Invalid value for '--stride'"),
    (["run-notebook", "x", "--timeout", "soon"], "Invalid value for '--timeout'"),
    # extra arguments
    (["demo", "a.mp4", "b.mp4"], "Got unexpected extra argument(s) (b.mp4)"),
    (["db", "url", "extra"], "Got unexpected extra argument(s) (extra)"),
]

QUIET_ENV = ("YOLO_VERBOSE", "TRANSFORMERS_VERBOSITY", "TRANSFORMERS_NO_ADVISORY_WARNINGS")


def assert_usage_error(code: object, out: str, err: str, expected: str) -> None:
    assert code == 2, (code, err)
    assert "internal error" not in err and "Traceback" not in err, err
    assert out == "", out
    lines = err.rstrip("\n").splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, err  # one line says what is wrong ...
    assert expected in errors[0], err
    assert len(lines) <= 4, err  # ... after at most the usage line and the help hint
    if len(lines) > 1:
        assert lines[0].startswith("Usage: capstone"), err
        assert lines[1].startswith("Try 'capstone") and lines[1].endswith("--help' for help."), err


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_usage_errors_are_one_error_line_and_exit_2(
    argv: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from capstone.cli import main

    for var in QUIET_ENV:  # the CLI's quieting sets these; keep this process as it was
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("CAPSTONE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    printed = capsys.readouterr()
    assert_usage_error(exc.value.code, printed.out, printed.err, expected)


def test_an_unknown_revision_is_a_usage_error(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from capstone.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["db", "migrate", "nope"])
    printed = capsys.readouterr()
    assert_usage_error(
        exc.value.code, printed.out, printed.err, "Invalid value for 'REVISION': Can't locate"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["analyze", "clip.mp4", "--max-frame", "3"], "Did you mean --max-frames?"),
        (["eval", "mot"], "Missing option '--seq'."),
    ],
)
def test_the_installed_command_prints_the_same(argv: list[str], expected: str) -> None:
    """The real entry point, in its own process (`python -m capstone` = the console script)."""
    env = {k: v for k, v in os.environ.items() if k != "CAPSTONE_DEBUG"}
    result = subprocess.run(
        [sys.executable, "-m", "capstone", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert_usage_error(result.returncode, result.stdout, result.stderr, expected)
