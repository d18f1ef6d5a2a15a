"""Read-side queries shared by the FastAPI service and the dashboard.

Every function returns plain dicts (JSON-ready apart from `bytes`) and builds its SQL with
SQLModel expressions only; nothing is formatted into SQL text. Each accepts an optional
`session`; without one it opens a short read transaction of its own.

Results of one video come from one analysis: the one named by `analysis_id`, else the most
recently finished completed analysis of that video (a video analysed with two parameter sets
would otherwise show every detection twice).

>>> from capstone.store import queries
>>> queries.list_videos(status="completed", limit=10)  # doctest: +SKIP
{'items': [{'video_id': 'test-001', ...}], 'total': 1, 'limit': 10, 'offset': 0}
>>> queries.list_events("test-001", class_name="person", t_from=1.0, t_to=2.0)  # doctest: +SKIP
{'items': [{'frame_number': 25, 'class_name': 'person', ...}], 'total': 14, ...}
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, bindparam, case, func, text, tuple_
from sqlmodel import Session, col, select

from capstone.store.engine import get_engine, resolve_database_url
from capstone.store.tables import DepthData, DisplayData, Event, Track, Video, VideoAnalysis

MAX_PAGE = 1000
DISPLAY_KINDS = ("trails", "heatmap", "counts")

# The columns each read returns, in order: the API's response models are built from these
# (`service/schemas.py`), so a column is exposed by naming it here once.

VIDEO_FIELDS = (
    "video_id",
    "title",
    "source_uri",
    "sha256",
    "duration",
    "width",
    "height",
    "fps",
    "frame_count",
    "codec",
    "file_size",
    "status",
    "created_at",
    "updated_at",
)
ANALYSIS_FIELDS = (
    "id",
    "video_id",
    "status",
    "progress",
    "stage",
    "params",
    "params_hash",
    "error",
    "frames_processed",
    "chunks_done",
    "chunks_total",
    "fps",
    "summary",
    "attempts",
    "started_at",
    "finished_at",
    "created_at",
    "updated_at",
)
EVENT_FIELDS = (
    "id",
    "analysis_id",
    "frame_number",
    "timestamp",
    "event_type",
    "class_name",
    "confidence",
    "bbox",
    "track_id",
    "attributes",
    "description",
)
TRACK_FIELDS = (
    "track_id",
    "analysis_id",
    "identity_id",
    "class_name",
    "first_frame",
    "last_frame",
    "first_timestamp",
    "last_timestamp",
    "length",
    "mean_confidence",
    "best_frame",
    "best_bbox",
    "avg_depth",
    "min_depth",
    "max_depth",
)
DEPTH_FIELDS = (
    "frame_number",
    "track_id",
    "class_name",
    "bbox",
    "avg_depth",
    "min_depth",
    "max_depth",
    "depth_variance",
    "method",
)


_engines: dict[str, Engine] = {}


def _engine() -> Engine:
    """The configured engine, checked reachable once per URL (not on every read)."""
    url = resolve_database_url()
    if url not in _engines:
        _engines[url] = get_engine(url)
    return _engines[url]


@contextmanager
def read_session() -> Iterator[Session]:
    """One session for several reads (pass it as `session=` to the functions here), e.g. a
    result's version and its page read together; nothing is committed."""
    with Session(_engine(), expire_on_commit=False) as own:
        yield own


@contextmanager
def _reading(session: Session | None) -> Iterator[Session]:
    if session is not None:
        yield session
        return
    with read_session() as own:
        yield own


@contextmanager
def _connecting(session: Session | None) -> Iterator[Connection]:
    """A Core connection (the session's, or a pooled one): half the cost of an ORM session
    for statements that select columns."""
    if session is not None:
        yield session.connection()
        return
    with _engine().connect() as conn:
        yield conn


def _row(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in fields}


def _page(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(int(limit), MAX_PAGE)), max(0, int(offset))


def _empty_page(limit: int, offset: int) -> dict[str, Any]:
    return {
        "items": [],
        "total": 0,
        "limit": limit,
        "offset": offset,
        "analysis_id": None,
        "next": None,
    }


_COUNTS: OrderedDict[tuple[Any, ...], int] = OrderedDict()
_COUNTS_LOCK = threading.Lock()
_COUNTS_MAX = 4096


class CursorError(ValueError):
    """A paging cursor that this API did not hand out."""


_CURSOR_PART = re.compile(r"-?[0-9]{1,19}")


def parse_cursor(after: str) -> tuple[int, int]:
    """`"120:4711"` (the `next` of a page) -> (120, 4711).

    >>> parse_cursor("120:4711")
    (120, 4711)
    """
    head, sep, tail = after.partition(":")
    if not sep or not _CURSOR_PART.fullmatch(head) or not _CURSOR_PART.fullmatch(tail):
        raise CursorError(f"invalid cursor {after!r}: pass the `next` of the previous page")
    position, row_id = int(head), int(tail)
    if not (-(2**63) <= position < 2**63 and -(2**63) <= row_id < 2**63):
        raise CursorError(f"invalid cursor {after!r}: out of range (64-bit integers)")
    return position, row_id


def _total(
    s: Session,
    model: Any,
    conditions: list[Any],
    analysis_id: int,
    version: tuple[int, bool] | None = None,
) -> int:
    """COUNT(*) of the matching rows, computed once per completed result: the rows of a
    completed analysis cannot change until it is re-run, which bumps its `attempts`.
    `version` ((attempts, completed), when the caller knows it) saves a query."""
    if version is None:
        found = s.exec(
            select(VideoAnalysis.attempts, VideoAnalysis.status).where(
                VideoAnalysis.id == analysis_id
            )
        ).first()
        version = (found[0], found[1] == "completed") if found is not None else None
    key: tuple[Any, ...] | None = None
    if version is not None and version[1]:
        try:
            where = tuple(
                str(c.compile(compile_kwargs={"literal_binds": True})) for c in conditions
            )
            key = (model.__tablename__, analysis_id, version[0], where)
        except Exception:  # a condition without a literal form: count every time
            key = None
    if key is not None:
        with _COUNTS_LOCK:
            if key in _COUNTS:
                _COUNTS.move_to_end(key)
                return _COUNTS[key]
    count = select(func.count()).select_from(model).where(*conditions)
    total = int(s.connection().execute(count).scalar_one())
    if key is not None:
        with _COUNTS_LOCK:
            _COUNTS[key] = total
            while len(_COUNTS) > _COUNTS_MAX:
                _COUNTS.popitem(last=False)
    return total


def _paged(
    s: Session,
    model: Any,
    conditions: list[Any],
    order_by: tuple[Any, ...],
    fields: tuple[str, ...],
    limit: int,
    offset: int,
    analysis_id: int,
    after: str | None = None,
    version: tuple[int, bool] | None = None,
) -> dict[str, Any]:
    """One page of `model` rows matching `conditions` (only the listed columns), the total,
    and `next`: a keyset cursor (`after=`) whose page costs what the first page costs."""
    where = list(conditions)
    if after is not None:
        where.append(tuple_(*order_by) > tuple_(*parse_cursor(after)))
    keys = [c.key for c in order_by]
    names = list(fields) + [k for k in keys if k not in fields]
    columns = [model.__table__.c[name] for name in names]  # plain columns: cheaper
    query = select(*columns).where(*where).order_by(*order_by).offset(offset).limit(limit)
    result = s.connection().execute(query)  # Core: the ORM adds nothing to column rows
    rows = [dict(zip(names, row, strict=True)) for row in result.all()]
    items = [{name: row[name] for name in fields} for row in rows]
    cursor = f"{rows[-1][keys[0]]}:{rows[-1][keys[1]]}" if len(rows) == limit else None
    return {
        "items": items,
        "total": _total(s, model, conditions, analysis_id, version),
        "limit": limit,
        "offset": offset,
        "analysis_id": analysis_id,
        "next": cursor,
    }


def _analysis_for(session: Session, video_id: str, analysis_id: int | None) -> int | None:
    """The analysis whose results are shown for `video_id` (None: there is none)."""
    if analysis_id is not None:
        found = session.exec(
            select(VideoAnalysis.id).where(
                VideoAnalysis.id == analysis_id, VideoAnalysis.video_id == video_id
            )
        ).first()
        return int(found) if found is not None else None
    found = session.exec(
        select(VideoAnalysis.id)
        .where(VideoAnalysis.video_id == video_id, VideoAnalysis.status == "completed")
        .order_by(col(VideoAnalysis.finished_at).desc().nulls_last(), col(VideoAnalysis.id).desc())
        .limit(1)
    ).first()
    return int(found) if found is not None else None


def result_version(
    video_id: str, analysis_id: int | None = None, *, session: Session | None = None
) -> tuple[int | None, int, bool] | None:
    """In one query: None when the video does not exist, else the analysis whose results
    are shown (explicit, or the latest completed; None if there is none), its `attempts`
    (a re-run of that analysis bumps it: the version of the result, e.g. for an ETag) and
    whether it is completed (its rows cannot change until a re-run)."""
    with _reading(session) as s:
        row = (
            s.connection()
            .execute(
                text(
                    "SELECT v.video_id, a.id, a.attempts, a.status FROM apps_db_video v "
                    "LEFT JOIN LATERAL ("
                    "  SELECT id, attempts, status FROM apps_db_videoanalysis"
                    "  WHERE video_id = v.video_id"
                    "  AND (CASE WHEN :aid IS NULL THEN status = 'completed' ELSE id = :aid END)"
                    "  ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1) a ON true "
                    "WHERE v.video_id = :vid"
                ).bindparams(bindparam("aid", type_=BigInteger)),
                {"vid": video_id, "aid": analysis_id},
            )
            .first()
        )
        if row is None:
            return None
        if row[1] is None:
            return (None, 0, False)
        return (int(row[1]), int(row[2]), row[3] == "completed")


def list_videos(
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    *,
    session: Session | None = None,
) -> dict[str, Any]:
    """Videos, newest first, optionally of one status; with the total for paging."""
    limit, offset = _page(limit, offset)
    with _connecting(session) as conn:
        total_column = func.count().over().label("total")  # the total in the same query
        table = Video.__table__.c  # type: ignore[attr-defined]  (plain columns: cheaper)
        query = select(*(table[f] for f in VIDEO_FIELDS), total_column)
        if status is not None:
            query = query.where(table.status == status)
        rows = conn.execute(
            query.order_by(table.created_at.desc(), table.video_id).offset(offset).limit(limit)
        ).all()
        if rows:
            total = int(rows[0][-1])
        else:  # past the end (or nothing): count on its own
            count = select(func.count()).select_from(Video)
            if status is not None:
                count = count.where(Video.status == status)
            total = int(conn.execute(count).scalar_one())
    return {
        "items": [dict(zip(VIDEO_FIELDS, row[:-1], strict=True)) for row in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def get_video(video_id: str, *, session: Session | None = None) -> dict[str, Any] | None:
    """One video with its latest analysis (or None when the id is unknown): the latest
    completed one, whose results the reads show (as `result_version` picks it), else the
    latest attempt of any status. A failed or running re-analysis does not hide a completed
    result; every attempt is listed by `list_analyses`."""
    with _reading(session) as s:
        video = s.get(Video, video_id)
        if video is None:
            return None
        completed = col(VideoAnalysis.status) == "completed"
        latest = s.exec(
            select(VideoAnalysis)
            .where(VideoAnalysis.video_id == video_id)
            .order_by(
                case((completed, 0), else_=1),
                case((completed, col(VideoAnalysis.finished_at))).desc().nulls_last(),
                col(VideoAnalysis.updated_at).desc(),
                col(VideoAnalysis.id).desc(),
            )
            .limit(1)
        ).first()
        out = _row(video, VIDEO_FIELDS)
        out["latest_analysis"] = _row(latest, ANALYSIS_FIELDS) if latest else None
    return out


def video_exists(video_id: str, *, session: Session | None = None) -> bool:
    """Whether a video with this id is registered."""
    with _reading(session) as s:
        return s.exec(select(Video.video_id).where(Video.video_id == video_id)).first() is not None


def list_analyses(video_id: str, *, session: Session | None = None) -> list[dict[str, Any]]:
    """Every analysis run of a video, newest first, with status, progress, fps and error."""
    with _reading(session) as s:
        rows = s.exec(
            select(VideoAnalysis)
            .where(VideoAnalysis.video_id == video_id)
            .order_by(col(VideoAnalysis.created_at).desc(), col(VideoAnalysis.id).desc())
        ).all()
        return [_row(a, ANALYSIS_FIELDS) for a in rows]


def get_analysis(analysis_id: int, *, session: Session | None = None) -> dict[str, Any] | None:
    """One analysis row by id (the status source while it runs), with its lease: a
    `processing` row whose `lease_live` is false has lost its worker and may be retried."""
    with _reading(session) as s:
        row = s.get(VideoAnalysis, analysis_id)
        if row is None:
            return None
        out = _row(row, ANALYSIS_FIELDS)
        out["lease_expires_at"] = row.lease_expires_at
        out["lease_live"] = (
            row.status in ("pending", "processing")
            and row.lease_expires_at is not None
            and row.lease_expires_at > datetime.now(UTC)
        )
        return out


def list_events(
    video_id: str,
    event_type: str | None = None,
    class_name: str | None = None,
    track_id: int | None = None,
    t_from: float | None = None,
    t_to: float | None = None,
    limit: int = 100,
    offset: int = 0,
    *,
    analysis_id: int | None = None,
    after: str | None = None,
    version: tuple[int, int, bool] | None = None,
    session: Session | None = None,
) -> dict[str, Any]:
    """Events of a video in frame order, filtered by type, class, track and time range."""
    limit, offset = _page(limit, offset)
    with _reading(session) as s:
        chosen = version[0] if version else _analysis_for(s, video_id, analysis_id)
        if chosen is None:
            return _empty_page(limit, offset)
        conditions = [Event.video_id == video_id, Event.analysis_id == chosen]
        if event_type is not None:
            conditions.append(Event.event_type == event_type)
        if class_name is not None:
            conditions.append(Event.class_name == class_name)
        if track_id is not None:
            conditions.append(Event.track_id == track_id)
        if t_from is not None:
            conditions.append(col(Event.timestamp) >= t_from)
        if t_to is not None:
            conditions.append(col(Event.timestamp) <= t_to)
        return _paged(
            s,
            Event,
            conditions,
            (
                col(Event.frame_number),
                col(Event.id),
            ),
            EVENT_FIELDS,
            limit,
            offset,
            chosen,
            after=after,
            version=(version[1], version[2]) if version else None,
        )


def list_tracks(
    video_id: str,
    class_name: str | None = None,
    limit: int = 100,
    offset: int = 0,
    *,
    analysis_id: int | None = None,
    after: str | None = None,
    version: tuple[int, int, bool] | None = None,
    session: Session | None = None,
) -> dict[str, Any]:
    """Tracks of a video (no embeddings or crops), ordered by first appearance."""
    limit, offset = _page(limit, offset)
    with _reading(session) as s:
        chosen = version[0] if version else _analysis_for(s, video_id, analysis_id)
        if chosen is None:
            return _empty_page(limit, offset)
        conditions = [Track.video_id == video_id, Track.analysis_id == chosen]
        if class_name is not None:
            conditions.append(Track.class_name == class_name)
        return _paged(
            s,
            Track,
            conditions,
            (
                col(Track.first_frame),
                col(Track.track_id),
            ),
            TRACK_FIELDS,
            limit,
            offset,
            chosen,
            after=after,
            version=(version[1], version[2]) if version else None,
        )


def list_thumbnails(
    video_id: str, *, analysis_id: int | None = None, session: Session | None = None
) -> list[dict[str, Any]]:
    """Frame numbers and timestamps of the stored keyframe thumbnails of a video."""
    with _reading(session) as s:
        chosen = _analysis_for(s, video_id, analysis_id)
        if chosen is None:
            return []
        rows = s.exec(
            select(DisplayData.frame_number, DisplayData.timestamp)
            .where(
                DisplayData.video_id == video_id,
                DisplayData.analysis_id == chosen,
                DisplayData.kind == "thumbnail",
            )
            .order_by(col(DisplayData.frame_number))
        ).all()
    return [{"frame_number": f, "timestamp": t} for f, t in rows]


def get_thumbnail(
    video_id: str,
    frame_number: int,
    *,
    analysis_id: int | None = None,
    session: Session | None = None,
) -> bytes | None:
    """The JPEG bytes of the keyframe thumbnail at `frame_number` (None when absent)."""
    return _stored_bytes(
        DisplayData,
        DisplayData.image,
        video_id,
        analysis_id,
        session,
        DisplayData.kind == "thumbnail",
        DisplayData.frame_number == frame_number,
    )


def get_track_crop(
    video_id: str,
    track_id: int,
    *,
    analysis_id: int | None = None,
    session: Session | None = None,
) -> bytes | None:
    """The JPEG bytes of a track's best crop (`apps_db_track.best_crop`; None when absent)."""
    return _stored_bytes(
        Track, Track.best_crop, video_id, analysis_id, session, Track.track_id == track_id
    )


def _stored_bytes(
    table: Any,
    column: Any,
    video_id: str,
    analysis_id: int | None,
    session: Session | None,
    *where: Any,
) -> bytes | None:
    """`column` (bytes) of the row of `table` in the chosen analysis of `video_id` that
    matches `where`; None when there is no such analysis or row."""
    with _reading(session) as s:
        chosen = _analysis_for(s, video_id, analysis_id)
        if chosen is None:
            return None
        value = s.exec(
            select(column).where(table.video_id == video_id, table.analysis_id == chosen, *where)
        ).first()
    return bytes(value) if value is not None else None


def get_display_data(
    video_id: str,
    kind: str | None = None,
    *,
    analysis_id: int | None = None,
    session: Session | None = None,
) -> list[dict[str, Any]]:
    """Visualization data (trails, heatmap, counts timeline) of a video, without images."""
    with _reading(session) as s:
        chosen = _analysis_for(s, video_id, analysis_id)
        if chosen is None:
            return []
        conditions = [
            DisplayData.video_id == video_id,
            DisplayData.analysis_id == chosen,
            DisplayData.kind != "thumbnail",
        ]
        if kind is not None:
            conditions.append(DisplayData.kind == kind)
        rows = s.exec(
            select(DisplayData)
            .where(*conditions)
            .order_by(col(DisplayData.kind), col(DisplayData.frame_number))
        ).all()
        return [
            {
                "kind": d.kind,
                "frame_number": d.frame_number,
                "timestamp": d.timestamp,
                "data": d.data,
            }
            for d in rows
        ]


def get_depth(
    video_id: str,
    frame_from: int | None = None,
    frame_to: int | None = None,
    track_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
    *,
    analysis_id: int | None = None,
    after: str | None = None,
    version: tuple[int, int, bool] | None = None,
    session: Session | None = None,
) -> dict[str, Any]:
    """Per-object depth statistics of a video (no depth maps), in frame order."""
    limit, offset = _page(limit, offset)
    with _reading(session) as s:
        chosen = version[0] if version else _analysis_for(s, video_id, analysis_id)
        if chosen is None:
            return _empty_page(limit, offset)
        conditions = [DepthData.video_id == video_id, DepthData.analysis_id == chosen]
        if frame_from is not None:
            conditions.append(col(DepthData.frame_number) >= frame_from)
        if frame_to is not None:
            conditions.append(col(DepthData.frame_number) <= frame_to)
        if track_id is not None:
            conditions.append(DepthData.track_id == track_id)
        return _paged(
            s,
            DepthData,
            conditions,
            (
                col(DepthData.frame_number),
                col(DepthData.id),
            ),
            DEPTH_FIELDS,
            limit,
            offset,
            chosen,
            after=after,
            version=(version[1], version[2]) if version else None,
        )


def analysis_status_counts(*, session: Session | None = None) -> dict[str, int]:
    """How many analyses are in each status (for metrics and the dashboard header)."""
    with _reading(session) as s:
        rows = s.exec(
            select(VideoAnalysis.status, func.count()).group_by(VideoAnalysis.status)
        ).all()
    return {status: int(n) for status, n in rows}


def frames_processed_total(*, session: Session | None = None) -> int:
    """Frames processed by all analyses together."""
    with _reading(session) as s:
        total = s.exec(select(func.coalesce(func.sum(VideoAnalysis.frames_processed), 0))).one()
    return int(total)


def analysis_for_params(video_id: str, params_hash: str) -> dict[str, Any] | None:
    """The analysis of (video, params) as a request to run it again needs it: status,
    progress, who holds its lease and whether that lease is live, and the video's content
    hash and source. None when there is no such analysis."""
    with _reading(None) as s:
        row = s.exec(
            select(VideoAnalysis).where(
                VideoAnalysis.video_id == video_id, VideoAnalysis.params_hash == params_hash
            )
        ).first()
        if row is None:
            return None
        video = s.get(Video, video_id)
        return {
            "id": row.id,
            "status": row.status,
            "progress": row.progress,
            "lease_owner": row.lease_owner,
            "lease_live": row.lease_owner is not None
            and row.lease_expires_at is not None
            and row.lease_expires_at > datetime.now(UTC),
            "sha256": video.sha256 if video else None,
            "source_uri": video.source_uri if video else None,
        }


def video_sha256(video_id: str) -> str | None:
    """The content hash a video id names (None: unknown id, or not probed yet)."""
    with _connecting(None) as conn:
        found = conn.execute(select(Video.sha256).where(Video.video_id == video_id)).first()
    return found[0] if found is not None else None


def pending_analysis_exists() -> bool:
    """Whether any analysis waits for a worker."""
    with _connecting(None) as conn:
        query = select(VideoAnalysis.id).where(VideoAnalysis.status == "pending").limit(1)
        return conn.execute(query).first() is not None


def track_crop(video_id: str, analysis_id: int, track_id: int) -> bytes | None:
    """The JPEG best crop of a track (stored by the embed stage), else None."""
    with _connecting(None) as conn:
        crop = conn.execute(
            select(Track.best_crop).where(
                Track.video_id == video_id,
                Track.analysis_id == analysis_id,
                Track.track_id == track_id,
            )
        ).scalar()
    return bytes(crop) if crop is not None else None


def tracked_detections(
    video_id: str,
    analysis_id: int,
    class_name: str | None = None,
    *,
    identities: bool = False,
    url: str | None = None,
) -> list[tuple[int, int, list[float], float | None]]:
    """(frame_number, track id, bbox, confidence) of an analysis's detections that carry a
    track id, in frame then track order; `class_name=None` keeps every class. With
    `identities`, the id is the track's `identity_id` where it has one. `url`: another
    database than the configured one."""
    query = (
        select(Event.frame_number, Event.track_id, Event.bbox, Event.confidence)
        .where(Event.video_id == video_id)
        .where(Event.analysis_id == analysis_id)
        .where(Event.event_type == "detection")
        .where(col(Event.track_id).is_not(None))
        .order_by(col(Event.frame_number), col(Event.track_id))
    )
    if class_name is not None:
        query = query.where(Event.class_name == class_name)
    engine = get_engine(url) if url is not None else _engine()
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        identity_of: dict[int, int] = {}
        if identities:
            pairs = conn.execute(
                select(Track.track_id, Track.identity_id)
                .where(Track.video_id == video_id)
                .where(Track.analysis_id == analysis_id)
            ).all()
            identity_of = {int(t): int(i) for t, i in pairs if i is not None}
    return [
        (int(f), identity_of.get(int(t), int(t)), list(bbox), conf) for f, t, bbox, conf in rows
    ]


def analysis_notebook(analysis_id: int) -> tuple[bool, dict[str, Any] | None]:
    """(whether the analysis exists, the executed notebook stored with it or None)."""
    with _connecting(None) as conn:
        found = conn.execute(
            select(VideoAnalysis.notebook).where(VideoAnalysis.id == analysis_id)
        ).first()
    return (False, None) if found is None else (True, found[0])


def first_frame_embedding(video_id: str) -> str | None:
    """The first keyframe embedding of a video as pgvector text (`[0.1,0.2,...]`), or None."""
    with _connecting(None) as conn:
        return conn.execute(
            text(
                "SELECT embedding::text FROM frame_embeddings WHERE video_id = :v "
                "ORDER BY frame_number LIMIT 1"
            ),
            {"v": video_id},
        ).scalar()


def run_sql(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read statement given verbatim (the SPEC section 6 verification queries):
    its column names and rows. The transaction is rolled back, whatever the statement."""
    with _connecting(None) as conn:
        try:
            result = conn.execute(text(sql))
            if not result.returns_rows:
                return [], []
            return list(result.keys()), [tuple(r) for r in result.all()]
        finally:
            conn.rollback()
