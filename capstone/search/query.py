"""Search: similarity, full-text and hybrid (RRF) over frames, tracks and events, one SQL query.

What can be searched (`target`):

- `frames` (default): keyframes in `frame_embeddings`: MobileNetV2 image embedding
  (1280-d), a description (detected classes + ImageNet labels, full-text indexed), its
  MiniLM text embedding (384-d) and, when CLIP weights were present, a CLIP embedding (512-d).
- `tracks`: `apps_db_track`: the best crop's image embedding (1280-d) and, for persons,
  the OSNet re-id embedding (512-d); full text matches the class name.
- `events`: `apps_db_event`: descriptions and class names (full-text) and the description's
  MiniLM embedding (384-d).

How (`mode`): `vector` ranks by cosine distance on the HNSW indexes; `text` ranks by
`ts_rank_cd` over `websearch_to_tsquery('english', ...)` on the GIN indexes; `hybrid` runs
both as CTEs in ONE statement and fuses them with Reciprocal Rank Fusion
(`score = w_v / (60 + rank_v) + w_t / (60 + rank_t)`). Filters (videos, classes, event types,
time range, track length, depth range) are in the same SQL, applied inside each retriever;
pgvector's iterative index scan (`hnsw.iterative_scan = relaxed_order`) keeps scanning the
HNSW graph until enough rows pass them, so a selective filter still returns `k` rows. The
vector retriever takes `scan_depth` rows from the index (1000; 100 with filters) and
re-ranks them by exact distance, which keeps recall@10 at 0.99 on 1M dense 384-d rows.

A text query on frames that is exactly a class name, a plural or a synonym (`person`,
`people`, `vehicles`; `capstone.search.ql.class_of_word`) ranks its text retriever by the
confidence of that class's detections in the frame, and hybrid mode puts frames with a
confident (>= `CONFIDENT_DETECTION`) detection of it first: a doubtful box never outranks
confident ones.

Only the latest completed analysis of each video is searched unless `filters.analysis_ids`
names analyses (a video analysed twice would otherwise be found twice).

>>> q = SearchQuery(text="red car", k=5, filters=SearchFilters(video_ids=["test-001"]))
>>> q.effective_mode()
'hybrid'
>>> hits = search(q)  # doctest: +SKIP
>>> hits[0].video_id, hits[0].frame_number, hits[0].retriever  # doctest: +SKIP
('test-001', 120, 'both')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import text
from sqlmodel import Session

from capstone.config import get_settings
from capstone.errors import InputError
from capstone.search.ql import class_of_word
from capstone.store.engine import session_scope
from capstone.store.tables import CLIP_DIM, IMAGE_DIM, REID_DIM, TEXT_DIM

Target = Literal["frames", "tracks", "events"]
Mode = Literal["vector", "text", "hybrid"]
Space = Literal["auto", "image", "text", "clip", "reid"]

RRF_K = 60
MAX_K = 1000
# The HNSW scan returns this many rows (pgvector's iterative scan goes on past ef_search),
# re-ranked by exact distance, so near-ties in a dense cluster are found. bench/search.py,
# 1M x 384 with the m 32 text index: recall@10 0.99 at depth 1000 and 2000 (p50 27 / 75 ms);
# 100k x 1280: 0.99 at 500 / 1000 / 2000 (p50 11 / 26 / 42 ms). A filtered scan visits
# ~1/selectivity tuples per row it returns, so it goes less deep: 1 % filter at depth 100,
# recall 1.00 (m 32) / 0.97 (m 16).
VECTOR_SCAN_DEPTH = 1000
FILTERED_SCAN_DEPTH = 100
MAX_SCAN_DEPTH = 20000
MAX_TEXT_CHARS = 1000
# A text query that is exactly a class ranks frames with a detection of it at least this
# confident above the others (the detector's doubtful boxes are below it).
CONFIDENT_DETECTION = 0.4  # capstone.stages.attributes.DOUBTFUL_CONF, for one box
DIMS = {"image": IMAGE_DIM, "text": TEXT_DIM, "clip": CLIP_DIM, "reid": REID_DIM}


INT32_MAX = 2**31 - 1  # frame numbers, track ids, lengths: `integer` columns
MAX_ID = 2**62  # row ids (`bigint`), as the API bounds them


class SearchInputError(InputError):
    """A search request that cannot be run as given (empty, wrong vector length, NaN, ...)."""


class SearchReferenceNotFound(SearchInputError):
    """The example frame or track of a query does not exist (or has no embedding)."""

    http_status = 404
    code = "not_found"


class ImageTooLarge(SearchInputError):
    """A query image whose header declares more pixels than `MAX_IMAGE_PIXELS`."""

    http_status = 413
    code = "image_too_large"


class FrameRef(BaseModel):
    """An example keyframe: `video_id` and `frame_number` (in the latest completed analysis)."""

    model_config = ConfigDict(extra="forbid")

    video_id: str = Field(min_length=1, max_length=128)
    frame_number: int = Field(ge=0, le=INT32_MAX)
    analysis_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class TrackRef(BaseModel):
    """An example track: the `apps_db_track` row `id`, or `video_id` + `track_id`."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = Field(default=None, ge=1, le=MAX_ID, description="apps_db_track.id")
    video_id: str | None = Field(default=None, min_length=1, max_length=128)
    track_id: int | None = Field(default=None, ge=0, le=INT32_MAX)
    analysis_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class SearchFilters(BaseModel):
    """Filters applied inside the SQL of every retriever."""

    model_config = ConfigDict(extra="forbid")

    video_ids: list[str] | None = Field(default=None, max_length=1000)
    analysis_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=1000, description="default: latest completed analysis per video"
    )
    class_names: list[str] | None = Field(default=None, max_length=100)
    event_types: list[str] | None = Field(default=None, max_length=100)
    t_from: float | None = Field(default=None, ge=0, description="seconds")
    t_to: float | None = Field(default=None, ge=0, description="seconds")
    min_track_length: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="observations"
    )
    depth_min: float | None = None
    depth_max: float | None = None
    event_window_s: float = Field(
        default=1.0, ge=0, le=3600, description="frames: an event this close in time matches"
    )

    def active(self) -> bool:
        """True when any filter beyond the analysis scope is set."""
        keys = (
            "video_ids",
            "class_names",
            "event_types",
            "t_from",
            "t_to",
            "min_track_length",
            "depth_min",
            "depth_max",
        )
        return any(getattr(self, k) is not None for k in keys)


class SearchQuery(BaseModel):
    """One search request. Give `text`, and/or ONE example (`image`, `vector`, `frame`, `track`).

    `image` is encoded image bytes (JPEG/PNG/...) or a BGR `np.ndarray`. `space` says which
    embedding to compare (`auto`: image for pictures, frames and tracks; CLIP for text on frames
    when CLIP weights are present, else the MiniLM text embedding; a raw vector by its length).
    `weights` are the RRF weights `(vector, text)` of hybrid mode.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    image: bytes | np.ndarray | None = Field(default=None, exclude=True, repr=False)
    vector: list[float] | None = Field(default=None, max_length=4096)
    frame: FrameRef | None = None
    track: TrackRef | None = None
    target: Target = "frames"
    mode: Mode | None = Field(default=None, description="default: hybrid with text, else vector")
    space: Space = "auto"
    k: int = Field(default=10, ge=1, le=MAX_K)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    weights: tuple[float, float] = (1.0, 1.0)
    candidates: int | None = Field(
        default=None, ge=1, le=10 * MAX_K, description="rows per retriever (default max(4k, 40))"
    )
    scan_depth: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SCAN_DEPTH,
        description="rows the vector index scan returns, re-ranked by exact distance, before "
        f"the best `candidates` go on (default {VECTOR_SCAN_DEPTH}, {FILTERED_SCAN_DEPTH} with "
        "filters; deeper: higher recall, slower)",
    )
    ef_search: int | None = Field(default=None, ge=1, le=1000)
    exact: bool = Field(default=False, description="exact scan, no vector index (ground truth)")

    @classmethod
    def parse(cls, **fields: Any) -> SearchQuery:
        """Build a query, turning pydantic errors into one-line `SearchInputError`s."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise SearchInputError(f"invalid search query: {where}: {first.get('msg')}") from None

    def example_kind(self) -> str | None:
        kinds = [
            name
            for name, value in (
                ("image", self.image),
                ("vector", self.vector),
                ("frame", self.frame),
                ("track", self.track),
            )
            if value is not None
        ]
        if len(kinds) > 1:
            raise SearchInputError(f"give one example, not several: {', '.join(kinds)}")
        return kinds[0] if kinds else None

    def query_text(self) -> str | None:
        return self.text.strip() if self.text is not None and self.text.strip() else None

    def effective_mode(self) -> Mode:
        """The mode run: `mode`, else hybrid when there is text, else vector."""
        if self.mode is not None:
            return self.mode
        return "hybrid" if self.query_text() is not None else "vector"


class ThumbnailRef(BaseModel):
    """Where a UI gets the picture of a hit.

    `kind="thumbnail"`: `apps_db_displaydata` row (kind 'thumbnail') of `video_id`,
    `analysis_id`, `frame_number` (GET /videos/{video_id}/thumbnails/{frame_number});
    `kind="track_crop"`: `apps_db_track.best_crop` of `track_id` in `analysis_id`.
    """

    kind: Literal["thumbnail", "track_crop"]
    video_id: str
    analysis_id: int
    frame_number: int | None = None
    track_id: int | None = None


class SearchHit(BaseModel):
    """One result, with what a UI needs to show it."""

    target: Target
    id: int = Field(description="row id in the target's table")
    video_id: str
    analysis_id: int
    frame_number: int | None
    timestamp: float | None
    bbox: list[float] | None = None
    class_name: str | None = None
    track_id: int | None = None
    event_type: str | None = None
    description: str | None = None
    score: float = Field(description="vector: 1 - cosine distance; text: ts_rank_cd; hybrid: RRF")
    distance: float | None = Field(default=None, description="cosine distance, when ranked")
    vector_rank: int | None = None
    text_rank: int | None = None
    retriever: Literal["vector", "text", "both"]
    thumbnail: ThumbnailRef | None = None


# --------------------------------------------------------------------------- per-target SQL parts


@dataclass(frozen=True)
class _Target:
    table: str
    spaces: dict[str, str]  # space -> vector column
    tsv: str  # full-text expression over alias x
    columns: str  # the hit columns, over alias x
    thumbnail: str  # LATERAL subquery giving thumb_frame, or ''


_THUMB_LATERAL = """
LEFT JOIN LATERAL (
    SELECT d.frame_number AS thumb_frame FROM apps_db_displaydata d
    WHERE d.video_id = x.video_id AND d.analysis_id = x.analysis_id AND d.kind = 'thumbnail'
    ORDER BY abs(d.frame_number - x.frame_number), d.frame_number LIMIT 1
) th ON true"""

TARGETS: dict[str, _Target] = {
    "frames": _Target(
        table="frame_embeddings",
        spaces={"image": "embedding", "text": "text_embedding", "clip": "clip_embedding"},
        tsv="x.description_tsv",
        columns=(
            "x.video_id, x.analysis_id, x.frame_number, x.timestamp, NULL::float8[] AS bbox, "
            "NULL::text AS class_name, NULL::int AS track_id, NULL::text AS event_type, "
            "x.description"
        ),
        thumbnail=_THUMB_LATERAL,
    ),
    "tracks": _Target(
        table="apps_db_track",
        spaces={"image": "embedding", "reid": "reid_embedding"},
        tsv="to_tsvector('english', x.class_name)",
        columns=(
            "x.video_id, x.analysis_id, coalesce(x.best_frame, x.first_frame) AS frame_number, "
            "CASE WHEN x.last_frame > x.first_frame AND x.best_frame IS NOT NULL THEN "
            "x.first_timestamp + (x.best_frame - x.first_frame) * "
            "(x.last_timestamp - x.first_timestamp) / (x.last_frame - x.first_frame) "
            "ELSE x.first_timestamp END AS timestamp, "
            "x.best_bbox AS bbox, x.class_name, x.track_id, NULL::text AS event_type, "
            "NULL::text AS description"
        ),
        thumbnail="",
    ),
    "events": _Target(
        table="apps_db_event",
        spaces={"text": "text_embedding"},
        tsv="x.description_tsv",
        columns=(
            "x.video_id, x.analysis_id, x.frame_number, x.timestamp, x.bbox, x.class_name, "
            "x.track_id, x.event_type, x.description"
        ),
        thumbnail=_THUMB_LATERAL,
    ),
}

_SCOPE_LATEST = """scope AS (
    SELECT DISTINCT ON (a.video_id) a.id FROM apps_db_videoanalysis a
    WHERE a.status = 'completed'
    ORDER BY a.video_id, a.finished_at DESC NULLS LAST, a.id DESC
)"""
_SCOPE_GIVEN = "scope AS (SELECT unnest(CAST(:analysis_ids AS bigint[])) AS id)"
# the CTE `scope(id)` of the latest completed analysis of each video (also for track queries)
LATEST_SCOPE_CTE = _SCOPE_LATEST


def _filter_sql(target: str, f: SearchFilters, params: dict[str, Any]) -> list[str]:
    """WHERE conditions over alias x (values bound into `params`)."""
    # The scope is bound as a constant array (see `_scope_ids`): with an array the planner
    # cannot see (a sub-select) it guesses 10% of rows, reads them through the btree on
    # analysis_id and sorts (measured: 1.4 s at 100k rows) instead of using the HNSW index.
    where = ["x.analysis_id = ANY(:scope_ids)"]
    if f.video_ids is not None:
        where.append("x.video_id = ANY(:video_ids)")
        params["video_ids"] = list(f.video_ids)
    if f.t_from is not None:
        params["t_from"] = f.t_from
    if f.t_to is not None:
        params["t_to"] = f.t_to
    if f.class_names is not None:
        params["class_names"] = list(f.class_names)
    if f.event_types is not None:
        params["event_types"] = list(f.event_types)
    if f.min_track_length is not None:
        params["min_len"] = f.min_track_length
    depth = []
    if f.depth_min is not None:
        params["depth_min"] = f.depth_min
        depth.append("{c} >= :depth_min")
    if f.depth_max is not None:
        params["depth_max"] = f.depth_max
        depth.append("{c} <= :depth_max")

    if target == "tracks":
        if f.t_from is not None:
            where.append("x.last_timestamp >= :t_from")
        if f.t_to is not None:
            where.append("x.first_timestamp <= :t_to")
        if f.class_names is not None:
            where.append("x.class_name = ANY(:class_names)")
        if f.min_track_length is not None:
            where.append("x.length >= :min_len")
        where += [d.format(c="x.avg_depth") for d in depth]
        if f.event_types is not None:
            where.append(
                "EXISTS (SELECT 1 FROM apps_db_event e WHERE e.analysis_id = x.analysis_id "
                "AND e.track_id = x.track_id AND e.event_type = ANY(:event_types))"
            )
        return where

    if f.t_from is not None:
        where.append("x.timestamp >= :t_from")
    if f.t_to is not None:
        where.append("x.timestamp <= :t_to")

    if target == "events":
        if f.class_names is not None:
            where.append("x.class_name = ANY(:class_names)")
        if f.event_types is not None:
            where.append("x.event_type = ANY(:event_types)")
        track_conds = []
        if f.min_track_length is not None:
            track_conds.append("tr.length >= :min_len")
        track_conds += [d.format(c="tr.avg_depth") for d in depth]
        if track_conds:
            where.append(
                "EXISTS (SELECT 1 FROM apps_db_track tr WHERE tr.analysis_id = x.analysis_id "
                f"AND tr.track_id = x.track_id AND {' AND '.join(track_conds)})"
            )
        return where

    # frames: conditions on what was seen in (or, for events, near) the keyframe
    same_frame = (
        "e.video_id = x.video_id AND e.frame_number = x.frame_number "
        "AND e.analysis_id = x.analysis_id"
    )
    if f.class_names is not None:
        where.append(
            f"EXISTS (SELECT 1 FROM apps_db_event e WHERE {same_frame} "
            "AND e.event_type = 'detection' AND e.class_name = ANY(:class_names))"
        )
    if f.event_types is not None:
        params["event_window"] = f.event_window_s
        where.append(
            "EXISTS (SELECT 1 FROM apps_db_event e WHERE e.analysis_id = x.analysis_id "
            "AND e.event_type = ANY(:event_types) "
            "AND e.timestamp BETWEEN x.timestamp - :event_window AND x.timestamp + :event_window)"
        )
    if f.min_track_length is not None:
        where.append(
            f"EXISTS (SELECT 1 FROM apps_db_event e JOIN apps_db_track tr "
            f"ON tr.analysis_id = e.analysis_id AND tr.track_id = e.track_id "
            f"WHERE {same_frame} AND tr.length >= :min_len)"
        )
    if depth:
        where.append(
            "EXISTS (SELECT 1 FROM apps_db_depthdata dd WHERE dd.video_id = x.video_id "
            "AND dd.analysis_id = x.analysis_id AND dd.frame_number = x.frame_number AND "
            + " AND ".join(d.format(c="dd.avg_depth") for d in depth)
            + ")"
        )
    return where


# --------------------------------------------------------------------------- planning


@dataclass
class SearchPlan:
    """The statement, its parameters and the session settings of one query."""

    sql: str
    params: dict[str, Any]
    settings: dict[str, str] = field(default_factory=dict)
    mode: Mode = "vector"
    space: str | None = None


def _check_vector(values: Any, space: str, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    dim = DIMS[space]
    if arr.size != dim:
        raise SearchInputError(
            f"{what} has length {arr.size}; the {space} embedding space has {dim} dimensions"
        )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise SearchInputError(f"{what} contains NaN or infinity (first at index {bad[0]})")
    if not np.any(arr):
        raise SearchInputError(f"{what} is all zeros; cosine distance is undefined")
    return arr.astype(np.float32)


_UNDECODABLE = "the query image could not be decoded (expected JPEG/PNG/WebP/BMP/TIFF)"


def _too_large(width: int, height: int, limit: int) -> str:
    return (
        f"the query image is {width}x{height} = {width * height} pixels, above the limit of "
        f"{limit} pixels (MAX_IMAGE_PIXELS)"
    )


def image_size(data: bytes, limit: int) -> tuple[int, int]:
    """(width, height) read from an encoded image's header without decoding its pixels;
    `ImageTooLarge` above `limit` pixels, `SearchInputError` when no header is readable.

    >>> import cv2
    >>> image_size(cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))[1].tobytes(), 10**6)
    (30, 20)
    """
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:  # lazy: reads the header only
                width, height = im.size
    except Image.DecompressionBombError:  # Pillow's own cap (~179 megapixels) is above ours
        raise ImageTooLarge(
            f"the query image is above the limit of {limit} pixels (MAX_IMAGE_PIXELS)"
        ) from None
    except Exception:  # any header Pillow cannot read: truncated, unknown format, bad fields
        raise SearchInputError(_UNDECODABLE) from None
    if width < 1 or height < 1:
        raise SearchInputError(_UNDECODABLE)
    if width * height > limit:
        raise ImageTooLarge(_too_large(width, height, limit))
    return width, height


def _decode_image(image: bytes | np.ndarray) -> np.ndarray:
    """A BGR array of an encoded query image, refused before decoding when its header
    declares more than `MAX_IMAGE_PIXELS` pixels (a few hundred bytes can declare
    30000 x 30000, which would decode to 2.7 GB)."""
    import cv2

    if isinstance(image, np.ndarray):
        arr = image
    else:
        if not image:
            raise SearchInputError("the query image is empty")
        limit = get_settings().max_image_pixels
        image_size(image, limit)  # refuses a bomb before any pixel is decoded
        try:
            arr = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error:
            arr = None
        if arr is None:
            raise SearchInputError(_UNDECODABLE)
        if arr.shape[0] * arr.shape[1] > limit:  # the decoder read another size than the header
            raise ImageTooLarge(_too_large(arr.shape[1], arr.shape[0], limit))
    if arr.ndim == 2:
        arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise SearchInputError(f"the query image must be H x W x 3 (BGR), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _vector_literal(arr: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in arr.tolist()) + "]"


def _resolve_space(q: SearchQuery, example: str | None, target: _Target, name: str) -> str:
    """Which embedding space the vector retriever compares in."""
    supported = list(target.spaces)
    space = q.space
    if space == "auto":
        if example == "vector":
            n = len(q.vector or [])
            fits = [s for s in supported if DIMS[s] == n]
            if not fits:
                raise SearchInputError(
                    f"vector has length {n}; {name} are searchable by "
                    + ", ".join(f"{s} ({DIMS[s]})" for s in supported)
                )
            space = fits[0]
        elif example is None:  # text
            if "clip" in supported and _clip() is not None:
                space = "clip"
            elif "text" in supported:
                space = "text"
            else:
                raise SearchInputError(
                    f"{name} have no text embeddings; use mode 'text' for a full-text search"
                )
        elif example in ("image", "frame", "track"):
            if "image" not in supported:
                raise SearchInputError(
                    f"{name} have no image embeddings; search them by text (or search frames)"
                )
            space = "image"
    if space not in supported:
        raise SearchInputError(
            f"{name} have no {space} embeddings; supported: {', '.join(supported)}"
        )
    return space


def _clip() -> Any:
    from capstone.models import embedders

    return embedders.clip_embedder()


def _query_vector(session: Session, q: SearchQuery, example: str | None, space: str) -> np.ndarray:
    """The query vector in `space`: embedded on the fly, or fetched for frame/track refs."""
    from capstone.models import embedders

    if example == "vector":
        return _check_vector(q.vector, space, "vector")
    if example == "image":
        assert q.image is not None
        image = _decode_image(q.image)
        if space == "image":
            return embedders.image_embedder().embed([image])[0]
        if space == "clip":
            clip = _clip()
            if clip is None:
                raise SearchInputError("no CLIP weights are present; use space 'image'")
            return clip.embed_images([image])[0]
        if space == "reid":
            reid = embedders.reid_embedder()
            if reid is None:
                raise SearchInputError("the re-id model is not present; use space 'image'")
            return reid.embed([image])[0]
        raise SearchInputError(f"an image cannot be embedded in the {space} space")
    if example is None:
        text_query = q.query_text()
        assert text_query is not None
        if space == "clip":
            clip = _clip()
            if clip is None:
                raise SearchInputError("no CLIP weights are present; use space 'text'")
            return clip.embed_texts([text_query])[0]
        return embedders.text_embedder().embed([text_query])[0]
    if example == "frame":
        return _frame_vector(session, q, space)
    return _track_vector(session, q, space)


def _frame_vector(session: Session, q: SearchQuery, space: str) -> np.ndarray:
    ref = q.frame
    assert ref is not None
    column = TARGETS["frames"].spaces.get(space)
    if column is None:
        raise SearchInputError(f"frames have no {space} embeddings")
    scope = _SCOPE_GIVEN if ref.analysis_id is not None else _SCOPE_LATEST
    params: dict[str, Any] = {"v": ref.video_id, "f": ref.frame_number}
    if ref.analysis_id is not None:
        params["analysis_ids"] = [ref.analysis_id]
    row = session.execute(
        text(
            f"WITH {scope} SELECT x.{column}::text, x.frame_number FROM frame_embeddings x "
            "WHERE x.video_id = :v AND x.analysis_id IN (SELECT id FROM scope) "
            "ORDER BY abs(x.frame_number - :f), x.frame_number LIMIT 3"
        ),
        params,
    ).all()
    exact = [r for r in row if r[1] == ref.frame_number]
    if not exact:
        near = ", ".join(str(r[1]) for r in row)
        hint = f"; nearest keyframes: {near}" if near else " (video not analysed with 'embed'?)"
        raise SearchReferenceNotFound(
            f"frame {ref.frame_number} of video {ref.video_id!r} is not an embedded keyframe{hint}"
        )
    if exact[0][0] is None:
        raise SearchReferenceNotFound(
            f"frame {ref.frame_number} of video {ref.video_id!r} has no {space} embedding"
        )
    return np.asarray(_parse_vector(exact[0][0]), np.float32)


def _track_vector(session: Session, q: SearchQuery, space: str) -> np.ndarray:
    ref = q.track
    assert ref is not None
    column = TARGETS["tracks"].spaces.get(space)
    if column is None:
        raise SearchInputError(f"tracks have no {space} embeddings")
    if ref.id is not None:
        sql = f"SELECT x.{column}::text FROM apps_db_track x WHERE x.id = :id"
        params: dict[str, Any] = {"id": ref.id}
        label = f"track row {ref.id}"
    elif ref.video_id is not None and ref.track_id is not None:
        scope = _SCOPE_GIVEN if ref.analysis_id is not None else _SCOPE_LATEST
        sql = (
            f"WITH {scope} SELECT x.{column}::text FROM apps_db_track x WHERE x.video_id = :v "
            "AND x.track_id = :t AND x.analysis_id IN (SELECT id FROM scope) "
            "ORDER BY x.analysis_id DESC LIMIT 1"
        )
        params = {"v": ref.video_id, "t": ref.track_id}
        if ref.analysis_id is not None:
            params["analysis_ids"] = [ref.analysis_id]
        label = f"track {ref.track_id} of video {ref.video_id!r}"
    else:
        raise SearchInputError("a track reference needs `id`, or `video_id` and `track_id`")
    found = session.execute(text(sql), params).first()
    if found is None:
        raise SearchReferenceNotFound(f"{label} not found")
    if found[0] is None:
        raise SearchReferenceNotFound(f"{label} has no {space} embedding")
    return np.asarray(_parse_vector(found[0]), np.float32)


def _parse_vector(literal: str) -> list[float]:
    return [float(v) for v in literal.strip("[]").split(",")]


def _scope_ids(session: Session, given: list[int] | None) -> list[int]:
    """The analyses searched: `given`, else the latest completed analysis of each video."""
    if given is not None:
        return list(given)
    return [int(r[0]) for r in session.execute(text(f"WITH {_SCOPE_LATEST} SELECT id FROM scope"))]


def plan(q: SearchQuery, session: Session) -> SearchPlan:
    """Validate `q`, compute its query vector, and build the one SQL statement that runs it."""
    name = q.target
    target = TARGETS[name]
    mode = q.effective_mode()
    example = q.example_kind()
    text_query = q.query_text()
    if q.text is not None and text_query is None and example is None:
        raise SearchInputError("empty query: the text is blank")
    if text_query is None and example is None:
        raise SearchInputError("empty query: give text, an image, a vector, a frame or a track")
    if mode in ("text", "hybrid") and text_query is None:
        raise SearchInputError(f"mode {mode!r} needs a text query")
    if mode == "vector" and text_query is not None and example is not None:
        raise SearchInputError("mode 'vector' takes text or one example, not both (try hybrid)")
    if mode == "text" and example is not None:
        raise SearchInputError("mode 'text' takes no image, vector, frame or track")
    f = q.filters
    if f.t_from is not None and f.t_to is not None and f.t_from > f.t_to:
        raise SearchInputError(f"t_from ({f.t_from}) is after t_to ({f.t_to})")
    if f.depth_min is not None and f.depth_max is not None and f.depth_min > f.depth_max:
        raise SearchInputError(f"depth_min ({f.depth_min}) is above depth_max ({f.depth_max})")
    for value in (*q.weights, f.t_from, f.t_to, f.depth_min, f.depth_max):
        if value is not None and not math.isfinite(value):
            raise SearchInputError("weights and filter bounds must be finite numbers")
    if any(w < 0 for w in q.weights) or not any(q.weights):
        raise SearchInputError("weights must be >= 0 and not both 0")

    params: dict[str, Any] = {"k": q.k, "scope_ids": _scope_ids(session, f.analysis_ids)}
    where = " AND ".join(_filter_sql(name, f, params))
    # each retriever fetches more than k: RRF needs depth, and with relaxed_order + a filter
    # the first k rows that pass are not always the k nearest of those that pass
    n_cand = q.candidates or max(4 * q.k, 40)
    params["n_cand"] = n_cand
    default_depth = FILTERED_SCAN_DEPTH if f.active() else VECTOR_SCAN_DEPTH
    params["depth"] = max(n_cand, q.scan_depth or default_depth)
    ctes: list[str] = []
    space = None
    settings: dict[str, str] = {}

    if mode in ("vector", "hybrid"):
        space = _resolve_space(q, example, target, name)
        vector = _query_vector(session, q, example, space)
        vector = _check_vector(vector, space, "query vector")
        params["qv"] = _vector_literal(vector)
        column = target.spaces[space]
        dim = DIMS[space]
        ctes.append(
            f"vec_c AS MATERIALIZED (SELECT x.id, x.{column} <=> CAST(:qv AS vector({dim})) "
            f"AS distance FROM {target.table} x WHERE x.{column} IS NOT NULL AND {where} "
            "ORDER BY distance LIMIT :depth)"
        )
        # relaxed_order returns rows only roughly in order, yet the planner trusts the CTE's
        # ORDER BY (an incremental sort that stops reading early): `distance + 0` forces a
        # real sort, so all `depth` rows are scanned and ranked exactly, and the best kept
        ctes.append(
            "vec AS (SELECT id, distance, rank FROM (SELECT id, distance, row_number() OVER "
            "(ORDER BY distance + 0, id) AS rank FROM vec_c) ranked WHERE rank <= :n_cand)"
        )
        # bench/search.py (100k x 1280, 200k x 384): recall@10 0.70 / 0.86 / 0.93 / 0.99 at
        # ef_search 40 / 100 / 200 / 400, p50 latency flat (5-9 ms): default to 400 (the
        # scan depth, not ef_search, is what lifts recall at 1M rows)
        ef = q.ef_search or min(1000, max(400, 5 * n_cand))
        settings["hnsw.ef_search"] = str(ef)
        settings["hnsw.iterative_scan"] = "relaxed_order"
        settings["hnsw.max_scan_tuples"] = str(
            max(100_000 if f.active() else 20_000, 10 * params["depth"])
        )
        if q.exact:
            settings["enable_indexscan"] = "off"
    rank_classes = None
    if mode in ("text", "hybrid") and name == "frames" and text_query is not None:
        rank_classes = class_of_word(text_query.lower())
    if mode in ("text", "hybrid") and rank_classes is not None:
        # the text is exactly a class ("person", "people", "vehicles"): frames that show it,
        # ranked by the confidence of its detections there (a doubtful 0.29 box must not
        # outrank confident ones), full text only breaking ties
        params["qt"] = " or ".join(rank_classes)
        params["rank_classes"] = list(rank_classes)
        ctes.append(
            "txt_c AS MATERIALIZED (SELECT x.id, coalesce((SELECT max(e.confidence) "
            "FROM apps_db_event e WHERE e.analysis_id = x.analysis_id "
            "AND e.frame_number = x.frame_number AND e.event_type = 'detection' "
            "AND e.class_name = ANY(:rank_classes)), 0) "
            f"+ 1e-3 * ts_rank_cd({target.tsv}, tq.q) AS text_score "
            f"FROM {target.table} x, websearch_to_tsquery('english', :qt) AS tq(q) "
            f"WHERE {target.tsv} @@ tq.q AND {where} "
            "ORDER BY text_score DESC, x.id LIMIT :n_cand)"
        )
    elif mode in ("text", "hybrid"):
        params["qt"] = text_query
        ctes.append(
            f"txt_c AS MATERIALIZED (SELECT x.id, ts_rank_cd({target.tsv}, tq.q) AS text_score "
            f"FROM {target.table} x, websearch_to_tsquery('english', :qt) AS tq(q) "
            f"WHERE {target.tsv} @@ tq.q AND {where} "
            "ORDER BY text_score DESC, x.id LIMIT :n_cand)"
        )
    if mode in ("text", "hybrid"):
        ctes.append(
            "txt AS (SELECT id, text_score, row_number() OVER (ORDER BY text_score DESC, id) "
            "AS rank FROM txt_c)"
        )

    if mode == "vector":
        fused = (
            "fused AS (SELECT id, 1 - distance AS score, distance, rank AS vector_rank, "
            "NULL::bigint AS text_rank, 'vector' AS retriever FROM vec)"
        )
    elif mode == "text":
        fused = (
            "fused AS (SELECT id, text_score AS score, NULL::float8 AS distance, "
            "NULL::bigint AS vector_rank, rank AS text_rank, 'text' AS retriever FROM txt)"
        )
    else:
        params["wv"], params["wt"] = float(q.weights[0]), float(q.weights[1])
        params["rrf_k"] = RRF_K
        fused = (
            "fused AS (SELECT coalesce(v.id, t.id) AS id, "
            "coalesce(:wv / (:rrf_k + v.rank), 0) + coalesce(:wt / (:rrf_k + t.rank), 0) "
            "AS score, v.distance, v.rank AS vector_rank, t.rank AS text_rank, "
            "CASE WHEN v.id IS NOT NULL AND t.id IS NOT NULL THEN 'both' "
            "WHEN v.id IS NOT NULL THEN 'vector' ELSE 'text' END AS retriever, "
            "t.text_score AS class_conf FROM vec v FULL OUTER JOIN txt t ON v.id = t.id)"
        )
    ctes.append(fused)
    order = "fused.score DESC, fused.distance NULLS LAST, fused.id"
    if rank_classes is not None and mode == "hybrid":
        # fused by rank, but frames with a confident detection of the class come first
        params["confident"] = CONFIDENT_DETECTION
        order = "(coalesce(fused.class_conf, 0) >= :confident) DESC, " + order
    thumb_col = "th.thumb_frame" if target.thumbnail else "NULL::int AS thumb_frame"
    sql = (
        "WITH "
        + ",\n".join(ctes)
        + f"\nSELECT fused.id, fused.score, fused.distance, fused.vector_rank, fused.text_rank, "
        f"fused.retriever, {target.columns}, {thumb_col}\n"
        f"FROM fused JOIN {target.table} x ON x.id = fused.id{target.thumbnail}\n"
        f"ORDER BY {order} LIMIT :k"
    )
    return SearchPlan(sql=sql, params=params, settings=settings, mode=mode, space=space)


def _apply_settings(session: Session, settings: dict[str, str]) -> None:
    """SET LOCAL equivalents (transaction-scoped), in one round trip."""
    if not settings:
        return
    names = list(settings)
    calls = ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(names)))
    params: dict[str, Any] = {}
    for i, key in enumerate(names):
        params[f"n{i}"], params[f"v{i}"] = key, settings[key]
    session.execute(text(f"SELECT {calls}"), params)


def _hit(target: str, row: Any) -> SearchHit:
    m = row._mapping
    if target == "tracks":
        thumb = ThumbnailRef(
            kind="track_crop",
            video_id=m["video_id"],
            analysis_id=m["analysis_id"],
            track_id=m["track_id"],
            frame_number=m["frame_number"],
        )
    elif m["thumb_frame"] is not None:
        thumb = ThumbnailRef(
            kind="thumbnail",
            video_id=m["video_id"],
            analysis_id=m["analysis_id"],
            frame_number=m["thumb_frame"],
        )
    else:
        thumb = None
    return SearchHit(
        target=target,  # type: ignore[arg-type]
        id=m["id"],
        video_id=m["video_id"],
        analysis_id=m["analysis_id"],
        frame_number=m["frame_number"],
        timestamp=m["timestamp"],
        bbox=list(m["bbox"]) if m["bbox"] is not None else None,
        class_name=m["class_name"],
        track_id=m["track_id"],
        event_type=m["event_type"],
        description=m["description"],
        score=float(m["score"]),
        distance=float(m["distance"]) if m["distance"] is not None else None,
        vector_rank=m["vector_rank"],
        text_rank=m["text_rank"],
        retriever=m["retriever"],
        thumbnail=thumb,
    )


def search(query: SearchQuery, *, session: Session | None = None) -> list[SearchHit]:
    """Run `query`: at most `k` hits, best first.

    Raises `SearchInputError` for a request that cannot run (empty, wrong vector length,
    NaN, unsupported space) and `SearchReferenceNotFound` for an unknown frame or track.

    Args:
        query: what to find (`SearchQuery`: text and/or one example, target, mode, filters).
        session: run in this session (default: a new one on the configured database,
            `capstone.store.engine.session_scope`).

    Returns:
        `SearchHit`s, best first: video, analysis, frame, time, box, class, track, event,
        the score and the rank each retriever gave.

    >>> hits = search(SearchQuery(text="person enters", target="events", k=3))  # doctest: +SKIP
    >>> [(h.video_id, h.event_type, h.timestamp) for h in hits]  # doctest: +SKIP
    [('test-001', 'enter', 4.2), ...]
    """
    if session is not None:
        return _search_in(session, query)
    with session_scope() as own:
        return _search_in(own, query)


def _search_in(session: Session, query: SearchQuery) -> list[SearchHit]:
    p = plan(query, session)
    _apply_settings(session, p.settings)
    rows = session.execute(text(p.sql), p.params).all()
    return [_hit(query.target, r) for r in rows]


def explain(query: SearchQuery, *, session: Session | None = None, analyze: bool = False) -> str:
    """The PostgreSQL plan of `query` (EXPLAIN [ANALYZE]), one line per plan node."""

    def run(s: Session) -> str:
        p = plan(query, s)
        _apply_settings(s, p.settings)
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
        return "\n".join(r[0] for r in s.execute(text(prefix + p.sql), p.params).all())

    if session is not None:
        return run(session)
    with session_scope() as own:
        return run(own)


def hits_table(hits: Sequence[SearchHit]) -> list[dict[str, Any]]:
    """Hits as flat dicts (for printing and JSON)."""
    return [h.model_dump(mode="json") for h in hits]
