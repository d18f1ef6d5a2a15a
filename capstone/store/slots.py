"""Worker slots: at most N processes of a kind per database, with PostgreSQL advisory locks.

A process holds slot `i` of `namespace` for as long as the connection that took the lock
stays open; a process that dies drops its connection and so its slot.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from capstone.store.engine import get_engine


def hold_slot(namespace: int, slots: int) -> Connection | None:
    """A connection holding one of `slots` advisory locks of `namespace` (None: all taken)."""
    conn = get_engine().connect()
    for slot in range(slots):
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:ns, :slot)"), {"ns": namespace, "slot": slot}
        ).scalar_one()
        conn.commit()
        if got:
            return conn
    conn.close()
    return None


def release_slot(conn: Connection) -> None:
    """Give the slot back (the connection returns to the pool, so unlock explicitly)."""
    try:
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
        conn.commit()
    finally:
        conn.close()


def slots_taken(namespace: int) -> int:
    """Slots of `namespace` held right now, by any process, in this database."""
    with get_engine().connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = :ns AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"ns": namespace},
            ).scalar_one()
        )
