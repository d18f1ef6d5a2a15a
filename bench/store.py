"""Bulk store vs per-row ORM inserts, for realistic detection rows.

(a) the original system's way: one `session.add(Event(...))` and one `commit()` per row
(`capstone.store.bulk.insert_rows_one_by_one`); (b) ours: `capstone.store.bulk.copy_rows`,
COPY inside one transaction (what publishing an analysis does, `bulk_replace` below). Both
sides write the same rows into the same fresh database, in one process run. Target: (a) / (b) >= 20.

    .venv/bin/python -m bench.store            # 20k rows
    .venv/bin/python -m bench.store --rows 5000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bench import drop_database, fresh_database, machine_note, setup_environment, table

CLASSES = ("person", "car", "bicycle", "truck", "bus")


def detection_rows(n: int, *, fps: float = 25.0, seed: int = 0) -> list[dict[str, Any]]:
    """`n` detection rows shaped like a tracker's output: ~8 objects a frame, moving boxes."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    frame = 0
    while len(rows) < n:
        for slot in range(int(rng.integers(4, 13))):
            x1, y1 = float(rng.uniform(0, 700)), float(rng.uniform(0, 500))
            w, h = float(rng.uniform(15, 120)), float(rng.uniform(20, 200))
            rows.append(
                {
                    "frame_number": frame,
                    "timestamp": round(frame / fps, 4),
                    "event_type": "detection",
                    "class_name": CLASSES[slot % len(CLASSES)],
                    "confidence": round(float(rng.uniform(0.25, 0.95)), 4),
                    "bbox": [round(x1, 2), round(y1, 2), round(x1 + w, 2), round(y1 + h, 2)],
                    "track_id": 1 + slot + 20 * (frame // 250),
                }
            )
        frame += 1
    return rows[:n]


def _analysis(video_id: str, label: str) -> int:
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses

    params = AnalysisParams(max_frames={"per-row": 1, "bulk": 2}[label])  # two analyses
    return analyses.claim_analysis(video_id, params, analyses.worker_id()).analysis_id


def _count(analysis_id: int) -> int:
    from sqlalchemy import text

    from capstone.store.engine import session_scope

    with session_scope() as session:
        q = text("SELECT count(*) FROM apps_db_event WHERE analysis_id = :a")
        return int(session.execute(q, {"a": analysis_id}).scalar_one())


def bulk_replace(session: Any, *, video_id: str, analysis_id: int, rows: list[dict]) -> int:
    """Delete the analysis's previous events and COPY `rows` in the session's transaction."""
    from sqlalchemy import text

    from capstone.store.bulk import copy_rows

    session.execute(text("DELETE FROM apps_db_event WHERE analysis_id = :a"), {"a": analysis_id})
    keyed = [{**r, "video_id": video_id, "analysis_id": analysis_id} for r in rows]
    return copy_rows(session, "apps_db_event", keyed)


def run(n_rows: int, keep: bool = False) -> dict[str, float]:
    setup_environment()
    url = fresh_database("store")
    from sqlmodel import Session

    from capstone.store.bulk import insert_rows_one_by_one
    from capstone.store.engine import get_engine, session_scope
    from capstone.store.tables import Event

    try:
        video_id = "bench-store"
        rows = detection_rows(n_rows)
        per_row_id, bulk_id = _analysis(video_id, "per-row"), _analysis(video_id, "bulk")

        t = time.perf_counter()
        with Session(get_engine()) as session:
            insert_rows_one_by_one(
                session,
                Event,
                ({**r, "video_id": video_id, "analysis_id": per_row_id} for r in rows),
            )
        per_row = time.perf_counter() - t

        t = time.perf_counter()
        with session_scope() as session:
            bulk_replace(session, video_id=video_id, analysis_id=bulk_id, rows=rows)
        bulk = time.perf_counter() - t

        counts = _count(per_row_id), _count(bulk_id)
        if counts != (n_rows, n_rows):
            raise SystemExit(f"row counts {counts} != {n_rows}")
    finally:
        if not keep:
            drop_database(url)
    print(f"bench.store: {n_rows} detection rows into apps_db_event; {machine_note()}")
    print(
        table(
            [
                ["per-row ORM insert + commit", per_row, n_rows / per_row],
                ["bulk COPY, one transaction", bulk, n_rows / bulk],
            ],
            ["way", "seconds", "rows/s"],
        )
    )
    ratio = per_row / bulk
    verdict = "meets" if ratio >= 20 else "MISSES"
    print(f"speed-up bulk vs per-row: {ratio:.1f}x (target >= 20x: {verdict})")
    return {"per_row_s": per_row, "bulk_s": bulk, "ratio": ratio}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="detection rows (20000)")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database")
    args = parser.parse_args(argv)
    run(args.rows, keep=args.keep_db)


if __name__ == "__main__":
    main()
