"""`POST /analyze` (the original contract) and `GET /analyses/{id}` (its status)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from capstone.core.video import sha256_file
from capstone.errors import InputError, ModelNotFoundError
from capstone.io.s3 import SHA256_METADATA, discard_download, download, head, object_video_id
from capstone.models.weights import resolve_model_name
from capstone.stages.params import AnalysisParams
from capstone.store import queries
from service.auth import require_read, require_write
from service.deps import JobsDep, SettingsDep
from service.errors import ApiError, error_responses
from service.jobs import record_missing
from service.schemas import AnalysisOut, AnalyzeAccepted, AnalyzeRequest, AnalyzeSuccess
from service.worker import is_service_worker

router = APIRouter(tags=["analysis"])


def _conflict(video_id: str) -> ApiError:
    return ApiError(
        409,
        f"video {video_id!r} already holds different content; analyze it under another video_id",
        code="content_conflict",
    )


def _busy(video_id: str, analysis_id: int, status: str, progress: float) -> ApiError:
    return ApiError(
        409,
        f"analysis {analysis_id} of {video_id!r} is already {status} elsewhere "
        f"({progress:.0f}% done)",
        code="analysis_running",
        retryable=True,
        extra={
            "analysis_id": analysis_id,
            "status": status,
            "progress": progress,
            "status_url": f"/analyses/{analysis_id}",
        },
    )


def _accepted(video_id: str, analysis_id: int) -> JSONResponse:
    body = AnalyzeAccepted(
        video_id=video_id, analysis_id=analysis_id, status_url=f"/analyses/{analysis_id}"
    )
    return JSONResponse(body.model_dump(), status_code=202)


@router.post(
    "/analyze",
    response_model=AnalyzeSuccess,
    summary="Analyze a video stored in S3 and store the results",
    description=(
        "Downloads `s3://{s3_bucket}/{s3_key}`, runs the pipeline and stores every result in "
        "PostgreSQL + pgvector. The video id comes from the object metadata `video-id`, else "
        "from a `videos/{video_id}/{filename}` key, else a deterministic id from the key.\n\n"
        "`wait=true` (default) answers 200 `{status: success}` once stored, or 202 with a "
        "status URL when `timeout_s` passes first; `wait=false` answers 202 at once. An "
        "identical completed analysis answers 200 immediately; one running elsewhere, 409."
    ),
    dependencies=[Depends(require_write)],
    responses={
        202: {"model": AnalyzeAccepted, "description": "running in the background"},
        **error_responses(400, 401, 403, 404, 409, 413, 422, 503),
    },
)
async def analyze(
    request: Request,
    body: AnalyzeRequest,
    settings: SettingsDep,
    jobs: JobsDep,
    wait: Annotated[bool, Query(description="wait for the result (up to timeout_s)")] = True,
    timeout_s: Annotated[
        float | None,
        Query(gt=0, le=86400, description="seconds to wait; default ANALYZE_TIMEOUT_S"),
    ] = None,
) -> Any:
    params = body.params or AnalysisParams()
    try:
        resolve_model_name(params.model, request.app.state.models)
    except ModelNotFoundError as exc:
        raise ApiError(422, f"params.model: {exc}") from None
    if body.s3_bucket not in settings.allowed_buckets:
        raise ApiError(
            403,
            f"bucket {body.s3_bucket!r} is not one this service analyzes",
            code="bucket_not_allowed",
        )
    try:
        obj = await run_in_threadpool(head, body.s3_bucket, body.s3_key)
    except InputError as exc:
        if body.video_id:  # a named video (a queue job's request) keeps the reason in a row
            source = f"s3://{body.s3_bucket}/{body.s3_key}"
            await run_in_threadpool(record_missing, body.video_id, params, str(exc), source)
        raise ApiError(404, str(exc)) from None
    if obj.size > settings.max_upload_bytes:
        raise ApiError(
            413,
            f"object of {obj.size} bytes exceeds the limit of {settings.max_upload_bytes} bytes",
        )
    if body.video_id:
        video_id = body.video_id
    else:
        try:
            video_id = object_video_id(body.s3_bucket, body.s3_key, obj)
        except InputError as exc:
            raise ApiError(422, str(exc)) from None
    params_hash = params.params_hash()
    source = f"s3://{body.s3_bucket}/{body.s3_key}"

    content = obj.metadata.get(SHA256_METADATA)
    existing = await run_in_threadpool(queries.analysis_for_params, video_id, params_hash)
    stored = existing["sha256"] if existing else None
    if stored:  # the id names analysed content: a different object must hold the same
        if content is None and existing["source_uri"] != source:  # type: ignore[index]
            content = await run_in_threadpool(_object_sha256, body.s3_bucket, body.s3_key)
        if content is not None and content != stored:
            raise _conflict(video_id)
        if existing["status"] == "completed":  # type: ignore[index]
            return AnalyzeSuccess(video_id=video_id, analysis_id=existing["id"])  # type: ignore[index]
    if (
        existing
        and existing["status"] in ("pending", "processing")
        and existing["lease_live"]
        and not is_service_worker(existing["lease_owner"])
    ):
        raise _busy(video_id, existing["id"], existing["status"], existing["progress"])
    analysis_id = await run_in_threadpool(jobs.submit, source, video_id, params, body.title)

    if not wait:
        return _accepted(video_id, analysis_id)
    timeout = min(timeout_s or settings.analyze_timeout_s, settings.analyze_timeout_s)
    row = await jobs.wait(analysis_id, timeout)
    if row is None:
        return _accepted(video_id, analysis_id)
    if row["status"] == "failed":
        if (row.get("summary") or {}).get("code") == "content_conflict":
            raise _conflict(video_id)
        raise ApiError(
            422,
            f"analysis of {source} failed: {row['error']}",
            code="analysis_failed",
            extra={"analysis_id": analysis_id, "status_url": f"/analyses/{analysis_id}"},
            retryable=(row.get("summary") or {}).get("retryable") is not False,
        )
    return AnalyzeSuccess(video_id=video_id, analysis_id=analysis_id)


def _object_sha256(bucket: str, key: str) -> str:
    """The content hash of an object without one in its metadata (download, hash, remove)."""
    path = download(bucket, key)
    try:
        return sha256_file(path)
    finally:
        discard_download(path)


@router.get(
    "/analyses/{analysis_id}",
    response_model=AnalysisOut,
    summary="Status, progress, fps and error of one analysis",
    dependencies=[Depends(require_read)],
    responses=error_responses(401, 403, 404, 422),
)
async def get_analysis(
    analysis_id: Annotated[int, Path(ge=1, le=2**62, description="analysis id")],
    request: Request,
) -> Any:
    row = await run_in_threadpool(queries.get_analysis, analysis_id)
    if row is None:
        raise ApiError(404, f"analysis {analysis_id} not found")
    return row
