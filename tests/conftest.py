"""Shared fixtures: a real embedded PostgreSQL + pgvector, a real moto server, real data.

Every test that touches storage gets its own database, cloned from a migrated template
(CREATE DATABASE ... TEMPLATE is a file copy: milliseconds).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAPSTONE_SHARED", ROOT.parent / "shared"))
VIDEOS = SHARED / "data" / "videos"
MOT = SHARED / "data" / "mot"
MODELS = SHARED / "models"
ARTIFACTS = ROOT / "artifacts"
TEST_HOME = Path(os.environ.get("CAPSTONE_TEST_HOME") or ROOT / ".capstone" / "test")

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if MODELS.exists():
    os.environ.setdefault("CAPSTONE_MODELS_DIR", str(MODELS))
for _var in ("DATABASE_URL", "DB_SECRET_ARN"):
    os.environ.pop(_var, None)
# Detections of frames seen earlier in this session are read back, not run again
# (`capstone.models.detection_memo`): most tests analyze the same real clips and differ
# only downstream. Child processes inherit it (pytest-xdist workers too: the session's
# workers share one memo); `real_detection` turns it off for a test,
# CAPSTONE_TEST_DETECTION_MEMO=off for the whole session (every frame detected).
if "PYTEST_XDIST_WORKER" not in os.environ:
    os.environ.pop("CAPSTONE_DETECTION_MEMO", None)
    if os.environ.get("CAPSTONE_TEST_DETECTION_MEMO", "on") != "off":
        DETECTION_MEMO = Path(tempfile.mkdtemp(prefix="capstone-test-detections-"))
        os.environ["CAPSTONE_DETECTION_MEMO"] = str(DETECTION_MEMO)
        atexit.register(shutil.rmtree, DETECTION_MEMO, True)
# Models are converted and compiled once for every process of the session, whatever its
# CAPSTONE_HOME (tests of the first conversion drop it: `cold_model_cache`).
os.environ.setdefault("CAPSTONE_MODEL_CACHE", str(TEST_HOME / "model-cache"))


def _clear_caches() -> None:
    from capstone.config import get_settings
    from capstone.store import reset_engines

    get_settings.cache_clear()
    reset_engines()


def _without_setting(monkeypatch: pytest.MonkeyPatch, name: str) -> Iterator[None]:
    """The test runs with environment variable `name` unset (settings read again)."""
    from capstone.config import get_settings

    monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def real_detection(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every frame goes through the detector (no detection memo): for tests that need an
    analysis to take its real time (killed, cancelled or watched while it runs)."""
    yield from _without_setting(monkeypatch, "CAPSTONE_DETECTION_MEMO")


@pytest.fixture
def cold_model_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Models are converted and compiled under this test's CAPSTONE_HOME (not the session's
    shared model cache): for tests of the first conversion."""
    yield from _without_setting(monkeypatch, "CAPSTONE_MODEL_CACHE")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of the test session's embedded server (maintenance database). The session stops
    it at the end if a test session started it and no other one still uses it."""
    from capstone.store.server import acquire_embedded, release_embedded

    TEST_HOME.mkdir(parents=True, exist_ok=True)
    yield acquire_embedded(TEST_HOME / "pgdata")
    release_embedded(TEST_HOME / "pgdata")


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """A database migrated to head, used as the template of every test database."""
    from capstone.store import migrate

    name = f"capstone_template_{os.getpid()}"  # concurrent test sessions share the server
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = _with_db(pg_server_url, name)
    migrate.upgrade(url)
    _clear_caches()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _with_db(url: str, name: str) -> str:
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@pytest.fixture
def db_url(pg_server_url: str, template_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated database for one test; DATABASE_URL points at it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template_db}"))
    url = _with_db(pg_server_url, name)
    monkeypatch.setenv("DATABASE_URL", url)
    _clear_caches()
    yield url
    _clear_caches()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server (S3, SQS, Secrets Manager, Batch, ...) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 and capstone's settings at the moto server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    _clear_caches()
    return moto_endpoint


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not present (../shared missing)")
    return path


def start_api_server() -> tuple[str, Any, threading.Thread]:
    """The FastAPI app under a real uvicorn server on a free 127.0.0.1 port.

    Returns the base URL, the server (set `should_exit` to stop it) and its thread.
    """
    import uvicorn

    from service.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def store_result(
    video_id: str,
    rows: dict[str, list[dict[str, Any]]],
    *,
    variant: int = 1,
    status: str = "completed",
    fps: float = 25.0,
) -> int:
    """Store `rows` (by result table) as the result of an analysis of `video_id`, the way
    production does: claim the analysis, stage the rows in one chunk under the chunk's
    lease, complete the chunk and publish (`capstone.runtime.publish.publish_analysis`).
    Returns the analysis id.

    Track rows (`apps_db_track`) are staged as the track summaries a chunk keeps; publish
    numbers tracks 1, 2, ... in order of first frame, so give them those ids to keep them.
    `variant` tells analyses of one video apart (it is their `max_frames`); storing the
    same variant again re-runs that analysis. `status="failed"`: the result is published,
    then a re-run of the analysis fails (its rows stay, as after a failed re-run)."""
    from capstone.core.chunks import ChunkSpan
    from capstone.core.video import VideoInfo
    from capstone.runtime.publish import publish_analysis
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses, staging

    tracks = rows.get("apps_db_track", [])
    staged = {table: items for table, items in rows.items() if table != "apps_db_track"}
    stages = ["detect", "track"]
    if any(t.get("avg_depth") is not None for t in tracks):
        stages.append("depth")
    if any(t.get("embedding") is not None or t.get("reid_embedding") is not None for t in tracks):
        stages.append("embed")
    params = AnalysisParams(stages=tuple(stages), max_frames=variant)
    frames = [int(r["frame_number"]) for items in staged.values() for r in items]
    frames += [int(t["last_frame"]) for t in tracks]
    last = max(frames, default=0)
    info = VideoInfo(
        Path(f"{video_id}.mp4"), (last + 1) / fps, fps, last + 1, 640, 480, "h264", 0, ""
    )
    owner = analyses.worker_id()
    lease = analyses.claim_analysis(video_id, params, owner)
    staging.ensure_chunks(lease.analysis_id, [ChunkSpan(0, 0, last + 1, 0)])
    chunk = staging.claim_chunk(lease.analysis_id, owner)
    assert chunk is not None
    sink = staging.StagingSink(video_id, chunk)
    for table, items in staged.items():
        for row in items:
            sink.emit(table, row)  # type: ignore[arg-type]
    staging.complete_chunk(
        sink,
        [(int(t["track_id"]), _track_summary(t), t.get("best_crop")) for t in tracks],
        {"core": {"tail": [], "warm": [], "first_frame": 0, "last_frame": last}},
        len(set(frames)),
    )
    publish_analysis(
        lease, video_id=video_id, info=info, params=params, step=1, summary={"fps": fps}
    )
    if status == "failed":
        rerun = analyses.claim_analysis(video_id, params, owner)
        assert analyses.mark_failed(rerun, "the re-run failed", retryable=False)
    return lease.analysis_id


def _track_summary(track: dict[str, Any]) -> dict[str, Any]:
    """A stored track as the summary its chunk stages (`capstone.core.records.TrackSummary`)."""
    extra: dict[str, Any] = {}
    for key in ("embedding", "reid_embedding"):
        if track.get(key) is not None:
            extra[key] = [float(v) for v in track[key]]
    if track.get("avg_depth") is not None:
        depth = float(track["avg_depth"])
        extra.update(
            depth_sum=depth,
            depth_n=1,
            min_depth=track.get("min_depth", depth),
            max_depth=track.get("max_depth", depth),
        )
    if track.get("identity_id") is not None:
        extra["identity_id"] = track["identity_id"]
    return {
        "class_id": 0,
        "class_name": track["class_name"],
        "first_frame": track["first_frame"],
        "last_frame": track["last_frame"],
        "first_timestamp": track["first_timestamp"],
        "last_timestamp": track["last_timestamp"],
        "length": track["length"],
        "confidence_sum": track["mean_confidence"] * track["length"],
        "best_score": track["mean_confidence"],
        "best_frame": track.get("best_frame"),
        "best_bbox": track.get("best_bbox"),
        "extra": extra,
    }
