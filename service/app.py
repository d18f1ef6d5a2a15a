"""The FastAPI app: `uvicorn service.app:app --port 8087` (or `capstone serve`).

Settings are read per request from `capstone.config.get_settings()`; see that module and
`service.auth` for API keys, upload limits and timeouts.

>>> from fastapi.testclient import TestClient  # doctest: +SKIP
>>> TestClient(create_app()).get("/healthz").json()  # doctest: +SKIP
{'status': 'ok'}
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool

from capstone.config import get_settings
from capstone.errors import CapstoneError
from capstone.models.weights import DEFAULT_DETECTOR, available_models
from service import errors
from service.guard import READ_POSTS, BodyGuardMiddleware
from service.jobs import AnalysisJobs
from service.metrics import Metrics
from service.middleware import RequestContextMiddleware, configure_logging
from service.routes import analyze, ask, health, models, search, upload, videos
from service.values import NulGuardMiddleware

log = logging.getLogger("capstone.service")

DESCRIPTION = """
The capstone pipeline over HTTP: upload a video, analyze it from S3, read what was found.

* Writes need `Authorization: Bearer <api key>`; the server is configured with the keys'
  sha256 digests (`API_KEY_HASHES`). Reads need it when `REQUIRE_AUTH_FOR_READS=1`.
  Bodies are authenticated before they are read; JSON bodies are capped (`MAX_JSON_BYTES`).
* `params.model` is a name from `GET /models`, never a path.
* Every error answers `{"detail", "code", "request_id", "errors"}`.
* Every response carries `X-Request-ID` (echoed when the request sends a valid one).
"""


def create_app() -> FastAPI:
    """A new app with its own job pool and metrics registry."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    configure_logging()
    metrics = Metrics()
    jobs = AnalysisJobs(get_settings().analyze_workers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_migrate)
        threading.Thread(target=_reclaim, args=(jobs,), name="reclaim", daemon=True).start()
        yield
        await run_in_threadpool(jobs.shutdown)

    app = FastAPI(
        title="capstone",
        version="0.1.0",
        description=DESCRIPTION,
        license_info={"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.jobs = jobs
    app.state.models = {**available_models(), DEFAULT_DETECTOR: Path(DEFAULT_DETECTOR)}
    errors.install(app)
    for module in (health, analyze, upload, videos, models):
        app.include_router(module.router)
    app.include_router(search.router)
    app.include_router(ask.router)
    app.add_middleware(NulGuardMiddleware)  # innermost: after auth and the size cap
    app.add_middleware(BodyGuardMiddleware)
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=5)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _migrate() -> None:
    """At startup, once per process: the schema at head (requests never migrate)."""
    from capstone.store.migrate import ensure_schema

    try:
        ensure_schema()
    except CapstoneError as exc:  # no database yet: /readyz says so until it answers
        log.warning("startup migration skipped: %s", exc)


def _reclaim(jobs: AnalysisJobs) -> None:
    """At startup: re-run the analyses whose worker died (best effort, off the event loop)."""
    try:
        jobs.reclaim()
    except Exception as exc:  # no database yet: the batch job's retry recovers instead
        log.warning("startup reclaim skipped: %s", type(exc).__name__)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The schema, telling the truth about auth: reads declare the bearer scheme only when
    `REQUIRE_AUTH_FOR_READS` is on."""
    reads_need_auth = get_settings().require_auth_for_reads
    cached = app.state.__dict__.setdefault("openapi_by_read_auth", {})
    if reads_need_auth not in cached:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            license_info=app.license_info,
            routes=app.routes,
        )
        if not reads_need_auth:
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    if method == "get" or (method == "post" and path in READ_POSTS):
                        operation.pop("security", None)
        cached[reads_need_auth] = schema
    return cached[reads_need_auth]


app = create_app()
