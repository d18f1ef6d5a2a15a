"""Reusing a stored analysis: its basis (frame log, exact track confidence), its stored
boxes and tracks read back, and the one transaction that publishes a reused result.

A completed analysis keeps, beside its result rows, what its derived stages are recomputed
from (`apps_db_analysisbasis`, migration 0005): `upstream_hash`, the sampled frames and
their exact timestamps, and each track's exact confidence sum. A later analysis of the same
video with the same `upstream_hash` copies the source's upstream rows (detections, tracks,
depth, display, frame embeddings) with `INSERT ... SELECT` (no row passes through Python)
and adds the rows its derived stages made, in one transaction fenced by its lease: readers
see the previous result until it commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlmodel import Session

from capstone.core.detections import Detections
from capstone.core.records import Rows
from capstone.store import analyses
from capstone.store.bulk import RESULT_TABLES, by_table, copy_rows
from capstone.store.engine import lift_timeouts, session_scope

BASIS_TABLE = "apps_db_analysisbasis"


@dataclass
class Basis:
    """What a stored analysis keeps for a reuse: its frame log and track confidence sums."""

    analysis_id: int
    frames: list[int]
    timestamps: list[float]
    confidence_sums: dict[int, float]


def _i64(values: Sequence[int] | np.ndarray) -> bytes:
    return np.asarray(values, "<i8").tobytes()


def _f64(values: Sequence[float] | np.ndarray) -> bytes:
    return np.asarray(values, "<f8").tobytes()


def write_basis(
    session: Session,
    analysis_id: int,
    *,
    video_id: str,
    upstream_hash: str,
    frames: Sequence[int],
    timestamps: Sequence[float],
    confidence_sums: Mapping[int, float],
) -> None:
    """Inside the publishing transaction: the analysis's basis (replacing an older one)."""
    ids = sorted(confidence_sums)
    session.execute(
        text(
            f"INSERT INTO {BASIS_TABLE} (analysis_id, video_id, upstream_hash, frames, "
            "timestamps, track_ids, confidence_sums) VALUES (:a, :v, :h, :f, :t, :i, :c) "
            "ON CONFLICT (analysis_id) DO UPDATE SET video_id = :v, upstream_hash = :h, "
            "frames = :f, timestamps = :t, track_ids = :i, confidence_sums = :c, "
            "created_at = now()"
        ),
        {
            "a": analysis_id,
            "v": video_id,
            "h": upstream_hash,
            "f": _i64(frames),
            "t": _f64(timestamps),
            "i": _i64(ids),
            "c": _f64([confidence_sums[i] for i in ids]),
        },
    )


def drop_basis(session: Session, analysis_id: int) -> None:
    """Inside a publishing transaction: this analysis keeps no basis (its chunks logged no
    frames: an older run, or a result stored some other way)."""
    session.execute(text(f"DELETE FROM {BASIS_TABLE} WHERE analysis_id = :a"), {"a": analysis_id})


def find_source(video_id: str, upstream_hash: str, *, exclude: int | None = None) -> int | None:
    """The newest completed analysis of `video_id` with this upstream hash and a basis
    (not `exclude`), or None."""
    with session_scope() as session:
        row = session.execute(
            text(
                f"SELECT b.analysis_id FROM {BASIS_TABLE} b JOIN apps_db_videoanalysis a "
                "ON a.id = b.analysis_id WHERE b.video_id = :v AND b.upstream_hash = :h "
                "AND a.status = 'completed' AND a.id IS DISTINCT FROM :x "
                "ORDER BY a.finished_at DESC NULLS LAST, a.id DESC LIMIT 1"
            ),
            {"v": video_id, "h": upstream_hash, "x": exclude},
        ).first()
    return int(row.analysis_id) if row is not None else None


def load_basis(analysis_id: int) -> Basis | None:
    with session_scope() as session:
        row = session.execute(
            text(
                f"SELECT frames, timestamps, track_ids, confidence_sums FROM {BASIS_TABLE} "
                "WHERE analysis_id = :a"
            ),
            {"a": analysis_id},
        ).first()
    if row is None:
        return None
    ids = np.frombuffer(row.track_ids, "<i8").tolist()
    sums = np.frombuffer(row.confidence_sums, "<f8").tolist()
    return Basis(
        analysis_id,
        np.frombuffer(row.frames, "<i8").tolist(),
        np.frombuffer(row.timestamps, "<f8").tolist(),
        dict(zip(ids, sums, strict=True)),
    )


def stored_summary(analysis_id: int) -> dict[str, Any]:
    """The analysis row's frames processed, fps and summary."""
    with session_scope() as session:
        row = session.execute(
            text(
                "SELECT frames_processed, fps, summary, finished_at FROM apps_db_videoanalysis "
                "WHERE id = :a"
            ),
            {"a": analysis_id},
        ).first()
    if row is None:
        return {}
    return {
        **(row.summary or {}),
        "frames_processed": row.frames_processed,
        "fps": row.fps,
        "finished_at": row.finished_at,
    }


def stored_tracks(analysis_id: int) -> list[dict[str, Any]]:
    """The analysis's track rows (without crops and embeddings), by track id."""
    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT track_id, identity_id, class_name, first_frame, last_frame, "
                "first_timestamp, last_timestamp, length, mean_confidence, best_frame, "
                "best_bbox FROM apps_db_track WHERE analysis_id = :a ORDER BY track_id"
            ),
            {"a": analysis_id},
        ).mappings()
        return [dict(r) for r in rows]


def stored_boxes(analysis_id: int, batch: int = 50_000) -> Detections:
    """Every detection row the analysis's chunks made (not the boxes its identity repair
    interpolated), sorted by frame: `tracker_id` (-1: untracked), `class_id` indexes
    `class_names` (the row's class), `frame` and `timestamp` columns; read with a
    server-side cursor into compact arrays, as the publish step reads staged boxes."""
    frames, stamps, tracks, boxes, scores, classes = [], [], [], [], [], []
    names: dict[str, int] = {}
    with session_scope() as session:
        raw = session.connection().connection.driver_connection
        with raw.cursor(name="capstone_stored_boxes") as cur:
            cur.itersize = batch
            cur.execute(
                "SELECT frame_number, timestamp, track_id, bbox, confidence, class_name "
                "FROM apps_db_event WHERE analysis_id = %s AND event_type = 'detection' "
                "AND NOT coalesce((attributes->>'interpolated')::boolean, false) "
                "ORDER BY frame_number, id",
                (analysis_id,),
            )
            while part := cur.fetchmany(batch):
                f, t, k, b, c, n = zip(*part, strict=True)
                frames.append(np.array(f, np.int64))
                stamps.append(np.array(t, np.float64))
                tracks.append(np.array([-1 if v is None else v for v in k], np.int64))
                boxes.append(np.array(b, np.float64).reshape(-1, 4))
                scores.append(np.array([v if v is not None else 0.0 for v in c], np.float64))
                classes.append(
                    np.array([names.setdefault(str(v), len(names)) for v in n], np.int64)
                )
    if not frames:
        return Detections(
            np.zeros((0, 4)),
            np.zeros(0),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            {},
            {"frame": np.zeros(0, np.int64), "timestamp": np.zeros(0)},
        )
    return Detections(
        np.concatenate(boxes),
        np.concatenate(scores),
        np.concatenate(classes),
        np.concatenate(tracks),
        {i: name for name, i in names.items()},
        {"frame": np.concatenate(frames), "timestamp": np.concatenate(stamps)},
    )


def _columns(table: str) -> list[str]:
    model = RESULT_TABLES[table]
    return [
        c.name
        for c in model.__table__.columns  # type: ignore[attr-defined]
        if c.name != "id" and c.computed is None
    ]


def _copy_table(
    session: Session,
    table: str,
    source_id: int,
    target_id: int,
    event_types: Sequence[str] | None = None,
) -> int:
    """INSERT ... SELECT the source analysis's rows of `table` as the target's (in id order)."""
    columns = _columns(table)
    select = [":t" if c == "analysis_id" else c for c in columns]
    where = "AND event_type = ANY(:k) " if event_types is not None else ""
    result = session.execute(
        text(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(select)} "
            f"FROM {table} WHERE analysis_id = :s {where}ORDER BY id"
        ),
        {"s": source_id, "t": target_id, "k": list(event_types or ())},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def publish_reused(
    session: Session,
    lease: analyses.Lease,
    *,
    source_id: int,
    video_id: str,
    keep_event_types: Sequence[str],
    rows: Rows,
    source_finished_at: Any = None,
    fail_after: str | None = None,
) -> dict[str, int]:
    """Inside the publishing transaction (fenced by the analysis lease): replace the
    analysis's result rows with the source analysis's upstream rows (its events only of
    `keep_event_types`) plus `rows` (made by the recomputed stages), and copy the source's
    basis. Returns counts per table. The source must still be the completed result that
    was read (`source_finished_at`), else nothing is stored (it was re-run meanwhile).
    `fail_after` names a table after which an error is raised (the tests' proof that a
    failed publish leaves the previous result)."""
    lift_timeouts(session)
    analyses.fence(session, lease)
    a = lease.analysis_id
    same = session.execute(
        text(
            "SELECT 1 FROM apps_db_videoanalysis WHERE id = :s AND status = 'completed' "
            "AND finished_at IS NOT DISTINCT FROM :f FOR SHARE"
        ),
        {"s": source_id, "f": source_finished_at},
    ).first()
    if same is None:
        raise RuntimeError(
            f"analysis {source_id} changed while its rows were being reused; run again"
        )
    made_by_table = by_table(rows)
    for table in RESULT_TABLES:
        session.execute(text(f"DELETE FROM {table} WHERE analysis_id = :a"), {"a": a})
    counts: dict[str, int] = {}
    for table in RESULT_TABLES:
        types = keep_event_types if table == "apps_db_event" else None
        counts[table] = _copy_table(session, table, source_id, a, types)
        made = [{**r, "video_id": video_id, "analysis_id": a} for r in made_by_table.get(table, [])]
        counts[table] += copy_rows(session, table, made)
        if fail_after == table:
            raise RuntimeError(f"injected failure after storing {table}")
    session.execute(
        text(
            f"INSERT INTO {BASIS_TABLE} (analysis_id, video_id, upstream_hash, frames, "
            "timestamps, track_ids, confidence_sums) SELECT :t, video_id, upstream_hash, "
            f"frames, timestamps, track_ids, confidence_sums FROM {BASIS_TABLE} "
            "WHERE analysis_id = :s ON CONFLICT (analysis_id) DO UPDATE SET "
            "video_id = excluded.video_id, upstream_hash = excluded.upstream_hash, "
            "frames = excluded.frames, timestamps = excluded.timestamps, "
            "track_ids = excluded.track_ids, confidence_sums = excluded.confidence_sums, "
            "created_at = now()"
        ),
        {"s": source_id, "t": a},
    )
    session.execute(text("DELETE FROM apps_db_analysischunk WHERE analysis_id = :a"), {"a": a})
    return counts
