"""Request and response models of the HTTP API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from sqlmodel import SQLModel

from capstone.errors import InputError
from capstone.io.s3 import validate_key, validate_video_id
from capstone.stages.params import AnalysisParams
from capstone.store import queries
from capstone.store.tables import DepthData, Event, Track, Video, VideoAnalysis

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


def _out_model(
    name: str,
    table: type[SQLModel],
    fields: tuple[str, ...],
    *,
    described: dict[str, str] | None = None,
    **extra: Any,
) -> type[BaseModel]:
    """A response model of the `fields` a `capstone.store.queries` read returns, typed as
    the table's columns: a column the store starts to return is in the API at once. A
    field is required unless its column is nullable (a primary key never is)."""
    spec: dict[str, Any] = {}
    for field in fields:
        column = table.__table__.c[field]  # type: ignore[attr-defined]
        annotation = table.model_fields[field].annotation
        if column.primary_key or not column.nullable:
            annotation = _without_none(annotation)
        required = not column.nullable or column.primary_key
        info = Field(... if required else None, description=(described or {}).get(field))
        spec[field] = (annotation, info)
    return create_model(name, **spec, **extra)


def _without_none(annotation: Any) -> Any:
    args = tuple(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return args[0]
    return annotation


AnalysisOut = _out_model(
    "AnalysisOut",
    VideoAnalysis,
    queries.ANALYSIS_FIELDS,
    described={
        "chunks_done": "time chunks of the video analyzed so far (`params.chunk_s`)",
        "chunks_total": "time chunks the video is cut into; 0 before planning",
    },
    lease_expires_at=(
        datetime | None,
        Field(default=None, description="until when the worker's lease holds the analysis"),
    ),
    lease_live=(
        bool,
        Field(
            default=False,
            description="a worker holds the analysis now; `processing` without it: the worker died",
        ),
    ),
)


class ModelsOut(BaseModel):
    """Detector models this server may load, by name (`params.model`)."""

    models: list[str]
    default: str


VideoOut = _out_model("VideoOut", Video, queries.VIDEO_FIELDS)


class VideoDetail(VideoOut):  # type: ignore[valid-type,misc]
    latest_analysis: AnalysisOut | None = None  # type: ignore[valid-type]


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


EventOut = _out_model("EventOut", Event, queries.EVENT_FIELDS)


class EventPage(Page):
    analysis_id: int | None = Field(description="the analysis these results come from")
    items: list[EventOut]


TrackOut = _out_model("TrackOut", Track, queries.TRACK_FIELDS)


class TrackPage(Page):
    analysis_id: int | None
    items: list[TrackOut]


DepthOut = _out_model("DepthOut", DepthData, queries.DEPTH_FIELDS)


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
