"""The FastAPI app: `uvicorn service.app:app --port 8087` (or `capstone serve`).

Settings are read per request from `capstone.config.get_settings()`; see that module and
`service.auth` for API keys, upload limits and timeouts.

>>> from fastapi.testclient import TestClient  # doctest: +SKIP
>>> TestClient(create_app()).get("/healthz").json()  # doctest: +SKIP
{'status': 'ok'}
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from capstone.config import get_settings
from service import errors
from service.jobs import AnalysisJobs
from service.metrics import Metrics
from service.middleware import RequestContextMiddleware, configure_logging
from service.routes import analyze, health, search, upload, videos

DESCRIPTION = """
The capstone pipeline over HTTP: upload a video, analyze it from S3, read what was found.

* Writes need `Authorization: Bearer <api key>`; the server is configured with the keys'
  sha256 digests (`API_KEY_HASHES`). Reads need it when `REQUIRE_AUTH_FOR_READS=1`.
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
        yield
        jobs.shutdown()

    app = FastAPI(
        title="capstone",
        version="0.1.0",
        description=DESCRIPTION,
        license_info={"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.jobs = jobs
    errors.install(app)
    for module in (health, analyze, upload, videos):
        app.include_router(module.router)
    app.include_router(search.router)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


app = create_app()
