"""`POST /search`: similarity, full-text and hybrid search (a read: auth only when configured).

The body is `capstone.search.query.SearchQuery` with the image as base64 (`image_base64`).
Bad input (wrong vector length, NaN, empty query, undecodable image) answers 422 with the
reason; an unknown example frame or track answers 404; an image whose header declares more
than `MAX_IMAGE_PIXELS` pixels answers 413 before it is decoded.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from capstone.search import query as searching
from service.auth import require_read
from service.errors import ApiError, error_responses

router = APIRouter(tags=["search"], dependencies=[Depends(require_read)])

MAX_IMAGE_BYTES = 10 * 1024 * 1024


class SearchRequest(BaseModel):
    """A search: `text` and/or one example (`image_base64`, `vector`, `frame`, `track`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "red car", "k": 10},
                {
                    "text": "person",
                    "mode": "hybrid",
                    "filters": {"video_ids": ["test-001"], "t_from": 0, "t_to": 30},
                },
                {"frame": {"video_id": "test-001", "frame_number": 120}, "k": 5},
                {"track": {"video_id": "test-001", "track_id": 7}, "target": "tracks"},
            ]
        },
    )

    text: str | None = Field(default=None, max_length=searching.MAX_TEXT_CHARS)
    image_base64: str | None = Field(
        default=None,
        max_length=MAX_IMAGE_BYTES * 4 // 3 + 4,
        description="query image (JPEG/PNG), base64",
    )
    vector: list[float] | None = Field(default=None, max_length=4096)
    frame: searching.FrameRef | None = None
    track: searching.TrackRef | None = None
    target: searching.Target = "frames"
    mode: searching.Mode | None = None
    space: searching.Space = "auto"
    k: int = Field(default=10, ge=1, le=searching.MAX_K)
    filters: searching.SearchFilters = Field(default_factory=searching.SearchFilters)
    weights: tuple[float, float] = (1.0, 1.0)

    def to_query(self) -> searching.SearchQuery:
        fields = self.model_dump(exclude={"image_base64"}, exclude_none=True)
        fields["filters"] = self.filters
        if self.frame is not None:
            fields["frame"] = self.frame
        if self.track is not None:
            fields["track"] = self.track
        if self.image_base64 is not None:
            try:
                fields["image"] = base64.b64decode(self.image_base64, validate=True)
            except (binascii.Error, ValueError):
                raise searching.SearchInputError("image_base64 is not valid base64") from None
        return searching.SearchQuery.parse(**fields)


class SearchResponse(BaseModel):
    """Hits, best first, and how the query ran."""

    mode: searching.Mode
    target: searching.Target
    k: int
    hits: list[searching.SearchHit]


def _run(body: SearchRequest) -> dict[str, Any]:
    query = body.to_query()
    try:
        hits = searching.search(query)
    except searching.SearchReferenceNotFound as exc:
        raise ApiError(404, str(exc)) from None
    return {"mode": query.effective_mode(), "target": query.target, "k": query.k, "hits": hits}


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Similarity, full-text or hybrid (RRF) search over keyframes, tracks or events",
    responses=error_responses(401, 403, 404, 413, 422),
)
async def search(body: SearchRequest) -> Any:
    return await run_in_threadpool(_run, body)
