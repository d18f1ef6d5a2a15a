"""Export an analysis's results to files, and import MOTChallenge results as an analysis.

Formats (`FORMATS`):

- `mot`: the tracked detections as MOTChallenge rows `frame,id,x,y,w,h,conf,-1,-1,-1`
  (1-based frames; `id` the track's repaired identity, else its track id, -1 for boxes
  without a track; conf 1 where none was stored, e.g. interpolated boxes), by frame then id.
- `csv` / `parquet`: one file per table (`TABLES`: events, tracks with their identity,
  depth and confidence, depth rows), columns in `COLUMNS`.
- `coco`: COCO-style JSON: `images` are the sampled frames (with `frame_number` and
  `timestamp`), `annotations` the detections (`track_id`, `score`), `categories` the
  classes.

Everything streams: CSV through `COPY ... TO STDOUT`, the other formats through a
server-side cursor in batches; no export holds all rows in memory.

`import_mot` stores a MOTChallenge file (a tracker's output, or detections with id -1)
as a completed analysis of a video, in one transaction, so external trackers' results
can be browsed, searched, exported and scored like the pipeline's own.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text

from capstone.errors import InputError
from capstone.io.mot import MotRow
from capstone.store import analyses
from capstone.store.bulk import RESULT_TABLES, copy_rows
from capstone.store.engine import lift_timeouts, session_scope

FORMATS = ("mot", "coco", "csv", "parquet")
TABLES = ("events", "tracks", "depth")
BATCH = 20_000


@dataclass(frozen=True)
class Column:
    name: str
    sql: str
    arrow: str  # pyarrow type factory: int64, float64, string, bool_


# The columns of each exported table (CSV header and Parquet schema alike).
COLUMNS: dict[str, tuple[Column, ...]] = {
    "events": (
        Column("frame_number", "frame_number", "int64"),
        Column("timestamp", "timestamp", "float64"),
        Column("event_type", "event_type", "string"),
        Column("class_name", "class_name", "string"),
        Column("confidence", "confidence", "float64"),
        Column("track_id", "track_id", "int64"),
        Column("x1", "bbox[1]", "float64"),
        Column("y1", "bbox[2]", "float64"),
        Column("x2", "bbox[3]", "float64"),
        Column("y2", "bbox[4]", "float64"),
        Column("attributes", "attributes::text", "string"),
        Column("description", "description", "string"),
    ),
    "tracks": (
        Column("track_id", "track_id", "int64"),
        Column("identity_id", "identity_id", "int64"),
        Column("class_name", "class_name", "string"),
        Column("first_frame", "first_frame", "int64"),
        Column("last_frame", "last_frame", "int64"),
        Column("first_timestamp", "first_timestamp", "float64"),
        Column("last_timestamp", "last_timestamp", "float64"),
        Column("length", "length", "int64"),
        Column("mean_confidence", "mean_confidence", "float64"),
        Column("best_frame", "best_frame", "int64"),
        Column("best_x1", "best_bbox[1]", "float64"),
        Column("best_y1", "best_bbox[2]", "float64"),
        Column("best_x2", "best_bbox[3]", "float64"),
        Column("best_y2", "best_bbox[4]", "float64"),
        Column("avg_depth", "avg_depth", "float64"),
        Column("min_depth", "min_depth", "float64"),
        Column("max_depth", "max_depth", "float64"),
        Column("has_embedding", "embedding IS NOT NULL", "bool_"),
        Column("has_reid_embedding", "reid_embedding IS NOT NULL", "bool_"),
    ),
    "depth": (
        Column("frame_number", "frame_number", "int64"),
        Column("track_id", "track_id", "int64"),
        Column("class_name", "class_name", "string"),
        Column("x1", "bbox[1]", "float64"),
        Column("y1", "bbox[2]", "float64"),
        Column("x2", "bbox[3]", "float64"),
        Column("y2", "bbox[4]", "float64"),
        Column("avg_depth", "avg_depth", "float64"),
        Column("min_depth", "min_depth", "float64"),
        Column("max_depth", "max_depth", "float64"),
        Column("depth_variance", "depth_variance", "float64"),
        Column("method", "method", "string"),
    ),
}
_SOURCE = {
    "events": ("apps_db_event", "frame_number, id"),
    "tracks": ("apps_db_track", "track_id"),
    "depth": ("apps_db_depthdata", "frame_number, id"),
}


def resolve_analysis(video_id: str, analysis_id: int | None = None) -> int:
    """`analysis_id` when it is an analysis of `video_id`, else the video's latest
    completed analysis; `InputError` when there is none."""
    with session_scope() as session:
        if analysis_id is not None:
            found = session.execute(
                text("SELECT id FROM apps_db_videoanalysis WHERE id = :a AND video_id = :v"),
                {"a": analysis_id, "v": video_id},
            ).scalar()
            if found is None:
                raise InputError(f"video {video_id!r} has no analysis {analysis_id}")
            return int(found)
        found = session.execute(
            text(
                "SELECT id FROM apps_db_videoanalysis WHERE video_id = :v AND status = "
                "'completed' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1"
            ),
            {"v": video_id},
        ).scalar()
    if found is None:
        raise InputError(f"video {video_id!r} has no completed analysis")
    return int(found)


def _select(table: str, analysis_id: int) -> str:
    source, order = _SOURCE[table]
    columns = ", ".join(f"{c.sql} AS {c.name}" for c in COLUMNS[table])
    return f"SELECT {columns} FROM {source} WHERE analysis_id = {int(analysis_id)} ORDER BY {order}"


def _cursor_rows(sql: str, params: tuple[Any, ...] = ()) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of rows of `sql` from a server-side cursor (one transaction)."""
    with session_scope() as session:
        raw = session.connection().connection.driver_connection
        with raw.cursor(name="capstone_export") as cur:
            cur.itersize = BATCH
            cur.execute(sql, params)
            while part := cur.fetchmany(BATCH):
                yield part


def iter_csv(analysis_id: int, table: str) -> Iterator[bytes]:
    """A table of the analysis as CSV with a header row, streamed by `COPY ... TO STDOUT`."""
    if table not in COLUMNS:
        raise InputError(f"no table {table!r} to export (one of {', '.join(TABLES)})")
    with session_scope() as session:
        lift_timeouts(session)
        raw = session.connection().connection.driver_connection
        with raw.cursor() as cur, cur.copy(
            f"COPY ({_select(table, analysis_id)}) TO STDOUT WITH (FORMAT csv, HEADER)"
        ) as copy:  # fmt: skip
            for block in copy:
                yield bytes(block)


class _Blocks(io.RawIOBase):
    """A readable stream over an iterator of byte blocks (`COPY ... TO STDOUT`)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self.blocks, self.pending = blocks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            block = next(self.blocks, None)
            if block is None:
                return 0
            self.pending = block
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def write_parquet(analysis_id: int, table: str, sink: str | Path | IO[bytes]) -> int:
    """A table of the analysis as Parquet; returns the rows written. The rows stream from
    `COPY ... TO STDOUT` (CSV) through Arrow's streaming CSV reader, one record batch (a row
    group) at a time, with the types of `COLUMNS`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if table not in COLUMNS:
        raise InputError(f"no table {table!r} to export (one of {', '.join(TABLES)})")
    schema = pa.schema([(c.name, getattr(pa, c.arrow)()) for c in COLUMNS[table]])
    reader = pacsv.open_csv(
        io.BufferedReader(_Blocks(iter_csv(analysis_id, table)), 1 << 20),
        read_options=pacsv.ReadOptions(block_size=8 << 20),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            strings_can_be_null=True,  # COPY writes NULL unquoted and '' quoted
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    n = 0
    with pq.ParquetWriter(sink, schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            n += batch.num_rows
        if n == 0:
            writer.write_table(schema.empty_table())
    return n


def _num(value: float) -> str:
    """A number as `capstone.io.mot.format_mot` writes it."""
    return f"{round(value, 3):.10g}"


def iter_mot(analysis_id: int) -> Iterator[bytes]:
    """The analysis's detections as MOTChallenge rows (see the module docstring)."""
    sql = (
        "SELECT e.frame_number + 1, coalesce(t.identity_id, e.track_id, -1) AS tid, "
        "e.bbox[1], e.bbox[2], e.bbox[3] - e.bbox[1], e.bbox[4] - e.bbox[2], "
        "coalesce(e.confidence, 1.0) FROM apps_db_event e LEFT JOIN apps_db_track t "
        "ON t.analysis_id = e.analysis_id AND t.track_id = e.track_id "
        "WHERE e.analysis_id = %s AND e.event_type = 'detection' ORDER BY 1, 2, e.id"
    )
    for part in _cursor_rows(sql, (analysis_id,)):
        yield "".join(
            f"{f},{tid},{_num(x)},{_num(y)},{_num(w)},{_num(h)},{_num(c)},-1,-1,-1\n"
            for f, tid, x, y, w, h, c in part
        ).encode()


def iter_coco(analysis_id: int) -> Iterator[bytes]:
    """The analysis as COCO-style JSON (see the module docstring), written piece by piece."""
    with session_scope() as session:
        head = session.execute(
            text(
                "SELECT a.video_id, v.width, v.height, v.fps FROM apps_db_videoanalysis a "
                "JOIN apps_db_video v ON v.video_id = a.video_id WHERE a.id = :a"
            ),
            {"a": analysis_id},
        ).one()
        classes = session.execute(
            text(
                "SELECT DISTINCT class_name FROM apps_db_event WHERE analysis_id = :a "
                "AND event_type = 'detection' AND class_name IS NOT NULL ORDER BY 1"
            ),
            {"a": analysis_id},
        ).scalars().all()  # fmt: skip
        basis = session.execute(
            text("SELECT frames, timestamps FROM apps_db_analysisbasis WHERE analysis_id = :a"),
            {"a": analysis_id},
        ).first()
    category = {name: i for i, name in enumerate(classes, start=1)}
    info = {"description": f"capstone analysis {analysis_id} of video {head.video_id}",
            "video_id": head.video_id, "analysis_id": analysis_id, "fps": head.fps}  # fmt: skip
    yield b'{"info": ' + json.dumps(info).encode() + b', "images": ['

    def image(frame: int, timestamp: float) -> dict[str, Any]:
        return {"id": frame + 1, "file_name": f"{head.video_id}/{frame:06d}.jpg",
                "frame_number": frame, "timestamp": round(float(timestamp), 4),
                "width": head.width, "height": head.height}  # fmt: skip

    if basis is not None:  # every sampled frame, with or without boxes
        import numpy as np

        frames = np.frombuffer(basis.frames, "<i8").tolist()
        stamps = np.frombuffer(basis.timestamps, "<f8").tolist()
        parts: Iterable[list[tuple[Any, ...]]] = [list(zip(frames, stamps, strict=True))]
    else:  # the frames with a detection
        parts = _cursor_rows(
            "SELECT frame_number, min(timestamp) FROM apps_db_event WHERE analysis_id = %s "
            "AND event_type = 'detection' GROUP BY frame_number ORDER BY frame_number",
            (analysis_id,),
        )
    first = True
    for part in parts:
        for start in range(0, len(part), BATCH):
            text_part = ", ".join(json.dumps(image(f, t)) for f, t in part[start : start + BATCH])
            if text_part:
                yield (b"" if first else b", ") + text_part.encode()
                first = False
    yield (
        b'], "categories": '
        + json.dumps([{"id": i, "name": n} for n, i in category.items()]).encode()
        + b', "annotations": ['
    )
    sql = (
        "SELECT e.id, e.frame_number, e.class_name, e.bbox, e.confidence, "
        "coalesce(t.identity_id, e.track_id) FROM apps_db_event e LEFT JOIN apps_db_track t "
        "ON t.analysis_id = e.analysis_id AND t.track_id = e.track_id "
        "WHERE e.analysis_id = %s AND e.event_type = 'detection' ORDER BY e.frame_number, e.id"
    )
    first = True
    n = 0
    for part in _cursor_rows(sql, (analysis_id,)):
        items = []
        for _, frame, name, bbox, conf, tid in part:
            n += 1
            x1, y1, x2, y2 = bbox
            w, h = x2 - x1, y2 - y1
            items.append(json.dumps({
                "id": n, "image_id": frame + 1, "category_id": category.get(name, 0),
                "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
                "area": round(w * h, 2), "iscrowd": 0, "score": conf, "track_id": tid,
            }))  # fmt: skip
        yield (b"" if first else b", ") + ", ".join(items).encode()
        first = False
    yield b"]}\n"


def file_name(video_id: str, fmt: str, table: str | None = None) -> str:
    """The name an export is written under (`capstone export`, the HTTP download)."""
    if fmt == "mot":
        return f"{video_id}.mot.txt"
    if fmt == "coco":
        return f"{video_id}.coco.json"
    return f"{video_id}-{table}.{fmt}"


def export(
    video_id: str,
    fmt: str,
    out_dir: str | Path,
    *,
    analysis_id: int | None = None,
    tables: Iterable[str] = TABLES,
) -> list[Path]:
    """Write the analysis (default: the video's latest completed) in `fmt` into `out_dir`;
    returns the files written."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    analysis = resolve_analysis(video_id, analysis_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if fmt in ("mot", "coco"):
        path = out / file_name(video_id, fmt)
        with path.open("wb") as fh:
            for block in (iter_mot if fmt == "mot" else iter_coco)(analysis):
                fh.write(block)
        return [path]
    for table in tables:
        path = out / file_name(video_id, fmt, table)
        if fmt == "csv":
            with path.open("wb") as fh:
                for block in iter_csv(analysis, table):
                    fh.write(block)
        else:
            write_parquet(analysis, table, path)
        written.append(path)
    return written


# -- import ------------------------------------------------------------------------------


def stored_fps(video_id: str) -> float | None:
    """The frame rate stored for the video, if it is known."""
    with session_scope() as session:
        value = session.execute(
            text("SELECT fps FROM apps_db_video WHERE video_id = :v"), {"v": video_id}
        ).scalar()
    return float(value) if value else None


def import_mot(
    rows: Iterable[MotRow],
    *,
    video_id: str,
    params: analyses.AnalysisParams,
    fps: float,
    class_name: str = "person",
    info: Any = None,
    summary: dict[str, Any] | None = None,
) -> tuple[int, dict[str, int]]:
    """Store MOT rows (1-based frames; id -1: an untracked detection) as the completed
    analysis (`video_id`, `params`), replacing its rows in one transaction: detection
    events and one track per id (first/last frame, length, mean confidence, best box).
    Returns the analysis id and the rows stored per table."""
    owner = analyses.worker_id()
    lease = analyses.claim_analysis(video_id, params, owner, info=info)
    a = lease.analysis_id
    try:
        with session_scope() as session:
            lift_timeouts(session)
            analyses.fence(session, lease)
            for table in RESULT_TABLES:
                session.execute(text(f"DELETE FROM {table} WHERE analysis_id = :a"), {"a": a})
            session.execute(
                text("DELETE FROM apps_db_analysisbasis WHERE analysis_id = :a"), {"a": a}
            )
            n, batch, frames = 0, [], set()
            for r in rows:
                if r.frame < 1:
                    raise InputError(f"MOT frame numbers start at 1 (found {r.frame})")
                frame = r.frame - 1
                frames.add(frame)
                batch.append({
                    "video_id": video_id, "analysis_id": a, "frame_number": frame,
                    "timestamp": round(frame / fps, 4), "event_type": "detection",
                    "class_name": class_name, "confidence": float(r.score),
                    "bbox": [r.x, r.y, r.x + r.w, r.y + r.h],
                    "track_id": int(r.track_id) if r.track_id >= 0 else None,
                })  # fmt: skip
                if len(batch) >= BATCH:
                    n += copy_rows(session, "apps_db_event", batch)
                    batch = []
            n += copy_rows(session, "apps_db_event", batch)
            tracks = session.execute(
                text(
                    "INSERT INTO apps_db_track (video_id, analysis_id, track_id, class_name, "
                    "first_frame, last_frame, first_timestamp, last_timestamp, length, "
                    "mean_confidence, best_frame, best_bbox) SELECT :v, :a, g.track_id, "
                    "g.class_name, g.first_frame, g.last_frame, g.first_ts, g.last_ts, g.n, "
                    "g.mean_conf, b.frame_number, b.bbox FROM (SELECT track_id, "
                    "min(class_name) AS class_name, min(frame_number) AS first_frame, "
                    "max(frame_number) AS last_frame, min(timestamp) AS first_ts, "
                    "max(timestamp) AS last_ts, count(*) AS n, avg(confidence) AS mean_conf "
                    "FROM apps_db_event WHERE analysis_id = :a AND track_id IS NOT NULL "
                    "GROUP BY track_id) g JOIN (SELECT DISTINCT ON (track_id) track_id, "
                    "frame_number, bbox FROM apps_db_event WHERE analysis_id = :a AND "
                    "track_id IS NOT NULL ORDER BY track_id, confidence DESC, frame_number) b "
                    "USING (track_id) ORDER BY g.track_id"
                ),
                {"a": a, "v": video_id},
            ).rowcount  # type: ignore[attr-defined]
            counts = {"apps_db_event": n, "apps_db_track": int(tracks or 0)}
            analyses.mark_completed(
                session,
                lease,
                frames_processed=len(frames),
                fps=0.0,
                summary={**(summary or {}), "counts": counts, "frames_processed": len(frames),
                         "events_per_type": {"detection": n} if n else {}},
            )  # fmt: skip
    except BaseException as exc:
        analyses.mark_failed(lease, f"import failed: {exc}", retryable=False)
        raise
    return a, counts
