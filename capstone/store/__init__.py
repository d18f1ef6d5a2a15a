"""Database access: embedded server, SQLModel tables, migrations, sessions, bulk writes."""

from capstone.store.engine import get_engine, reset_engines, resolve_database_url, session_scope
from capstone.store.tables import (
    DepthData,
    DisplayData,
    Event,
    FrameEmbedding,
    Track,
    Video,
    VideoAnalysis,
)

__all__ = [
    "DepthData",
    "DisplayData",
    "Event",
    "FrameEmbedding",
    "Track",
    "Video",
    "VideoAnalysis",
    "get_engine",
    "reset_engines",
    "resolve_database_url",
    "session_scope",
]
