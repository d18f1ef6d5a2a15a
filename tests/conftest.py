"""Shared fixtures: a real embedded PostgreSQL + pgvector, a real moto server, real data.

Every test that touches storage gets its own database, cloned from a migrated template
(CREATE DATABASE ... TEMPLATE is a file copy: milliseconds).
"""

from __future__ import annotations

import os
import socket
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


def _clear_caches() -> None:
    from capstone.config import get_settings
    from capstone.store import reset_engines

    get_settings.cache_clear()
    reset_engines()


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
