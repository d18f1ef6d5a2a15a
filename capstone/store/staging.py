"""Staging: an analysis's rows, chunk by chunk, and the one transaction that publishes them.

While an analysis runs, every row it produces is COPYed into a `staging_<table>` twin of
its result table, tagged with the chunk that wrote it, in batches of `FLUSH_ROWS` (memory
holds one batch, not the video). Readers (the SPEC SQL, API, CLI, dashboard, search) only
read the result tables, so they see the previous complete result or nothing until
`publish` moves the analysis's staged rows into the result tables in one transaction.

Every chunk (`apps_db_analysischunk`) has its own lease, fenced like the analysis's: a
flush or a chunk's completion is refused in its own transaction when the chunk has moved
on to another worker. Claiming a chunk deletes whatever a dead worker had staged for it,
so a killed run resumes at its first unfinished chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlmodel import Session

from capstone.core.chunks import ChunkSpan
from capstone.core.detections import Detections
from capstone.core.records import Record, Rows
from capstone.store import analyses
from capstone.store.bulk import RESULT_TABLES, by_table, copy_rows, table_for
from capstone.store.engine import lift_timeouts, session_scope

log = logging.getLogger(__name__)

STAGED_TABLES = ("apps_db_event", "apps_db_depthdata", "apps_db_displaydata", "frame_embeddings")
FLUSH_ROWS = 4000


def staging_table(table: str) -> str:
    if table not in STAGED_TABLES:
        raise KeyError(f"{table} is not staged")
    return f"staging_{table}"


@dataclass(frozen=True)
class ChunkLease:
    """Who runs one chunk: owner and fencing token (`attempts` at claim time)."""

    analysis_id: int
    chunk_index: int
    owner: str
    token: int
    seconds: int = analyses.LEASE_SECONDS


@dataclass(frozen=True)
class ChunkRecord:
    span: ChunkSpan
    status: str
    frames_processed: int


def ensure_chunks(analysis_id: int, spans: Sequence[ChunkSpan]) -> None:
    """Create the analysis's chunk rows (once; concurrent callers create them once)."""
    with session_scope() as session:
        session.execute(  # one round trip for all of them (executemany)
            text(
                "INSERT INTO apps_db_analysischunk (analysis_id, chunk_index, start_frame, "
                "end_frame, frames_expected) VALUES (:a, :i, :s, :e, :x) "
                "ON CONFLICT (analysis_id, chunk_index) DO NOTHING"
            ),
            [{"a": analysis_id, "i": span.index, "s": span.start, "e": span.end,
              "x": span.expected} for span in spans],
        )  # fmt: skip
        session.execute(
            text("UPDATE apps_db_videoanalysis SET chunks_total = :n WHERE id = :a"),
            {"a": analysis_id, "n": len(spans)},
        )
    _update_progress(analysis_id)


def chunk_records(analysis_id: int, step: int = 1) -> list[ChunkRecord]:
    """The analysis's chunks; a `processing` chunk under an expired lease reads as
    `pending` (claimable). Their states are read by `chunk_states`."""
    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT chunk_index, start_frame, end_frame, status, frames_processed, "
                "lease_owner IS NOT NULL AND lease_expires_at > now() AS live "
                "FROM apps_db_analysischunk WHERE analysis_id = :a ORDER BY chunk_index"
            ),
            {"a": analysis_id},
        ).all()
    return [
        ChunkRecord(
            ChunkSpan(r.chunk_index, r.start_frame, r.end_frame, r.start_frame, step),
            "processing" if r.status == "processing" and r.live else
            ("pending" if r.status == "processing" else r.status),
            r.frames_processed,
        )
        for r in rows
    ]  # fmt: skip


def claim_chunk(
    analysis_id: int,
    owner: str,
    *,
    prefer: int = 0,
    only: Sequence[int] | None = None,
    lease_seconds: int = analyses.LEASE_SECONDS,
) -> ChunkLease | None:
    """Take the first claimable chunk at or after `prefer` (else the first before it):
    `pending`, or `processing` under an expired lease. Whatever a dead worker staged for
    it is deleted in the same transaction. None when no chunk is left to take."""
    only_sql = "AND chunk_index = ANY(:only) " if only is not None else ""
    with session_scope() as session:
        row = session.execute(
            text(
                "SELECT id, chunk_index, attempts FROM apps_db_analysischunk "
                "WHERE analysis_id = :a AND (status = 'pending' OR (status = 'processing' "
                "AND (lease_expires_at IS NULL OR lease_expires_at < now()))) " + only_sql +
                "ORDER BY chunk_index < :p, chunk_index LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            {"a": analysis_id, "p": prefer, **({"only": list(only)} if only is not None else {})},
        ).first()  # fmt: skip
        if row is None:
            return None
        session.execute(
            text(
                "UPDATE apps_db_analysischunk SET status = 'processing', lease_owner = :o, "
                "lease_expires_at = now() + make_interval(secs => :l), attempts = attempts + 1, "
                "frames_processed = 0, state = NULL, updated_at = now() WHERE id = :id"
            ),
            {"o": owner, "l": lease_seconds, "id": row.id},
        )
        _delete_staged(session, analysis_id, row.chunk_index)
        return ChunkLease(analysis_id, row.chunk_index, owner, row.attempts + 1, lease_seconds)


def _delete_staged(session: Session, analysis_id: int, chunk: int | None) -> None:
    where = "analysis_id = :a" + (" AND chunk = :c" if chunk is not None else "")
    params = {"a": analysis_id, "c": chunk}
    for table in (*STAGED_TABLES, "track"):
        name = "staging_track" if table == "track" else staging_table(table)
        session.execute(text(f"DELETE FROM {name} WHERE {where}"), params)


_CHUNK_HELD = (
    "analysis_id = :a AND chunk_index = :i AND lease_owner = :o AND attempts = :t "
    "AND status = 'processing'"
)


def _chunk_params(lease: ChunkLease) -> dict[str, Any]:
    return {"a": lease.analysis_id, "i": lease.chunk_index, "o": lease.owner, "t": lease.token}


def fence_chunk(session: Session, lease: ChunkLease) -> None:
    """Inside a write transaction: lock the chunk row and check that `lease` holds it."""
    held = session.execute(
        text(f"SELECT 1 FROM apps_db_analysischunk WHERE {_CHUNK_HELD} FOR UPDATE"),
        _chunk_params(lease),
    ).first()
    if held is None:
        raise analyses.LeaseLostError(
            f"chunk {lease.chunk_index} of analysis {lease.analysis_id} was taken over by "
            "another worker; its rows are not staged"
        )


def extend_chunk(lease: ChunkLease, frames_processed: int) -> bool:
    """Heartbeat of a chunk with its progress; False when the lease is lost."""
    with session_scope() as session:
        result = session.execute(
            text(
                "UPDATE apps_db_analysischunk SET frames_processed = :n, updated_at = now(), "
                "lease_expires_at = now() + make_interval(secs => :l) WHERE " + _CHUNK_HELD
            ),
            {**_chunk_params(lease), "n": frames_processed, "l": lease.seconds},
        )
        held = result.rowcount == 1  # type: ignore[attr-defined]
    if held:
        _update_progress(lease.analysis_id)
    return held


def _update_progress(analysis_id: int, session: Session | None = None) -> None:
    """The analysis row's progress from its chunks (an aggregate: idempotent, unfenced)."""
    sql = text(
        "UPDATE apps_db_videoanalysis a SET chunks_done = c.done, frames_processed = c.frames, "
        "progress = least(90.0, round((90.0 * c.frames / greatest(c.expected, 1))::numeric, 1)), "
        "updated_at = now() FROM (SELECT count(*) FILTER (WHERE status = 'done') AS done, "
        "coalesce(sum(frames_processed), 0) AS frames, "
        "coalesce(sum(frames_expected), 0) AS expected FROM apps_db_analysischunk "
        "WHERE analysis_id = :a) c WHERE a.id = :a AND a.status IN ('processing', 'pending')"
    )
    if session is not None:
        session.execute(sql, {"a": analysis_id})
        return
    with session_scope() as own:
        own.execute(sql, {"a": analysis_id})


class StagingSink:
    """Rows emitted during a chunk, COPYed to staging every `flush_rows` rows, fenced by
    the chunk's lease. `emit` is what stages call (through `RunContext.emit`)."""

    def __init__(self, video_id: str, lease: ChunkLease, flush_rows: int = FLUSH_ROWS) -> None:
        self.video_id, self.lease, self.flush_rows = video_id, lease, flush_rows
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.buffered = 0
        self.staged: dict[str, int] = {}

    def emit(self, kind: Record, row: dict[str, Any]) -> None:
        table = table_for(kind)
        if table not in STAGED_TABLES:
            raise KeyError(f"{table} is not staged")
        self.pending.setdefault(table, []).append(row)
        self.buffered += 1
        if self.buffered >= self.flush_rows:
            self.flush()

    def flush(self, session: Session | None = None) -> None:
        if not self.buffered:
            return
        if session is None:
            with session_scope() as own:
                fence_chunk(own, self.lease)
                self._copy(own)
        else:
            self._copy(session)

    def _copy(self, session: Session) -> None:
        extra = {"video_id": self.video_id, "analysis_id": self.lease.analysis_id,
                 "chunk": self.lease.chunk_index}  # fmt: skip
        for table, rows in self.pending.items():
            copy_rows(session, staging_table(table), [{**r, **extra} for r in rows], like=table)
            self.staged[table] = self.staged.get(table, 0) + len(rows)
        self.pending, self.buffered = {}, 0


def complete_chunk(
    sink: StagingSink,
    tracks: Sequence[tuple[int, dict[str, Any], bytes | None]],
    state: dict[str, Any],
    frames: int,
) -> None:
    """One transaction: the chunk's last rows, its track summaries and state; it is done."""
    lease = sink.lease
    with session_scope() as session:
        fence_chunk(session, lease)
        sink.flush(session)
        copy_rows(
            session,
            "staging_track",
            [
                {
                    "analysis_id": lease.analysis_id,
                    "chunk": lease.chunk_index,
                    "staged_id": tid,
                    "summary": summary,
                    "best_crop": crop,
                }
                for tid, summary, crop in tracks
            ],
            json_columns=("summary",),
        )
        session.execute(
            text(
                "UPDATE apps_db_analysischunk SET status = 'done', state = :s, "
                "frames_processed = :n, lease_owner = NULL, lease_expires_at = NULL, "
                "updated_at = now() WHERE " + _CHUNK_HELD
            ),
            {**_chunk_params(lease), "s": _json(state), "n": frames},
        )
        _update_progress(lease.analysis_id, session)


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def release_chunk(lease: ChunkLease) -> None:
    """Give a chunk back unfinished (cancelled): `pending`, its staged rows kept until the
    next claim deletes them."""
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE apps_db_analysischunk SET status = 'pending', lease_owner = NULL, "
                "lease_expires_at = NULL WHERE " + _CHUNK_HELD
            ),
            _chunk_params(lease),
        )


_EMPTY_STATE = (
    '{"core": {"first_frame": null, "last_frame": null, "tail": [], "warm": [], '
    '"frames": [], "times": []}}'
)


def complete_chunks_past_end(analysis_id: int, end_frame: int) -> int:
    """Chunks starting at or after `end_frame` (where decoding found the video's real end:
    every worker decodes from frame 0, so theirs ends there too) are done, empty, without
    being run: a header claiming hours more frames than the file has costs one statement.
    Chunks a live worker holds finish by themselves. Returns how many were completed."""
    claimable = (
        "analysis_id = :a AND start_frame >= :e AND (status = 'pending' OR "
        "(status = 'processing' AND (lease_expires_at IS NULL OR lease_expires_at < now())))"
    )
    with session_scope() as session:
        indices = (
            session.execute(
                text(
                    f"SELECT chunk_index FROM apps_db_analysischunk WHERE {claimable} "
                    "ORDER BY chunk_index FOR UPDATE SKIP LOCKED"
                ),
                {"a": analysis_id, "e": end_frame},
            )
            .scalars()
            .all()
        )
        if not indices:
            return 0
        for table in (*STAGED_TABLES, "track"):  # a dead worker's partial rows
            name = "staging_track" if table == "track" else staging_table(table)
            session.execute(
                text(f"DELETE FROM {name} WHERE analysis_id = :a AND chunk = ANY(:c)"),
                {"a": analysis_id, "c": list(indices)},
            )
        session.execute(
            text(
                "UPDATE apps_db_analysischunk SET status = 'done', state = CAST(:s AS jsonb), "
                "frames_processed = 0, lease_owner = NULL, lease_expires_at = NULL, "
                "updated_at = now() WHERE analysis_id = :a AND chunk_index = ANY(:c)"
            ),
            {"a": analysis_id, "c": list(indices), "s": _EMPTY_STATE},
        )
        _update_progress(analysis_id, session)
    return len(indices)


# -- reading staged work back (the publish step) -------------------------------------------


def chunk_states(analysis_id: int, key: str) -> Iterator[dict[str, Any]]:
    """`state[key]` of each done chunk, in chunk order, fetched one chunk at a time."""
    with session_scope() as session:
        indices = (
            session.execute(
                text(
                    "SELECT chunk_index FROM apps_db_analysischunk WHERE analysis_id = :a "
                    "AND status = 'done' ORDER BY chunk_index"
                ),
                {"a": analysis_id},
            )
            .scalars()
            .all()
        )
    for index in indices:
        with session_scope() as session:
            state = session.execute(
                text(
                    "SELECT state -> :k FROM apps_db_analysischunk "
                    "WHERE analysis_id = :a AND chunk_index = :i"
                ),
                {"a": analysis_id, "i": index, "k": key},
            ).scalar_one()
        if state is not None:
            yield state


def staged_tracks(analysis_id: int) -> list[tuple[int, int, dict[str, Any], bytes | None]]:
    """(chunk, staged id, summary, best crop) of every staged track, in chunk order."""
    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT chunk, staged_id, summary, best_crop FROM staging_track "
                "WHERE analysis_id = :a ORDER BY chunk, staged_id"
            ),
            {"a": analysis_id},
        ).all()
    out = []
    for r in rows:
        extra = r.summary.get("extra", {})
        for key in ("embedding", "reid_embedding"):  # 4 bytes a value, not a Python float
            if isinstance(extra.get(key), list):
                extra[key] = np.asarray(extra[key], np.float32)
        out.append((r.chunk, r.staged_id, r.summary, r.best_crop))
    return out


def staged_observations(analysis_id: int, batch: int = 50_000) -> Detections:
    """Every staged tracked box of the analysis (a few dozen bytes each), sorted by track
    then frame, with `frame` and `timestamp` columns; classes are per track (summaries)."""
    frames, stamps, tracks, boxes, scores = [], [], [], [], []
    with session_scope() as session:
        raw = session.connection().connection.driver_connection
        with raw.cursor(name="capstone_observations") as cur:
            cur.itersize = batch
            cur.execute(
                "SELECT frame_number, timestamp, track_id, bbox, confidence "
                "FROM staging_apps_db_event WHERE analysis_id = %s "
                "AND event_type = 'detection' AND track_id IS NOT NULL",
                (analysis_id,),
            )
            while part := cur.fetchmany(batch):
                f, t, k, b, c = zip(*part, strict=True)
                frames.append(np.array(f, np.int64))
                stamps.append(np.array(t, np.float64))
                tracks.append(np.array(k, np.int64))
                boxes.append(np.array(b, np.float64).reshape(-1, 4))
                scores.append(np.array([v if v is not None else 0.0 for v in c], np.float64))
    if not frames:
        frames, stamps, tracks = [np.zeros(0, np.int64)], [np.zeros(0)], [np.zeros(0, np.int64)]
        boxes, scores = [np.zeros((0, 4))], [np.zeros(0)]
    track = np.concatenate(tracks)
    return Detections(
        np.concatenate(boxes),
        np.concatenate(scores),
        np.zeros(len(track), np.int64),
        track,
        data={"frame": np.concatenate(frames), "timestamp": np.concatenate(stamps)},
    ).sorted_by_track()


def _columns(table: str) -> list[str]:
    model = RESULT_TABLES[table]
    return [
        c.name
        for c in model.__table__.columns  # type: ignore[attr-defined]
        if c.name not in ("id",) and c.computed is None
    ]


_THUMBNAIL_OBJECTS = (
    "CASE WHEN s.kind = 'thumbnail' AND jsonb_typeof(s.data->'objects') = 'array' THEN "
    "jsonb_set(s.data, '{objects}', coalesce((SELECT jsonb_agg(CASE WHEN "
    "jsonb_typeof(o->'track_id') = 'number' THEN jsonb_set(o, '{track_id}', "
    "to_jsonb(coalesce(m.final_id, (o->>'track_id')::bigint))) ELSE o END ORDER BY n) "
    "FROM jsonb_array_elements(s.data->'objects') WITH ORDINALITY AS e(o, n) "
    "LEFT JOIN pg_temp.capstone_track_map m ON m.staged_id = (o->>'track_id')::bigint "
    "AND jsonb_typeof(o->'track_id') = 'number'), '[]'::jsonb)) ELSE s.data END"
)


def _move_staged(session: Session, table: str, analysis_id: int) -> int:
    """INSERT ... SELECT the analysis's staged rows of `table`, track ids mapped."""
    columns = _columns(table)
    select = []
    for c in columns:
        if c == "track_id":
            select.append("coalesce(m.final_id, s.track_id)")
        elif c == "class_name" and table == "apps_db_event":
            # a tracked box takes its track's class (one object, one class)
            select.append(
                "CASE WHEN s.event_type = 'detection' AND m.class_name IS NOT NULL "
                "THEN m.class_name ELSE s.class_name END"
            )
        elif c == "data" and table == "apps_db_displaydata":
            select.append(_THUMBNAIL_OBJECTS)
        else:
            select.append(f"s.{c}")
    join = (
        "LEFT JOIN pg_temp.capstone_track_map m ON m.staged_id = s.track_id "
        if "track_id" in columns
        else ""
    )
    order = "s.frame_number, s.seq" if "frame_number" in columns else "s.seq"
    result = session.execute(
        text(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(select)} "
            f"FROM {staging_table(table)} s {join}WHERE s.analysis_id = :a ORDER BY {order}"
        ),
        {"a": analysis_id},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def publish(
    session: Session,
    lease: analyses.Lease,
    *,
    video_id: str,
    track_map: dict[int, int],
    rows: Rows,
    track_classes: dict[int, str] | None = None,
    fail_after: str | None = None,
) -> dict[str, int]:
    """Inside the publishing transaction (fenced by the analysis lease): replace the
    analysis's result rows with its staged rows (track ids mapped to their final ids, each
    tracked box labelled with its track's class from `track_classes`, final id -> class)
    plus `rows` (made by the publish step), and drop its staging. Returns counts per table.
    `fail_after` names a table after which an error is raised (the tests' proof that a
    failed publish leaves the previous result and the staging as they were)."""
    lift_timeouts(session)  # moving every staged row may take longer than a request may
    analyses.fence(session, lease)
    a = lease.analysis_id
    session.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS capstone_track_map (staged_id bigint PRIMARY KEY,"
            " final_id bigint NOT NULL, class_name text) ON COMMIT DELETE ROWS"
        )
    )
    session.execute(text("DELETE FROM pg_temp.capstone_track_map"))
    classes = track_classes or {}
    copy_rows(
        session,
        "pg_temp.capstone_track_map",
        [
            {"staged_id": k, "final_id": v, "class_name": classes.get(v)}
            for k, v in track_map.items()
        ],
    )
    rows = by_table(rows)
    for table in RESULT_TABLES:
        session.execute(text(f"DELETE FROM {table} WHERE analysis_id = :a"), {"a": a})
    counts: dict[str, int] = {}
    for table in RESULT_TABLES:
        counts[table] = _move_staged(session, table, a) if table in STAGED_TABLES else 0
        made = [{**r, "video_id": video_id, "analysis_id": a} for r in rows.get(table, [])]
        counts[table] += copy_rows(session, table, made)
        if fail_after == table:
            raise RuntimeError(f"injected failure after storing {table}")
    _delete_staged(session, a, None)
    session.execute(text("DELETE FROM apps_db_analysischunk WHERE analysis_id = :a"), {"a": a})
    return counts


def discard(analysis_id: int) -> None:
    """Drop an analysis's staging and chunks (its plan changed or it starts over)."""
    with session_scope() as session:
        _delete_staged(session, analysis_id, None)
        session.execute(
            text("DELETE FROM apps_db_analysischunk WHERE analysis_id = :a"), {"a": analysis_id}
        )


def events_per_type(session: Session, analysis_id: int) -> dict[str, int]:
    """Event counts per type of an analysis (inside the publishing transaction)."""
    rows = session.execute(
        text(
            "SELECT event_type, count(*) AS n FROM apps_db_event "
            "WHERE analysis_id = :a GROUP BY event_type ORDER BY event_type"
        ),
        {"a": analysis_id},
    )
    return {r.event_type: int(r.n) for r in rows}
