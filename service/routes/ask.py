"""`GET /ask` (a question in English) and `GET /tracks` (the query language): reads, auth
only when configured, like `POST /search`.

Both go through the same functions as the CLI and the dashboard
(`capstone.search.ask.ask`, `capstone.search.tracks.run`). `q` is bounded by the
`MAX_QUERY_CHARS` setting (422 above it); a query with a bad token answers 422 naming the
token; a question that cannot be answered answers 200 with a sentence saying so.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from capstone.config import get_settings
from capstone.errors import InputError
from capstone.search import ask as asking
from capstone.search import ql, tracks
from service.auth import require_read
from service.errors import error_responses

router = APIRouter(tags=["search"], dependencies=[Depends(require_read)])

HARD_MAX_CHARS = 100_000  # the setting (MAX_QUERY_CHARS, default 500) is checked below it
Text = Annotated[str, Query(min_length=1, max_length=HARD_MAX_CHARS)]
VideoId = Annotated[str | None, Query(min_length=1, max_length=128, description="only this video")]


def _bounded(q: str) -> str:
    limit = get_settings().max_query_chars
    if len(q) > limit:
        raise InputError(f"q has {len(q)} characters, above the limit of {limit} (MAX_QUERY_CHARS)")
    return q


@router.get(
    "/ask",
    response_model=asking.Answer,
    summary="Answer a question in English from the stored results (how many / when / which / "
    "where)",
    responses=error_responses(401, 403, 422),
)
async def ask(q: Text, video_id: VideoId = None) -> Any:
    _bounded(q)
    return await run_in_threadpool(asking.ask, q, video_id)


@router.get(
    "/tracks",
    response_model=tracks.TrackResult,
    summary="Tracks matching a query-language string, e.g. `car color:red dir:left t:0:10..`",
    responses=error_responses(401, 403, 422),
)
async def find_tracks(q: Text) -> Any:
    query = ql.parse(_bounded(q))
    return await run_in_threadpool(tracks.run, query)
