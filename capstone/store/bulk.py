"""Store: every row of one analysis written with COPY inside ONE transaction.

Re-running an analysis replaces its rows (delete by `analysis_id`, then COPY), so the
result is idempotent on (`video_id`, `params_hash`). Any error rolls everything back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb
from sqlmodel import Session

from capstone.core.records import Record, Rows
from capstone.store.tables import (
    DepthData,
    DisplayData,
    Event,
    FrameEmbedding,
    Track,
    TrackAttributes,
)

# Tables written by an analysis, in dependency order; `analysis_id` keys each of them.
RESULT_TABLES: dict[str, type] = {
    "apps_db_event": Event,
    "apps_db_track": Track,
    "apps_db_depthdata": DepthData,
    "apps_db_displaydata": DisplayData,
    "frame_embeddings": FrameEmbedding,
    "apps_db_trackattributes": TrackAttributes,
}
# The table each kind of record is stored in.
TABLE_OF: dict[Record, str] = {
    Record.EVENT: "apps_db_event",
    Record.TRACK: "apps_db_track",
    Record.DEPTH: "apps_db_depthdata",
    Record.DISPLAY: "apps_db_displaydata",
    Record.FRAME_EMBEDDING: "frame_embeddings",
    Record.TRACK_ATTRIBUTES: "apps_db_trackattributes",
}
_COMPUTED = {"description_tsv", "id"}


def table_for(kind: Record | str) -> str:
    """The table of a record kind (a result table's own name is accepted as it is).

    >>> table_for(Record.EVENT), table_for("apps_db_track")
    ('apps_db_event', 'apps_db_track')
    """
    if kind in RESULT_TABLES:
        return str(kind)
    try:
        return TABLE_OF[Record(kind)]
    except ValueError:
        raise KeyError(f"{kind!r} is neither a record kind nor a result table") from None


def by_table(rows: Rows) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by kind -> the same rows grouped by table."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, items in rows.items():
        out.setdefault(table_for(kind), []).extend(items)
    return out


def _vector_literal(value: Any) -> str:
    arr = np.asarray(value, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError("embedding contains NaN or infinity")
    return "[" + ",".join(f"{x:.7g}" for x in arr.tolist()) + "]"


def _adapter(column: Any) -> Callable[[Any], Any]:
    from pgvector.sqlalchemy import Vector
    from sqlalchemy.dialects.postgresql import JSONB

    if isinstance(column.type, Vector):
        return lambda v: None if v is None else _vector_literal(v)
    if isinstance(column.type, JSONB):
        return lambda v: None if v is None else Jsonb(v)
    return lambda v: v.tolist() if isinstance(v, np.ndarray) else v


def copy_rows(
    session: Session,
    table: str,
    rows: Sequence[dict[str, Any]],
    *,
    like: str | None = None,
    json_columns: Sequence[str] = (),
) -> int:
    """COPY `rows` into `table` on the session's connection (inside its transaction).

    Values are adapted to the columns of the result table `like` (default: `table`
    itself): vectors, JSONB, arrays. Columns that table lacks (a staging table's `chunk`)
    pass through, as do all columns of a table that is not a result table, except
    `json_columns`.
    """
    if not rows:
        return 0
    model = RESULT_TABLES.get(like or table)
    columns_meta = model.__table__.columns if model is not None else None  # type: ignore[attr-defined]
    names = sorted({k for row in rows for k in row} - _COMPUTED)
    if columns_meta is not None:
        unknown = [n for n in names if n not in columns_meta and (like is None or n != "chunk")]
        if unknown:
            raise KeyError(f"{table} has no column(s) {', '.join(unknown)}")
        adapters = [
            _adapter(columns_meta[n]) if n in columns_meta else (lambda v: v) for n in names
        ]
    else:
        adapters = [
            (lambda v: None if v is None else Jsonb(v)) if n in json_columns else (lambda v: v)
            for n in names
        ]
    raw = session.connection().connection.driver_connection
    cols = ", ".join(f'"{n}"' for n in names)
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([adapt(row.get(n)) for adapt, n in zip(adapters, names, strict=True)])
    return len(rows)


def insert_rows_one_by_one(session: Session, model: type, rows: Iterable[dict[str, Any]]) -> int:
    """The original system's way (per-row ORM insert and commit); kept for benchmarks."""
    n = 0
    for row in rows:
        session.add(model(**row))
        session.commit()
        n += 1
    return n
