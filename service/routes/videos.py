"""Read endpoints: videos, analyses, events, tracks, thumbnails, depth, display data."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from capstone.config import get_settings
from capstone.store import queries
from capstone.store.tables import VIDEO_STATUSES
from service.auth import require_read
from service.deps import ExistingVideo, VideoIdPath
from service.errors import ApiError, error_responses
from service.responses import JsonResponse
from service.schemas import (
    AnalysisOut,
    DepthPage,
    DisplayOut,
    EventPage,
    ThumbnailOut,
    TrackPage,
    VideoDetail,
    VideoPage,
)

router = APIRouter(tags=["videos"], dependencies=[Depends(require_read)])

Limit = Annotated[int, Query(ge=1, le=queries.MAX_PAGE, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="rows to skip")]
AnalysisId = Annotated[
    int | None,
    Query(ge=1, le=2**62, description="results of this analysis (default: latest completed)"),
]
ShortText = Annotated[str | None, Query(min_length=1, max_length=100)]
After = Annotated[
    str | None,
    Query(
        pattern=r"^-?[0-9]{1,19}:-?[0-9]{1,19}$",
        description="keyset cursor: the `next` of the previous page (deep pages cost what "
        "the first page costs, unlike `offset`)",
    ),
]
Seconds = Annotated[float | None, Query(ge=0, le=10**7, allow_inf_nan=False)]
_READ_ERRORS = error_responses(401, 403, 404, 422)
_JPEG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
    **_READ_ERRORS,
}


def _jpeg(image: bytes) -> Response:
    """A stored JPEG (a keyframe thumbnail or a track's best crop), cacheable for an hour."""
    return Response(image, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


_PAGES: OrderedDict[str, bytes] = OrderedDict()  # ETag -> rendered page of a completed result
_PAGES_LOCK = threading.Lock()
_pages_bytes = 0  # sum of the kept pages' sizes, under _PAGES_LOCK


def _cached(etag: str) -> bytes | None:
    with _PAGES_LOCK:
        body = _PAGES.get(etag)
        if body is not None:
            _PAGES.move_to_end(etag)
        return body


def _remember(etag: str, body: bytes) -> None:
    """Keep a page, least recently used out first, within `PAGE_CACHE_ENTRIES` pages and
    `PAGE_CACHE_BYTES` bytes (a page above the byte budget is not kept)."""
    global _pages_bytes
    settings = get_settings()
    max_entries, max_bytes = settings.page_cache_entries, settings.page_cache_bytes
    if len(body) > max_bytes or max_entries < 1:
        return
    with _PAGES_LOCK:
        old = _PAGES.pop(etag, None)
        _pages_bytes += len(body) - (len(old) if old is not None else 0)
        _PAGES[etag] = body
        while len(_PAGES) > max_entries or _pages_bytes > max_bytes:
            _pages_bytes -= len(_PAGES.popitem(last=False)[1])


def page_cache_usage() -> tuple[int, int]:
    """(pages, bytes) in this process's page cache."""
    with _PAGES_LOCK:
        return len(_PAGES), _pages_bytes


def clear_page_cache() -> None:
    global _pages_bytes
    with _PAGES_LOCK:
        _PAGES.clear()
        _pages_bytes = 0


def _page_key(request: Request, video_id: str, params: dict[str, Any]) -> str:
    """What a page depends on: the route, the video, the route's own parameters as parsed
    (defaults filled in, so `?limit=100` and no `limit` are one page; parameters the route
    does not declare are left out, so junk parameters make no new entries) and the auth
    scope of reads."""
    settings = get_settings()
    open_reads = settings.capstone_auth_disabled or not settings.require_auth_for_reads
    scope = "open" if open_reads else "token"
    route = getattr(request.scope.get("route"), "path", request.url.path)
    return repr((route, video_id, sorted(params.items()), scope))


def _page(
    video_id: str,
    analysis_id: int | None,
    query: str,
    if_none_match: str,
    fetch: Callable[[tuple[int, int, bool] | None, Session], Any],
) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of a result page, in one database session."""
    with queries.read_session() as session:
        version = queries.result_version(video_id, analysis_id, session=session)
        if version is None:
            raise ApiError(404, f"video {video_id!r} not found")
        chosen, attempts, completed = version
        if chosen is None:
            if analysis_id is not None:
                raise ApiError(404, f"analysis {analysis_id} of {video_id!r} not found")
            return 200, JsonResponse(fetch(None, session)).body, {}
        digest = hashlib.sha256(query.encode()).hexdigest()[:20]
        etag = f'W/"{chosen}.{attempts}.{digest}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}  # revalidate: a re-run may follow
        if etag in if_none_match:
            return 304, b"", headers
        body = _cached(etag) if completed else None
        if body is None:
            try:
                body = JsonResponse(fetch(version, session)).body
            except queries.CursorError as exc:
                raise ApiError(422, str(exc)) from None
            if completed:
                _remember(etag, body)
        return 200, body, headers


async def result_page(
    request: Request,
    video_id: str,
    fetch: Callable[..., Any],
    params: dict[str, Any],
) -> Response:
    """A page of an analysis's results: `fetch(video_id, **params, version=, session=)`
    (a `capstone.store.queries` reader; `params` are the route's parsed query parameters,
    `analysis_id` among them), with an ETag of the result's version and of what the
    page depends on (`_page_key`: route, video, `params`, auth scope): a
    client that sends it back in `If-None-Match` gets 304 without the rows being read. A
    completed result cannot change until a re-run (which bumps its version), so its
    rendered pages are kept in memory (LRU, within `PAGE_CACHE_ENTRIES` and
    `PAGE_CACHE_BYTES`) by ETag; which analysis is shown is looked up on every request, so a
    new result is visible at once."""
    query = _page_key(request, video_id, params)

    def read(version: tuple[int, int, bool] | None, session: Session) -> Any:
        return fetch(video_id, **params, version=version, session=session)

    status, body, headers = await run_in_threadpool(
        _page,
        video_id,
        params.get("analysis_id"),
        query,
        request.headers.get("if-none-match", ""),
        read,
    )
    if status == 304:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/videos",
    response_model=VideoPage,
    summary="List videos, newest first",
    responses=error_responses(401, 403, 422),
)
async def list_videos(
    status: Annotated[Literal[VIDEO_STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    return JsonResponse(await run_in_threadpool(queries.list_videos, status, limit, offset))


@router.get(
    "/videos/{video_id}",
    response_model=VideoDetail,
    summary="One video and its latest analysis",
    responses=_READ_ERRORS,
)
async def get_video(video_id: VideoIdPath) -> Any:
    video = await run_in_threadpool(queries.get_video, video_id)
    if video is None:
        raise ApiError(404, f"video {video_id!r} not found")
    return video


@router.get(
    "/videos/{video_id}/analyses",
    response_model=list[AnalysisOut],
    summary="Analysis runs of a video: status, progress, fps, error",
    responses=_READ_ERRORS,
)
async def list_analyses(video_id: ExistingVideo) -> Any:
    return await run_in_threadpool(queries.list_analyses, video_id)


@router.get(
    "/videos/{video_id}/events",
    response_model=EventPage,
    summary="Detections and semantic events, filtered and paged",
    responses=_READ_ERRORS,
)
async def list_events(
    request: Request,
    video_id: VideoIdPath,
    event_type: ShortText = None,
    class_name: ShortText = None,
    track_id: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    t_from: Seconds = None,
    t_to: Seconds = None,
    limit: Limit = 100,
    offset: Offset = 0,
    after: After = None,
    analysis_id: AnalysisId = None,
) -> Any:
    return await result_page(
        request,
        video_id,
        queries.list_events,
        params=dict(
            event_type=event_type,
            class_name=class_name,
            track_id=track_id,
            t_from=t_from,
            t_to=t_to,
            limit=limit,
            offset=offset,
            after=after,
            analysis_id=analysis_id,
        ),
    )


@router.get(
    "/videos/{video_id}/tracks",
    response_model=TrackPage,
    summary="Tracks of a video",
    responses=_READ_ERRORS,
)
async def list_tracks(
    request: Request,
    video_id: VideoIdPath,
    class_name: ShortText = None,
    limit: Limit = 100,
    offset: Offset = 0,
    after: After = None,
    analysis_id: AnalysisId = None,
) -> Any:
    return await result_page(
        request,
        video_id,
        queries.list_tracks,
        params=dict(
            class_name=class_name,
            limit=limit,
            offset=offset,
            after=after,
            analysis_id=analysis_id,
        ),
    )


@router.get(
    "/videos/{video_id}/thumbnails",
    response_model=list[ThumbnailOut],
    summary="Keyframe thumbnails of a video (frame numbers and URLs)",
    responses=_READ_ERRORS,
)
async def list_thumbnails(video_id: ExistingVideo, analysis_id: AnalysisId = None) -> Any:
    rows = await run_in_threadpool(
        lambda: queries.list_thumbnails(video_id, analysis_id=analysis_id)
    )
    return [
        {**r, "url": f"/videos/{video_id}/thumbnails/{r['frame_number']}"}
        for r in rows
        if r["frame_number"] is not None
    ]


@router.get(
    "/videos/{video_id}/thumbnails/{frame_number}",
    summary="One annotated keyframe thumbnail",
    response_class=Response,
    responses=_JPEG_RESPONSES,
)
async def get_thumbnail(
    video_id: ExistingVideo,
    frame_number: Annotated[int, Path(ge=0, le=2**31 - 1)],
    analysis_id: AnalysisId = None,
) -> Response:
    image = await run_in_threadpool(
        lambda: queries.get_thumbnail(video_id, frame_number, analysis_id=analysis_id)
    )
    if image is None:
        raise ApiError(404, f"no thumbnail of {video_id!r} at frame {frame_number}")
    return _jpeg(image)


@router.get(
    "/videos/{video_id}/tracks/{track_id}/crop",
    summary="The best crop of a track (the thumbnail of a track in /ask and /tracks answers)",
    response_class=Response,
    responses=_JPEG_RESPONSES,
)
async def get_track_crop(
    video_id: ExistingVideo,
    track_id: Annotated[int, Path(ge=0, le=2**31 - 1)],
    analysis_id: AnalysisId = None,
) -> Response:
    image = await run_in_threadpool(
        lambda: queries.get_track_crop(video_id, track_id, analysis_id=analysis_id)
    )
    if image is None:
        raise ApiError(404, f"no crop of track {track_id} of {video_id!r}")
    return _jpeg(image)


@router.get(
    "/videos/{video_id}/depth",
    response_model=DepthPage,
    summary="Per-object depth statistics",
    responses=_READ_ERRORS,
)
async def get_depth(
    request: Request,
    video_id: VideoIdPath,
    frame_from: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    frame_to: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    track_id: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
    after: After = None,
    analysis_id: AnalysisId = None,
) -> Any:
    return await result_page(
        request,
        video_id,
        queries.get_depth,
        params=dict(
            frame_from=frame_from,
            frame_to=frame_to,
            track_id=track_id,
            limit=limit,
            offset=offset,
            after=after,
            analysis_id=analysis_id,
        ),
    )


@router.get(
    "/videos/{video_id}/display",
    response_model=list[DisplayOut],
    summary="Visualization data: track trails, occupancy heatmap, count timeline",
    responses=_READ_ERRORS,
)
async def get_display(
    video_id: ExistingVideo,
    kind: Annotated[Literal[queries.DISPLAY_KINDS] | None, Query()] = None,  # type: ignore[valid-type]
    analysis_id: AnalysisId = None,
) -> Any:
    return await run_in_threadpool(
        lambda: queries.get_display_data(video_id, kind, analysis_id=analysis_id)
    )


ExportFormat = Literal["mot", "coco", "csv", "parquet"]  # capstone.store.transfer.FORMATS
ExportTable = Literal["events", "tracks", "depth"]  # capstone.store.transfer.TABLES
_EXPORT_TYPES = {
    "mot": "text/plain; charset=utf-8",
    "coco": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


@router.get(
    "/videos/{video_id}/export",
    summary="Download an analysis: MOTChallenge tracks, COCO JSON, or a CSV/Parquet table",
    responses={
        **_READ_ERRORS,
        200: {"content": {t.split(";")[0]: {} for t in _EXPORT_TYPES.values()}},
    },
    response_class=Response,
)
async def export_results(
    video_id: VideoIdPath,
    format: Annotated[ExportFormat, Query(description="mot, coco, csv or parquet")] = "mot",
    table: Annotated[ExportTable, Query(description="csv/parquet: which table")] = "events",
    analysis_id: AnalysisId = None,
) -> Any:
    """Streamed from the database (a server-side cursor or `COPY ... TO STDOUT`), never all
    rows in memory; Parquet is spooled to a temporary file first (its footer comes last)."""
    import tempfile

    from starlette.responses import StreamingResponse

    from capstone.errors import InputError
    from capstone.store import transfer

    try:
        analysis = await run_in_threadpool(transfer.resolve_analysis, video_id, analysis_id)
    except InputError as exc:
        raise ApiError(404, str(exc)) from None
    name = transfer.file_name(video_id, format, table)
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Analysis-Id": str(analysis),
    }
    if format == "parquet":
        spool = tempfile.SpooledTemporaryFile(max_size=32 << 20)  # noqa: SIM115 (chunks closes it)
        await run_in_threadpool(transfer.write_parquet, analysis, table, spool)
        spool.seek(0)

        def chunks() -> Any:
            with spool:
                while block := spool.read(1 << 20):
                    yield block

        body = chunks()
    elif format == "mot":
        body = transfer.iter_mot(analysis)
    elif format == "coco":
        body = transfer.iter_coco(analysis)
    else:
        body = transfer.iter_csv(analysis, table)
    return StreamingResponse(body, media_type=_EXPORT_TYPES[format], headers=headers)
