"""Request and response models of the HTTP API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from capstone.errors import InputError
from capstone.io.s3 import validate_key, validate_video_id
from capstone.stages.params import AnalysisParams

BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"


class AnalyzeRequest(BaseModel):
    """The original analysis contract, plus optional parameters."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"s3_bucket": "capstone-raw", "s3_key": "videos/test-001/test.mp4"},
                {
                    "s3_bucket": "capstone-raw",
                    "s3_key": "videos/test-001/test.mp4",
                    "params": {"stride": 2, "max_frames": 300, "stages": ["detect", "track"]},
                },
            ]
        },
    )

    s3_bucket: str = Field(pattern=BUCKET_PATTERN, description="bucket holding the video")
    s3_key: str = Field(min_length=1, max_length=1024, description="object key of the video")
    params: AnalysisParams | None = Field(
        default=None, description="analysis parameters; defaults when omitted"
    )
    video_id: str | None = Field(
        default=None,
        description="override the id read from the object metadata / key",
        max_length=128,
    )
    title: str | None = Field(default=None, max_length=500)

    @field_validator("s3_key")
    @classmethod
    def _safe_key(cls, value: str) -> str:
        try:
            return validate_key(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("video_id")
    @classmethod
    def _safe_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_video_id(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None


class AnalyzeSuccess(BaseModel):
    """The analysis is stored (the original contract's answer)."""

    status: Literal["success"] = "success"
    video_id: str
    analysis_id: int | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "success", "video_id": "test-001"}]}
    )


class AnalyzeAccepted(BaseModel):
    """The analysis runs in the background; poll `status_url`."""

    status: Literal["accepted"] = "accepted"
    video_id: str
    analysis_id: int
    status_url: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "accepted",
                    "video_id": "test-001",
                    "analysis_id": 7,
                    "status_url": "/analyses/7",
                }
            ]
        }
    )


class UploadResponse(BaseModel):
    """A registered upload."""

    status: Literal["success"] = "success"
    video_id: str
    s3_bucket: str
    s3_key: str
    analysis: Literal["queued", "background", "none"] = Field(
        description="queued: S3 -> SQS -> Batch will analyze it; background: this process "
        "analyzes it; none: not requested"
    )
    video_url: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "success",
                    "video_id": "test-001",
                    "s3_bucket": "capstone-raw",
                    "s3_key": "videos/test-001/test.mp4",
                    "analysis": "queued",
                    "video_url": "/videos/test-001",
                }
            ]
        }
    )


class AnalysisOut(BaseModel):
    id: int
    video_id: str
    status: str
    progress: float
    stage: str | None = None
    params: dict[str, Any]
    params_hash: str
    error: str | None = None
    frames_processed: int
    chunks_done: int = Field(
        default=0, description="time chunks of the video analyzed so far (`params.chunk_s`)"
    )
    chunks_total: int = Field(
        default=0, description="time chunks the video is cut into; 0 before planning"
    )
    fps: float | None = None
    summary: dict[str, Any] | None = None
    attempts: int
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    lease_expires_at: datetime | None = Field(
        default=None, description="until when the worker's lease holds the analysis"
    )
    lease_live: bool = Field(
        default=False,
        description="a worker holds the analysis now; `processing` without it: the worker died",
    )


class ModelsOut(BaseModel):
    """Detector models this server may load, by name (`params.model`)."""

    models: list[str]
    default: str


class VideoOut(BaseModel):
    video_id: str
    title: str | None = None
    source_uri: str | None = None
    sha256: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_count: int | None = None
    codec: str | None = None
    file_size: int | None = None
    status: str
    created_at: datetime
    updated_at: datetime


class VideoDetail(VideoOut):
    latest_analysis: AnalysisOut | None = None


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    next: str | None = Field(
        default=None,
        description="cursor of the next page (pass it as `after`); null on the last page",
    )


class VideoPage(Page):
    items: list[VideoOut]


class EventOut(BaseModel):
    id: int
    analysis_id: int
    frame_number: int
    timestamp: float
    event_type: str
    class_name: str | None = None
    confidence: float | None = None
    bbox: list[float] | None = None
    track_id: int | None = None
    attributes: dict[str, Any] | None = None
    description: str | None = None


class EventPage(Page):
    analysis_id: int | None = Field(description="the analysis these results come from")
    items: list[EventOut]


class TrackOut(BaseModel):
    track_id: int
    analysis_id: int
    identity_id: int | None = None
    class_name: str
    first_frame: int
    last_frame: int
    first_timestamp: float
    last_timestamp: float
    length: int
    mean_confidence: float
    best_frame: int | None = None
    best_bbox: list[float] | None = None
    avg_depth: float | None = None
    min_depth: float | None = None
    max_depth: float | None = None


class TrackPage(Page):
    analysis_id: int | None
    items: list[TrackOut]


class DepthOut(BaseModel):
    frame_number: int
    track_id: int | None = None
    class_name: str | None = None
    bbox: list[float] | None = None
    avg_depth: float
    min_depth: float
    max_depth: float
    depth_variance: float
    method: str


class DepthPage(Page):
    analysis_id: int | None
    items: list[DepthOut]


class ThumbnailOut(BaseModel):
    frame_number: int | None
    timestamp: float | None
    url: str


class DisplayOut(BaseModel):
    kind: str
    frame_number: int | None = None
    timestamp: float | None = None
    data: dict[str, Any] | list[Any] | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]
