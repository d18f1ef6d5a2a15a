"""Video and analysis rows: registration, the lease, progress, completion and failure.

Each function is one short transaction of its own, so progress is visible to the API and
dashboard while the analysis runs. Rows are created with `INSERT ... ON CONFLICT`, so any
number of concurrent requests for a new video or analysis create exactly one row.

The lease (`lease_owner`, `lease_expires_at`) keeps a second worker from running the same
analysis at the same time; an expired lease (a killed worker) can be taken over. Every write
of a running analysis is *fenced*: it carries the `Lease` (owner and the `attempts` counter
at claim time, the fencing token) and is refused in the same transaction when the row has
moved on, so a stale owner can neither store its result nor fail the new owner's run.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from capstone.core.video import VideoInfo
from capstone.errors import CapstoneError
from capstone.store.engine import session_scope
from capstone.store.tables import Video, VideoAnalysis


class AnalysisParams(Protocol):
    """What the store needs of an analysis's parameters (`capstone.stages.params`): the
    canonical JSON it stores and the hash that names the result."""

    def canonical(self) -> dict[str, Any]: ...

    def params_hash(self) -> str: ...


log = logging.getLogger(__name__)

LEASE_SECONDS = 120


class AnalysisBusyError(CapstoneError):
    """The same analysis is running elsewhere (its lease is live)."""

    exit_code = 6
    http_status = 409
    retryable = True  # once the other run ends or its lease expires
    code = "analysis_running"

    def __init__(self, analysis_id: int, status: str, progress: float) -> None:
        super().__init__(
            f"analysis {analysis_id} is already {status} elsewhere ({progress:.0f}% done)"
        )
        self.analysis_id, self.status, self.progress = analysis_id, status, progress


class LeaseLostError(CapstoneError):
    """Another worker took the analysis over (this worker's lease expired); stop writing."""

    exit_code = 6
    http_status = 409
    retryable = True  # the new owner carries on
    code = "lease_lost"


class ContentConflictError(CapstoneError):
    """The video id already names a video with different content."""

    exit_code = 4
    http_status = 409
    retryable = False
    code = "content_conflict"


@dataclass(frozen=True)
class Lease:
    """Who runs an analysis: the owner and its fencing token (`attempts` at claim time)."""

    analysis_id: int
    owner: str
    token: int
    seconds: int = LEASE_SECONDS


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def now() -> datetime:
    return datetime.now(UTC)


def _video_for_update(session: Session, video_id: str, title: str | None = None) -> Video:
    """The video row, created if missing (`ON CONFLICT DO NOTHING`), locked for update."""
    session.execute(
        insert(Video)
        .values(video_id=video_id, title=title or video_id, status="pending")
        .on_conflict_do_nothing(index_elements=["video_id"])
    )
    return session.exec(select(Video).where(Video.video_id == video_id).with_for_update()).one()


def upsert_video(
    session: Session,
    video_id: str,
    *,
    info: VideoInfo | None = None,
    title: str | None = None,
    source_uri: str | None = None,
    status: str | None = None,
) -> Video:
    """Create or update a video row. A completed video keeps its title and source: only a
    request that stores a result may change what a completed analysis depends on, and the
    content (sha256) of a video id never changes (`ContentConflictError`)."""
    video = _video_for_update(session, video_id, title)
    if info is not None:
        if video.sha256 and video.sha256 != info.sha256:
            raise ContentConflictError(
                f"video {video_id!r} already holds different content "
                f"(sha256 {video.sha256[:12]}…, this file {info.sha256[:12]}…); "
                "use another video id"
            )
        video.sha256 = info.sha256
        video.duration = info.duration
        video.width, video.height = info.width, info.height
        video.fps = info.fps
        video.frame_count = info.frame_count
        video.codec = info.codec
        video.file_size = info.file_size
    settled = video.status == "completed"
    if title is not None and (not settled or video.title in (None, video_id)):
        video.title = title
    if source_uri is not None and (not settled or video.source_uri is None):
        video.source_uri = source_uri
    if status is not None:
        video.status = status
    video.updated_at = now()
    session.add(video)
    return video


def register_video(
    video_id: str,
    *,
    info: VideoInfo | None = None,
    title: str | None = None,
    source_uri: str | None = None,
    status: str | None = None,
) -> None:
    """`upsert_video` in a transaction of its own."""
    with session_scope() as session:
        upsert_video(
            session, video_id, info=info, title=title, source_uri=source_uri, status=status
        )


def find_analysis(session: Session, video_id: str, params_hash: str) -> VideoAnalysis | None:
    return session.exec(
        select(VideoAnalysis).where(
            VideoAnalysis.video_id == video_id, VideoAnalysis.params_hash == params_hash
        )
    ).first()


def _analysis_row(session: Session, video_id: str, params: AnalysisParams) -> VideoAnalysis:
    """The (video, params) analysis row, created `pending` if missing, locked for update."""
    params_hash = params.params_hash()
    session.execute(
        insert(VideoAnalysis)
        .values(
            video_id=video_id,
            status="pending",
            progress=0.0,
            params=params.canonical(),
            params_hash=params_hash,
            frames_processed=0,
            attempts=0,
        )
        .on_conflict_do_nothing(constraint="uq_analysis_video_params")
    )
    return session.exec(
        select(VideoAnalysis)
        .where(VideoAnalysis.video_id == video_id, VideoAnalysis.params_hash == params_hash)
        .with_for_update()
    ).one()


def _lease_live(row: VideoAnalysis, t: datetime) -> bool:
    return (
        row.status in ("pending", "processing")
        and row.lease_owner is not None
        and row.lease_expires_at is not None
        and row.lease_expires_at > t
    )


def register_pending(
    video_id: str, params: AnalysisParams, source_uri: str | None = None, title: str | None = None
) -> int:
    """Make sure the video and a `pending` analysis row exist (a failed one is reset to
    pending); return its id. A worker's `claim_analysis` later takes the row over."""
    with session_scope() as session:
        upsert_video(session, video_id, title=title, source_uri=source_uri)
        session.flush()
        row = _analysis_row(session, video_id, params)
        dead = row.status == "processing" and not _lease_live(row, now())
        if row.status == "failed" or dead or (row.status == "pending" and row.error):
            row.status, row.error, row.progress, row.stage = "pending", None, 0.0, None
            row.lease_owner, row.lease_expires_at = None, None
        if row.status == "pending" and source_uri is not None:
            row.source_uri = source_uri
        row.updated_at = now()
        session.add(row)
        return int(row.id or 0)


def claim_next_pending(owner: str, *, dispatch_seconds: int = 60) -> dict[str, Any] | None:
    """The oldest `pending` analysis of an `s3://` object that nobody holds, taken for
    `owner` (a short lease while it starts; `claim_analysis` by the same owner follows).
    Concurrent workers never get the same row (`FOR UPDATE SKIP LOCKED`)."""
    with session_scope() as session:
        row = (
            session.execute(
                text(
                    "UPDATE apps_db_videoanalysis SET lease_owner = :o, updated_at = now(), "
                    "lease_expires_at = now() + make_interval(secs => :d) "
                    "WHERE id = (SELECT id FROM apps_db_videoanalysis WHERE status = 'pending' "
                    "  AND source_uri LIKE 's3://%' "
                    "  AND (lease_expires_at IS NULL OR lease_expires_at < now()) "
                    "  ORDER BY updated_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                    "RETURNING id, video_id, params, source_uri"
                ),
                {"o": owner, "d": dispatch_seconds},
            )
            .mappings()
            .first()
        )
        return dict(row) if row is not None else None


def fail_pending(analysis_id: int, owner: str, reason: str) -> None:
    """A pending row this worker took but must not run (e.g. a bucket not allowed)."""
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE apps_db_videoanalysis SET status = 'failed', error = :r, "
                "summary = '{\"retryable\": false}'::jsonb, lease_owner = NULL, "
                "lease_expires_at = NULL, finished_at = now(), updated_at = now() "
                "WHERE id = :i AND lease_owner = :o AND status = 'pending'"
            ),
            {"i": analysis_id, "o": owner, "r": reason[:2000]},
        )


def claim_analysis(
    video_id: str,
    params: AnalysisParams,
    owner: str,
    *,
    info: VideoInfo | None = None,
    title: str | None = None,
    source_uri: str | None = None,
    lease_seconds: int = LEASE_SECONDS,
) -> Lease:
    """Create or take over the analysis row for (video, params) and hold its lease.

    Raises `AnalysisBusyError` if another owner holds a live lease and
    `ContentConflictError` if the video id holds different content.
    """
    with session_scope() as session:
        upsert_video(
            session, video_id, info=info, title=title, source_uri=source_uri, status="processing"
        )
        session.flush()
        row = _analysis_row(session, video_id, params)
        t = now()
        if _lease_live(row, t) and row.lease_owner != owner:
            raise AnalysisBusyError(row.id or 0, row.status, row.progress)
        row.status, row.stage, row.progress, row.error = "processing", "probe", 0.0, None
        row.chunks_done = row.frames_processed = 0  # counted again from the staged chunks
        row.lease_owner, row.lease_expires_at = owner, t + timedelta(seconds=lease_seconds)
        if source_uri is not None:
            row.source_uri = source_uri
        row.attempts += 1
        row.started_at, row.finished_at = t, None
        row.updated_at = t
        session.add(row)
        session.flush()
        return Lease(int(row.id or 0), owner, row.attempts, lease_seconds)


def join_analysis(
    video_id: str,
    params: AnalysisParams,
    *,
    info: VideoInfo,
    title: str | None = None,
    source_uri: str | None = None,
) -> tuple[int, str]:
    """For a worker of some chunks only (e.g. a Batch array child): make sure the video and
    analysis rows exist, without taking the analysis's lease (the publishing worker takes
    it). Returns (analysis id, status); a `pending` or `failed` row becomes `processing`.
    Raises `ContentConflictError` like `claim_analysis`."""
    with session_scope() as session:
        upsert_video(session, video_id, info=info, title=title, source_uri=source_uri)
        session.flush()
        row = _analysis_row(session, video_id, params)
        if row.status in ("pending", "failed") and not _lease_live(row, now()):
            row.status, row.stage, row.error = "processing", "analyze", None
            row.started_at = row.started_at or now()
            if source_uri is not None:
                row.source_uri = source_uri
            row.updated_at = now()
            session.add(row)
        return int(row.id or 0), row.status


_HELD = "id = :id AND lease_owner = :o AND attempts = :t AND status = 'processing'"


def _fence_params(lease: Lease) -> dict[str, Any]:
    return {"id": lease.analysis_id, "o": lease.owner, "t": lease.token, "l": lease.seconds}


def extend_lease(lease: Lease) -> bool:
    """Heartbeat: push the lease forward. False when the row has moved on (lease lost)."""
    with session_scope() as session:
        result = session.execute(
            text(
                "UPDATE apps_db_videoanalysis SET "
                "lease_expires_at = now() + make_interval(secs => :l) WHERE " + _HELD
            ),
            _fence_params(lease),
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def report_progress(
    lease: Lease,
    *,
    stage: str,
    progress: float,
    frames_processed: int,
    fps: float | None,
) -> bool:
    """Progress update that also extends the lease; False when the lease is lost."""
    with session_scope() as session:
        result = session.execute(
            text(
                "UPDATE apps_db_videoanalysis SET stage=:s, progress=:p, frames_processed=:n, "
                "fps=:f, lease_expires_at=now() + make_interval(secs => :l), updated_at=now() "
                "WHERE " + _HELD
            ),
            {
                **_fence_params(lease),
                "s": stage,
                "p": round(min(progress, 99.9), 1),
                "n": frames_processed,
                "f": fps,
            },
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def fence(session: Session, lease: Lease) -> VideoAnalysis:
    """Inside a write transaction: lock the analysis row and make sure `lease` still holds
    it; raises `LeaseLostError` otherwise (the transaction then rolls back)."""
    row = session.exec(
        select(VideoAnalysis).where(VideoAnalysis.id == lease.analysis_id).with_for_update()
    ).first()
    if (
        row is None
        or row.status != "processing"
        or row.lease_owner != lease.owner
        or row.attempts != lease.token
    ):
        raise LeaseLostError(
            f"analysis {lease.analysis_id} was taken over by another worker; result not stored"
        )
    return row


def mark_completed(
    session: Session,
    lease: Lease,
    *,
    frames_processed: int,
    fps: float,
    summary: dict[str, Any],
) -> None:
    """Inside the store transaction: the analysis and its video become `completed`."""
    row = fence(session, lease)
    t = now()
    row.status, row.stage, row.progress = "completed", "done", 100.0
    row.frames_processed, row.fps, row.summary, row.error = frames_processed, fps, summary, None
    row.lease_owner, row.lease_expires_at = None, None
    row.finished_at = row.updated_at = t
    session.add(row)
    upsert_video(session, row.video_id, status="completed")


def _settle_video(session: Session, video_id: str) -> None:
    completed = session.exec(
        select(VideoAnalysis.id).where(
            VideoAnalysis.video_id == video_id, VideoAnalysis.status == "completed"
        )
    ).first()
    upsert_video(session, video_id, status="completed" if completed else "failed")


def mark_failed(lease: Lease, reason: str, *, retryable: bool = True) -> bool:
    """Own transaction: the analysis (and its video, unless another analysis completed)
    failed. `retryable=False` (bad input) tells queue workers not to try again
    (`summary.retryable`). A no-op returning False when `lease` no longer holds the row."""
    with session_scope() as session:
        try:
            row = fence(session, lease)
        except LeaseLostError:
            log.warning("analysis %s: not marked failed, the lease moved on", lease.analysis_id)
            return False
        t = now()
        row.status, row.error = "failed", reason[:2000]
        row.summary = {"retryable": retryable}
        row.lease_owner, row.lease_expires_at = None, None
        row.finished_at = row.updated_at = t
        session.add(row)
        _settle_video(session, row.video_id)
        return True


def release(lease: Lease, reason: str) -> bool:
    """Give the analysis back unfinished (`pending`, no lease), e.g. on shutdown, so that the
    next request or worker runs it again at once. False when the lease had moved on."""
    with session_scope() as session:
        try:
            row = fence(session, lease)
        except LeaseLostError:
            return False
        row.status, row.stage, row.error = "pending", None, reason[:2000]
        row.lease_owner, row.lease_expires_at = None, None
        row.updated_at = now()
        session.add(row)
        return True


def record_rejected_input(
    video_id: str,
    params: AnalysisParams,
    reason: str,
    source: str,
    code: str | None = None,
    owner: str | None = None,
) -> int:
    """A video that could not even be probed (or was not found) still gets a `failed`
    analysis with the reason, not retryable, unless that analysis is completed or held by
    another worker than `owner`: those are left untouched."""
    with session_scope() as session:
        video = _video_for_update(session, video_id)
        if video.source_uri is None:
            video.source_uri = source
        session.flush()
        row = _analysis_row(session, video_id, params)
        if row.status == "completed" or (_lease_live(row, now()) and row.lease_owner != owner):
            return int(row.id or 0)
        t = now()
        row.status, row.stage, row.error = "failed", "probe", reason[:2000]
        row.summary = {"retryable": False, **({"code": code} if code else {})}
        row.lease_owner, row.lease_expires_at = None, None
        row.attempts += 1
        row.started_at = row.started_at or t
        row.finished_at = row.updated_at = t
        session.add(row)
        _settle_video(session, video_id)
        return int(row.id or 0)


def reclaim_expired(max_rows: int = 100) -> list[int]:
    """Rows whose worker died (`processing` with an expired lease) go back to `pending` with
    the reason, to be taken by a worker again; returns their ids."""
    with session_scope() as session:
        ids = session.execute(
            text(
                "UPDATE apps_db_videoanalysis a SET status = 'pending', stage = NULL, "
                "source_uri = coalesce(a.source_uri, v.source_uri), "
                "lease_owner = NULL, lease_expires_at = NULL, updated_at = now(), "
                "error = 'interrupted: its worker stopped (lease expired); retried' "
                "FROM apps_db_video v WHERE v.video_id = a.video_id AND a.id IN ("
                "  SELECT id FROM apps_db_videoanalysis WHERE status = 'processing' "
                "  AND lease_expires_at < now() ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED) "
                "RETURNING a.id"
            ),
            {"n": max_rows},
        ).scalars()
        return [int(i) for i in ids]


def store_notebook(analysis_id: int, notebook: dict[str, Any]) -> bool:
    """Keep an executed notebook with its analysis row; False when there is no such row."""
    with session_scope() as session:
        row = session.get(VideoAnalysis, analysis_id)
        if row is None:
            return False
        row.notebook = notebook
        session.add(row)
        return True
