"""`POST /db/videos/upload/`: the original upload contract (multipart field `video`).

The body is streamed to a temporary file and counted as it arrives; crossing
`MAX_UPLOAD_BYTES` answers 413 at once without reading the rest. The file is probed (its
content, not its name), stored in the raw bucket under the content-addressed key
`videos/{video_id}/{sha256[:16]}-{filename}` with the id, hash and probed duration in the
object metadata (the Lambda handler splits a long video into chunks by the duration), and
the video is registered. A video id names one content: uploading different content
under an existing id answers 409. Distinct uploads never share a key, so no upload
overwrites or deletes an object another request stored; the temporary file is always
removed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from capstone.core.ids import default_video_id
from capstone.core.video import VideoInfo, check_duration, probe
from capstone.errors import BudgetExceededError, InputError
from capstone.io.s3 import upload_video, validate_video_id
from capstone.stages.params import AnalysisParams
from capstone.store import queries
from capstone.store.analyses import ContentConflictError, register_video
from service.auth import require_write
from service.deps import VIDEO_ID_PATTERN, JobsDep, MetricsDep, SettingsDep
from service.errors import ApiError, error_responses
from service.schemas import UploadResponse

router = APIRouter(tags=["videos"])


class UploadTooLarge(Exception):
    """The request body crossed the configured limit."""


async def capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """Pass `stream` through, raising `UploadTooLarge` as soon as more than `limit` bytes came."""
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise UploadTooLarge(seen)
        yield chunk


def safe_filename(name: str | None) -> str:
    """The last path component, with anything unusual replaced: `../a b?.mp4` -> `a b_.mp4`."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[^\w\-. ]", "_", base).strip(" .")[:200]
    return base or "video"


def _register(video_id: str, info: VideoInfo, title: str | None, source_uri: str) -> None:
    register_video(video_id, info=info, title=title, source_uri=source_uri, status="pending")


def _conflict(video_id: str) -> ApiError:
    return ApiError(
        409,
        f"video {video_id!r} already holds different content; upload it under another video_id",
        code="content_conflict",
    )


_MULTIPART_SCHEMA = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["video"],
                "properties": {
                    "video": {
                        "type": "string",
                        "format": "binary",
                        "description": "the video file",
                    }
                },
            }
        }
    },
}


@router.post(
    "/db/videos/upload/",
    status_code=201,
    response_model=UploadResponse,
    summary="Upload a video (multipart field `video`) and register it",
    description=(
        "`curl -X POST http://HOST:8087/db/videos/upload/ -H 'Authorization: Bearer KEY' "
        '-F "video=@test.mp4"`. With a queue configured the S3 event starts the analysis '
        "(S3 -> SQS -> Batch); without one, this process analyzes it in the background "
        "unless `analyze=false`."
    ),
    dependencies=[Depends(require_write)],
    openapi_extra={"requestBody": _MULTIPART_SCHEMA},
    responses=error_responses(400, 401, 403, 409, 413, 415, 422, 503),
)
async def upload(
    request: Request,
    settings: SettingsDep,
    jobs: JobsDep,
    metrics: MetricsDep,
    video_id: Annotated[
        str | None,
        Query(pattern=VIDEO_ID_PATTERN, max_length=128, description="id to register it as"),
    ] = None,
    title: Annotated[str | None, Query(max_length=500)] = None,
    analyze: Annotated[bool, Query(description="start the analysis when no queue does")] = True,
) -> Any:
    limit = settings.max_upload_bytes
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        metrics.upload_rejections.labels("content_type").inc()
        raise ApiError(415, "expected multipart/form-data with a file field 'video'")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        metrics.upload_rejections.labels("too_large").inc()
        raise ApiError(413, f"upload of {int(declared)} bytes exceeds the limit of {limit} bytes")

    workdir = FsPath(tempfile.mkdtemp(prefix="upload-"))
    form = None
    try:
        parser = MultiPartParser(
            request.headers, capped(request.stream(), limit), max_files=1, max_fields=16
        )
        try:
            form = await parser.parse()
        except UploadTooLarge:
            metrics.upload_rejections.labels("too_large").inc()
            raise ApiError(413, f"upload exceeds the limit of {limit} bytes") from None
        except MultiPartException as exc:
            raise ApiError(422, f"malformed multipart body: {exc.message}") from None
        video = form.get("video")
        if not isinstance(video, UploadFile):
            raise ApiError(422, "multipart field 'video' (a file) is required")
        filename = safe_filename(video.filename)
        path = workdir / ("upload" + FsPath(filename).suffix[:10])
        await run_in_threadpool(_copy, video, path)
        try:
            info = await run_in_threadpool(probe, path)
            check_duration(
                info.frame_count, info.fps, settings.max_video_duration_s,
                where=f"{filename}: the header says",
            )  # fmt: skip
        except BudgetExceededError as exc:  # frame size or duration: named, never stored
            metrics.upload_rejections.labels("over_budget").inc()
            raise ApiError(413, str(exc).replace(str(path), filename)) from None
        except InputError as exc:
            metrics.upload_rejections.labels("not_a_video").inc()
            reason = str(exc).replace(str(path), filename)
            raise ApiError(415, f"not a video: {reason}") from None
        if info.frame_count < 2:
            metrics.upload_rejections.labels("not_a_video").inc()
            raise ApiError(415, f"not a video: {filename} holds a single {info.codec} image")

        vid = video_id or f"{default_video_id(filename)[:100]}-{info.sha256[:8]}"
        try:
            validate_video_id(vid)
        except InputError as exc:
            raise ApiError(422, str(exc)) from None
        stored = await run_in_threadpool(queries.video_sha256, vid)
        if stored is not None and stored != info.sha256:
            raise _conflict(vid)
        bucket = settings.s3_bucket_raw
        try:
            key = await run_in_threadpool(
                upload_video, path, bucket, vid, filename, info.sha256, info.duration
            )
        except InputError as exc:
            raise ApiError(503, f"storage unavailable: {exc}", code="storage_unavailable") from None
        source_uri = f"s3://{bucket}/{key}"
        try:  # the object stays even if this fails: its key holds this content only
            await run_in_threadpool(_register, vid, info, title or filename, source_uri)
        except ContentConflictError:
            raise _conflict(vid) from None
        mode = "none"
        if settings.sqs_queue_url:
            mode = "queued"
        elif analyze:
            await run_in_threadpool(
                jobs.submit, source_uri, vid, AnalysisParams(), title or filename
            )
            mode = "background"
        body = UploadResponse(
            video_id=vid, s3_bucket=bucket, s3_key=key, analysis=mode, video_url=f"/videos/{vid}"
        )
        return JSONResponse(body.model_dump(), status_code=201)
    finally:
        if form is not None:
            await form.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _copy(upload: UploadFile, dest: FsPath) -> None:
    upload.file.seek(0)
    with dest.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
