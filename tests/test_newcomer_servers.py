"""Nothing left running: a test session and a benchmark stop the embedded PostgreSQL they
started (issue 20); one that was running before them (the user's `capstone db up`) stays.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import ROOT

PID_FILE_ENV = "capstoneCOMER_PID_FILE"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=180,
    )


def _gone(pid: int, wait_s: float = 10.0) -> bool:
    """The process has exited (a zombie waiting to be reaped counts as exited)."""
    import psutil

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_db_url_is_a_migrated_database(db_url: str) -> None:
    """Also the inner session of the test below (it reports the postmaster's pid)."""
    from capstone.store.server import _postmaster_pid

    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    if os.environ.get(PID_FILE_ENV):
        from tests.conftest import TEST_HOME

        Path(os.environ[PID_FILE_ENV]).write_text(str(_postmaster_pid(TEST_HOME / "pgdata")))


def test_a_test_session_stops_the_server_it_started(tmp_path: Path) -> None:
    from capstone.store.server import embedded_running

    home, pid_file = tmp_path / "test-home", tmp_path / "postmaster.pid"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{Path(__file__).relative_to(ROOT)}::test_db_url_is_a_migrated_database",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CAPSTONE_TEST_HOME": str(home), PID_FILE_ENV: str(pid_file)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    postmaster = int(pid_file.read_text())  # the session ran a server of its own ...
    assert not embedded_running(home / "pgdata")  # ... and stopped it at the end
    assert _gone(postmaster)


def test_a_benchmark_stops_the_server_it_started(tmp_path: Path) -> None:
    from capstone.store.server import embedded_running

    home = tmp_path / "bench-home"
    result = _python(
        "import bench\n"
        "bench.setup_environment()\n"
        "url = bench.fresh_database('newcomer')\n"
        "bench.drop_database(url)\n"
        "from capstone.store.server import _postmaster_pid\n"
        "print(_postmaster_pid(bench.BENCH_HOME / 'pgdata'))\n",
        CAPSTONE_BENCH_HOME=str(home),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    postmaster = int(result.stdout.split()[-1])
    assert not embedded_running(home / "pgdata")
    assert _gone(postmaster)


def test_the_last_user_stops_only_a_server_a_user_started(tmp_path: Path) -> None:
    from capstone.store.server import (
        acquire_embedded,
        embedded_running,
        embedded_url,
        release_embedded,
        stop_embedded,
    )

    pgdata = tmp_path / "pgdata"
    acquire = (
        "from pathlib import Path\n"
        "from capstone.store.server import acquire_embedded\n"
        f"acquire_embedded(Path({str(pgdata)!r}))\n"  # released when it exits
    )
    try:
        acquire_embedded(pgdata)  # starts it: ours to stop
        second = _python(acquire)  # a second user comes and goes
        assert second.returncode == 0, second.stderr[-2000:]
        assert embedded_running(pgdata)  # this process still uses it
        assert release_embedded(pgdata)  # the last user out stops it
        assert not embedded_running(pgdata)

        embedded_url(pgdata)  # running before any user, as after `capstone db up`
        user = _python(acquire)
        assert user.returncode == 0, user.stderr[-2000:]
        assert embedded_running(pgdata)  # not the user's to stop
    finally:
        stop_embedded(pgdata)
    assert not embedded_running(pgdata)
