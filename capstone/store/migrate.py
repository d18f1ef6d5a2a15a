"""Alembic migrations, driven from code.

The schema is migrated when a process starts, never per request: `capstone db migrate` /
`db up`, `capstone serve` and the service's startup, analysis worker start, the start of an
analysis (`capstone analyze` / `demo`, `capstone.runtime.pipeline.analyze`) and the test
session's template database.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from capstone.store.engine import get_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    engine = get_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Apply migrations up to `revision` (idempotent)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


MIGRATE_LOCK = 0x6361_706D  # "capm": the advisory lock that serialises concurrent upgrades


def ensure_schema(url: str | None = None) -> None:
    """Upgrade to head when the database is behind; cheap when it is current. Processes
    starting together (uvicorn workers, Batch jobs) upgrade one after the other."""
    head = head_revision()
    if current_revision(url) == head:
        return
    with get_engine(url).connect() as conn:
        # Wait for another process's upgrade however long it takes (the lock is the
        # session's; the lifted timeouts are this transaction's only).
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        conn.execute(text("SET LOCAL lock_timeout = 0"))
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATE_LOCK})
        conn.commit()
        try:
            if current_revision(url) != head:
                upgrade(url)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATE_LOCK})
            conn.commit()
