"""FastAPI dependencies: settings, the job pool, and path parameters that must exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from capstone.config import Settings, get_settings
from capstone.store import queries
from service.errors import ApiError
from service.jobs import AnalysisJobs
from service.metrics import Metrics

VIDEO_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"

VideoIdPath = Annotated[
    str,
    Path(
        pattern=VIDEO_ID_PATTERN,
        max_length=128,
        description="video id, e.g. test-001",
        examples=["test-001"],
    ),
]


def settings() -> Settings:
    """The current settings (re-read after `get_settings.cache_clear()`)."""
    return get_settings()


def jobs(request: Request) -> AnalysisJobs:
    return request.app.state.jobs


def metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def existing_video(video_id: VideoIdPath) -> str:
    """404 unless the video is registered."""
    if not await run_in_threadpool(queries.video_exists, video_id):
        raise ApiError(404, f"video {video_id!r} not found")
    return video_id


SettingsDep = Annotated[Settings, Depends(settings)]
JobsDep = Annotated[AnalysisJobs, Depends(jobs)]
MetricsDep = Annotated[Metrics, Depends(metrics)]
ExistingVideo = Annotated[str, Depends(existing_video)]
