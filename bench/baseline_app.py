"""The plainest FastAPI app a user could write over the same database (the API baseline).

Sync routes, one SQLAlchemy `SELECT ... ORDER BY frame_number LIMIT 100`, rows as dicts,
one uvicorn worker: what `bench/api_load.py` compares `capstone serve` against.

    DATABASE_URL=postgresql+psycopg://... uvicorn bench.baseline_app:app --port 8099
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from sqlalchemy import create_engine, text

engine = create_engine(os.environ["DATABASE_URL"], pool_size=10, max_overflow=40)
app = FastAPI(title="baseline")


@app.get("/videos")
def videos(limit: int = 20) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM apps_db_video ORDER BY created_at DESC LIMIT :n"), {"n": limit}
        )
        return [dict(r._mapping) for r in rows]


@app.get("/videos/{video_id}/events")
def events(video_id: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, analysis_id, frame_number, timestamp, event_type, class_name, "
                "confidence, bbox, track_id, attributes, description FROM apps_db_event "
                "WHERE video_id = :v ORDER BY frame_number LIMIT :n OFFSET :o"
            ),
            {"v": video_id, "n": limit, "o": offset},
        )
        return [dict(r._mapping) for r in rows]
