"""SQLModel tables. Names are fixed by the original verification SQL (SPEC section 5/6).

Vector sizes: MobileNetV2 image features 1280, all-MiniLM-L6-v2 text 384,
OSNet re-id 512, CLIP joint space 512.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlmodel import Field, SQLModel

IMAGE_DIM = 1280
TEXT_DIM = 384
REID_DIM = 512
CLIP_DIM = 512

VIDEO_STATUSES = ("pending", "processing", "completed", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now(), **kw),
    )


def _fk_video() -> Any:
    return Field(
        sa_column=Column(
            Text, ForeignKey("apps_db_video.video_id", ondelete="CASCADE"), nullable=False
        )
    )


def _fk_analysis() -> Any:
    return Field(
        sa_column=Column(
            BigInteger, ForeignKey("apps_db_videoanalysis.id", ondelete="CASCADE"), nullable=False
        )
    )


# 384-d text embeddings crowd into dense clusters: m 32 / ef_construction 128 keeps recall@10
# at 0.99 on 1M rows (0.91 with m 16 / 64; bench/search.py, migration 0002)
TEXT_HNSW = {"m": 32, "ef_construction": 128}


class Video(SQLModel, table=True):
    __tablename__ = "apps_db_video"

    video_id: str = Field(primary_key=True)
    title: str | None = None
    source_uri: str | None = None
    sha256: str | None = Field(default=None, index=True)
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_count: int | None = None
    codec: str | None = None
    file_size: int | None = Field(default=None, sa_column=Column(BigInteger))
    status: str = Field(default="pending", index=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts(onupdate=func.now())


class VideoAnalysis(SQLModel, table=True):
    __tablename__ = "apps_db_videoanalysis"
    __table_args__ = (UniqueConstraint("video_id", "params_hash", name="uq_analysis_video_params"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    video_id: str = _fk_video()
    status: str = Field(default="pending", index=True)
    progress: float = 0.0
    stage: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    params_hash: str
    error: str | None = None
    frames_processed: int = 0
    fps: float | None = None
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    source_uri: str | None = None  # what a worker analyzes when it picks the row up
    lease_owner: str | None = None
    lease_expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    attempts: int = 0
    chunks_total: int = 0  # time chunks of the video (`AnalysisChunk`), 0 before planning
    chunks_done: int = 0
    notebook: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime = _ts()
    updated_at: datetime = _ts(onupdate=func.now())


class AnalysisChunk(SQLModel, table=True):
    """One time chunk of an analysis (`capstone.core.chunks`): its own lease, so chunks run in
    parallel, and `state` (what its stages hand to the publish step) once it is `done`.
    Its rows wait in the `staging_*` tables until the analysis is published."""

    __tablename__ = "apps_db_analysischunk"
    __table_args__ = (
        UniqueConstraint("analysis_id", "chunk_index", name="uq_chunk_analysis_index"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    analysis_id: int = _fk_analysis()
    chunk_index: int
    start_frame: int  # first video frame of the chunk
    end_frame: int  # one past its last video frame
    status: str = "pending"  # pending | processing | done
    frames_expected: int = 0  # sampled frames the chunk should see
    frames_processed: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    attempts: int = 0
    state: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    updated_at: datetime = _ts(onupdate=func.now())


class Event(SQLModel, table=True):
    __tablename__ = "apps_db_event"
    __table_args__ = (
        Index("ix_event_video_frame", "video_id", "frame_number"),
        Index("ix_event_analysis_frame_id", "analysis_id", "frame_number", "id"),
        Index("ix_event_analysis_type", "analysis_id", "event_type"),
        Index("ix_event_tsv", "description_tsv", postgresql_using="gin"),
        Index(
            "ix_event_text_embedding_hnsw",
            "text_embedding",
            postgresql_using="hnsw",
            postgresql_with=TEXT_HNSW,  # denser graph: see migration 0002
            postgresql_ops={"text_embedding": "vector_cosine_ops"},
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    video_id: str = _fk_video()
    analysis_id: int = _fk_analysis()
    frame_number: int = Field(sa_column=Column(Integer, nullable=False))
    timestamp: float = Field(sa_column=Column(Float, nullable=False))
    event_type: str = Field(default="detection", index=True)
    class_name: str | None = None
    confidence: float | None = None
    bbox: list[float] | None = Field(default=None, sa_column=Column(ARRAY(Float)))
    track_id: int | None = None
    attributes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    description: str | None = None
    description_tsv: str | None = Field(
        default=None,
        sa_column=Column(
            TSVECTOR,
            Computed(
                "to_tsvector('english', coalesce(description, '') || ' ' "
                "|| coalesce(class_name, ''))",
                persisted=True,
            ),
        ),
    )
    text_embedding: list[float] | None = Field(default=None, sa_column=Column(Vector(TEXT_DIM)))


class Track(SQLModel, table=True):
    __tablename__ = "apps_db_track"
    __table_args__ = (
        UniqueConstraint("analysis_id", "track_id", name="uq_track_analysis_track"),
        Index(
            "ix_track_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index(
            "ix_track_reid_embedding_hnsw",
            "reid_embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"reid_embedding": "vector_cosine_ops"},
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    video_id: str = _fk_video()
    analysis_id: int = _fk_analysis()
    track_id: int
    identity_id: int | None = None
    class_name: str
    first_frame: int
    last_frame: int
    first_timestamp: float
    last_timestamp: float
    length: int
    mean_confidence: float
    best_frame: int | None = None
    best_bbox: list[float] | None = Field(default=None, sa_column=Column(ARRAY(Float)))
    best_crop: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    avg_depth: float | None = None
    min_depth: float | None = None
    max_depth: float | None = None
    embedding: list[float] | None = Field(default=None, sa_column=Column(Vector(IMAGE_DIM)))
    reid_embedding: list[float] | None = Field(default=None, sa_column=Column(Vector(REID_DIM)))


class DepthData(SQLModel, table=True):
    __tablename__ = "apps_db_depthdata"
    __table_args__ = (Index("ix_depth_video_frame", "video_id", "frame_number"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    video_id: str = _fk_video()
    analysis_id: int = _fk_analysis()
    frame_number: int
    track_id: int | None = None
    class_name: str | None = None
    bbox: list[float] | None = Field(default=None, sa_column=Column(ARRAY(Float)))
    avg_depth: float
    min_depth: float
    max_depth: float
    depth_variance: float
    method: str
    depth_map: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


class DisplayData(SQLModel, table=True):
    __tablename__ = "apps_db_displaydata"
    __table_args__ = (Index("ix_display_video_frame", "video_id", "kind", "frame_number"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    video_id: str = _fk_video()
    analysis_id: int = _fk_analysis()
    kind: str  # thumbnail | trails | heatmap | counts
    frame_number: int | None = None
    timestamp: float | None = None
    image: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))


class FrameEmbedding(SQLModel, table=True):
    __tablename__ = "frame_embeddings"
    __table_args__ = (
        UniqueConstraint("analysis_id", "frame_number", name="uq_frame_embedding"),
        Index(
            "ix_frame_embeddings_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_l2_ops"},
        ),
        Index(
            "ix_frame_embeddings_cos_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index(
            "ix_frame_text_embedding_hnsw",
            "text_embedding",
            postgresql_using="hnsw",
            postgresql_with=TEXT_HNSW,  # denser graph: see migration 0002
            postgresql_ops={"text_embedding": "vector_cosine_ops"},
        ),
        Index(
            "ix_frame_clip_embedding_hnsw",
            "clip_embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"clip_embedding": "vector_cosine_ops"},
        ),
        Index("ix_frame_description_tsv", "description_tsv", postgresql_using="gin"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    video_id: str = _fk_video()
    analysis_id: int = _fk_analysis()
    frame_number: int
    timestamp: float
    model: str
    embedding: list[float] = Field(sa_column=Column(Vector(IMAGE_DIM), nullable=False))
    description: str | None = None
    description_tsv: str | None = Field(
        default=None,
        sa_column=Column(
            TSVECTOR,
            Computed("to_tsvector('english', coalesce(description, ''))", persisted=True),
        ),
    )
    text_embedding: list[float] | None = Field(default=None, sa_column=Column(Vector(TEXT_DIM)))
    clip_embedding: list[float] | None = Field(default=None, sa_column=Column(Vector(CLIP_DIM)))


class TrackAttributes(SQLModel, table=True):
    """What a track looks like and does, one row per final track (`capstone.stages.attributes`):
    times, confidence, colour (Berlin & Kay terms), direction, path, speed, size, fine
    ImageNet type, and whether it may be counted (`plausible`, with its `doubts`)."""

    __tablename__ = "apps_db_trackattributes"
    __table_args__ = (
        UniqueConstraint("analysis_id", "track_id", name="uq_trackattributes_analysis_track"),
        Index("ix_trackattributes_analysis_class", "analysis_id", "class_name"),
        Index("ix_trackattributes_analysis_color", "analysis_id", "color"),
        Index("ix_trackattributes_analysis_direction", "analysis_id", "direction"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    video_id: str = _fk_video()
    analysis_id: int = _fk_analysis()
    track_id: int
    class_name: str
    t_start: float
    t_end: float
    duration_s: float
    confidence: float
    color: str | None = None
    color_shares: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    direction: str | None = None
    dx_px: float | None = None
    dy_px: float | None = None
    path_px: float | None = None
    speed_px_s: float | None = None
    speed_m_s: float | None = None
    pause_s: float | None = None
    width_px: float | None = None
    height_px: float | None = None
    size_frac: float | None = None
    fine_type: str | None = None
    fine_types: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    plausible: bool = True
    doubts: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default="{}"),
    )
    heat: list[int] | None = Field(default=None, sa_column=Column(ARRAY(Integer)))
    pause_heat: list[int] | None = Field(default=None, sa_column=Column(ARRAY(Integer)))
    pause_from: float | None = None
    pause_to: float | None = None
    imagenet: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))


ALL_TABLES = [
    Video,
    VideoAnalysis,
    AnalysisChunk,
    Event,
    Track,
    DepthData,
    DisplayData,
    FrameEmbedding,
    TrackAttributes,
]
