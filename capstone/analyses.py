"""Video and analysis rows: registration, the lease, progress, completion and failure.

Each function is one short transaction of its own, so progress is visible to the API and
dashboard while the analysis runs. The lease (`lease_owner`, `lease_expires_at`) keeps a
second worker from running the same analysis at the same time; an expired lease (a killed
worker) can be taken over.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from capstone.db.engine import session_scope
from capstone.db.models import Video, VideoAnalysis
from capstone.errors import CapstoneError
from capstone.media import VideoInfo
from capstone.params import AnalysisParams

LEASE_SECONDS = 120


class AnalysisBusyError(CapstoneError):
    """The same analysis is running elsewhere (its lease is live)."""

    exit_code = 6

    def __init__(self, analysis_id: int, status: str, progress: float) -> None:
        super().__init__(
            f"analysis {analysis_id} is already {status} elsewhere ({progress:.0f}% done)"
        )
        self.analysis_id, self.status, self.progress = analysis_id, status, progress


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def now() -> datetime:
    return datetime.now(UTC)


def upsert_video(
    session: Session,
    video_id: str,
    *,
    info: VideoInfo | None = None,
    title: str | None = None,
    source_uri: str | None = None,
    status: str | None = None,
) -> Video:
    video = session.get(Video, video_id) or Video(video_id=video_id)
    if info is not None:
        video.sha256 = info.sha256
        video.duration = info.duration
        video.width, video.height = info.width, info.height
        video.fps = info.fps
        video.frame_count = info.frame_count
        video.codec = info.codec
        video.file_size = info.file_size
    if title is not None or video.title is None:
        video.title = title or video.title or video_id
    if source_uri is not None:
        video.source_uri = source_uri
    if status is not None:
        video.status = status
    video.updated_at = now()
    session.add(video)
    return video


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


def register_pending(
    video_id: str, params: AnalysisParams, source_uri: str | None = None, title: str | None = None
) -> int:
    """Make sure the video and a `pending` analysis row exist (a failed one is reset to
    pending); return its id. A worker's `claim_analysis` later takes the row over."""
    with session_scope() as session:
        upsert_video(session, video_id, title=title, source_uri=source_uri)
        session.flush()
        row = _analysis_row(session, video_id, params)
        if row.status == "failed":
            row.status, row.error, row.progress = "pending", None, 0.0
            session.add(row)
        return int(row.id or 0)


def claim_analysis(
    video_id: str,
    params: AnalysisParams,
    owner: str,
    *,
    info: VideoInfo | None = None,
    title: str | None = None,
    source_uri: str | None = None,
    lease_seconds: int = LEASE_SECONDS,
) -> int:
    """Create or take over the analysis row for (video, params) and hold its lease.

    Raises `AnalysisBusyError` if another owner holds a live lease.
    """
    with session_scope() as session:
        upsert_video(
            session, video_id, info=info, title=title, source_uri=source_uri, status="processing"
        )
        session.flush()
        row = _analysis_row(session, video_id, params)
        t = now()
        if (
            row.status in ("pending", "processing")
            and row.lease_owner not in (None, owner)
            and row.lease_expires_at is not None
            and row.lease_expires_at > t
        ):
            raise AnalysisBusyError(row.id or 0, row.status, row.progress)
        row.status, row.stage, row.progress, row.error = "processing", "probe", 0.0, None
        row.lease_owner, row.lease_expires_at = owner, t + timedelta(seconds=lease_seconds)
        row.attempts += 1
        row.started_at, row.finished_at = t, None
        row.updated_at = t
        session.add(row)
        session.flush()
        return int(row.id or 0)


def report_progress(
    analysis_id: int,
    owner: str,
    *,
    stage: str,
    progress: float,
    frames_processed: int,
    fps: float | None,
    lease_seconds: int = LEASE_SECONDS,
) -> None:
    """Progress update that also extends the lease (a heartbeat)."""
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE apps_db_videoanalysis SET stage=:s, progress=:p, frames_processed=:n, "
                "fps=:f, lease_expires_at=now() + make_interval(secs => :l), updated_at=now() "
                "WHERE id=:id AND lease_owner=:o"
            ),
            {
                "s": stage,
                "p": round(min(progress, 99.9), 1),
                "n": frames_processed,
                "f": fps,
                "l": lease_seconds,
                "id": analysis_id,
                "o": owner,
            },
        )


def mark_completed(
    session: Session,
    analysis_id: int,
    *,
    frames_processed: int,
    fps: float,
    summary: dict[str, Any],
) -> None:
    """Inside the store transaction: the analysis and its video become `completed`."""
    row = session.get(VideoAnalysis, analysis_id)
    assert row is not None
    t = now()
    row.status, row.stage, row.progress = "completed", "done", 100.0
    row.frames_processed, row.fps, row.summary, row.error = frames_processed, fps, summary, None
    row.lease_owner, row.lease_expires_at = None, None
    row.finished_at = row.updated_at = t
    session.add(row)
    upsert_video(session, row.video_id, status="completed")


def mark_failed(analysis_id: int, reason: str) -> None:
    """Own transaction: the analysis (and its video, unless another analysis completed) failed."""
    with session_scope() as session:
        row = session.get(VideoAnalysis, analysis_id)
        if row is None:
            return
        t = now()
        row.status, row.error = "failed", reason[:2000]
        row.lease_owner, row.lease_expires_at = None, None
        row.finished_at = row.updated_at = t
        session.add(row)
        completed = session.exec(
            select(VideoAnalysis.id).where(
                VideoAnalysis.video_id == row.video_id, VideoAnalysis.status == "completed"
            )
        ).first()
        upsert_video(session, row.video_id, status="completed" if completed else "failed")


def record_rejected_input(video_id: str, params: AnalysisParams, reason: str, source: str) -> int:
    """A video that could not even be probed still gets a `failed` analysis with the reason."""
    owner = worker_id()
    analysis_id = claim_analysis(video_id, params, owner, source_uri=source)
    mark_failed(analysis_id, reason)
    return analysis_id
