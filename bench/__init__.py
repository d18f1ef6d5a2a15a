"""Benchmarks (not timed tests). Shared helpers: offline environment, fresh databases, tables.

Every benchmark writes into its own fresh database on a bench-only embedded server
(`.capstone/bench/pgdata`, or `$CAPSTONE_BENCH_HOME/pgdata`), migrated to head, so runs never
see each other's rows. A benchmark that started that server stops it when it exits (one
already running, or still used by another benchmark, keeps running).

>>> from bench import fresh_database  # doctest: +SKIP
>>> url = fresh_database("store")  # doctest: +SKIP  (DATABASE_URL now points at it)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAPSTONE_SHARED", ROOT.parent / "shared"))
VIDEOS = SHARED / "data" / "videos"
BENCH_HOME = Path(os.environ.get("CAPSTONE_BENCH_HOME") or ROOT / ".capstone" / "bench")


def copy_synthetic_detections(
    session: Any,
    video_id: str,
    analysis_id: int,
    rows: int,
    *,
    confidence: float,
    track_of: Callable[[int, int], int],
    per_frame: int = 20,
    seed: int = 0,
    batch: int = 100_000,
) -> None:
    """`rows` detection events of one analysis written with COPY in batches: `per_frame`
    per frame at 25 fps, 20 x 20 px boxes at random places, `confidence`, the track id
    `track_of(row, frame)`."""
    import numpy as np

    from capstone.store.bulk import copy_rows

    rng = np.random.default_rng(seed)
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        frames = (np.arange(start, start + n) // per_frame).tolist()
        xy = rng.uniform(0, 300, size=(n, 2)).round(1).tolist()
        copy_rows(
            session,
            "apps_db_event",
            [
                {
                    "video_id": video_id,
                    "analysis_id": analysis_id,
                    "frame_number": f,
                    "timestamp": f / 25.0,
                    "event_type": "detection",
                    "class_name": "car",
                    "confidence": confidence,
                    "bbox": [x, y, x + 20.0, y + 20.0],
                    "track_id": track_of(start + j, f),
                }
                for j, (f, (x, y)) in enumerate(zip(frames, xy, strict=True))
            ],
        )


def setup_environment() -> None:
    """Offline model resolution and the bench-only state directory (call before capstone)."""
    for var in ("YOLO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    if (SHARED / "models").exists():
        os.environ.setdefault("CAPSTONE_MODELS_DIR", str(SHARED / "models"))
    os.environ["CAPSTONE_HOME"] = str(BENCH_HOME)
    os.environ.pop("DB_SECRET_ARN", None)
    _clear_caches()


def _clear_caches() -> None:
    from capstone.config import get_settings
    from capstone.store import reset_engines

    get_settings.cache_clear()
    reset_engines()


def _with_db(url: str, name: str) -> str:
    head, _, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def fresh_database(label: str) -> str:
    """Create and migrate a new database on the bench server; point DATABASE_URL at it."""
    from sqlalchemy import create_engine, text

    from capstone.store import migrate
    from capstone.store.server import acquire_embedded

    BENCH_HOME.mkdir(parents=True, exist_ok=True)
    server_url = acquire_embedded(BENCH_HOME / "pgdata")  # released (stopped) at exit
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = _with_db(server_url, name)
    migrate.upgrade(url)
    os.environ["DATABASE_URL"] = url
    _clear_caches()
    return url


def drop_database(url: str) -> None:
    """Drop a database made by `fresh_database`."""
    from sqlalchemy import create_engine, text

    _clear_caches()
    name = url.partition("?")[0].rsplit("/", 1)[1]
    admin = create_engine(_with_db(url, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table (GitHub markdown, so it pastes into the README)."""
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github", floatfmt=".2f")


def machine_note() -> str:
    """One line on the machine the numbers came from, and its load when they were taken."""
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPU(s), load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} "
        "(other processes share these CPUs; ratios compare sides measured in the same run)"
    )
