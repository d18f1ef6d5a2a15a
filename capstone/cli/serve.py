"""`capstone serve`: the FastAPI service under uvicorn (embedded database by default)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from capstone.config import Settings


def uvicorn_options(settings: Settings | None = None) -> dict[str, object]:
    """How `capstone serve` configures uvicorn's connections (tests start theirs with these):
    the HTTP protocol with a header deadline (`service.server`, named by path: the library
    does not import the service), the keep-alive timeout and the request-head cap."""
    from capstone.config import get_settings

    settings = settings or get_settings()
    return {
        "http": "service.server:HttpProtocol",
        "timeout_keep_alive": settings.http_keep_alive_s,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }


def serve(
    host: str = typer.Option("127.0.0.1", help="interface to bind (0.0.0.0 in containers)"),
    port: int = typer.Option(8087, min=1, max=65535, help="TCP port"),
    workers: int | None = typer.Option(
        None, min=1, max=32, help="uvicorn worker processes (default: one per CPU core)"
    ),
) -> None:
    """Serve the HTTP API: POST /analyze, POST /db/videos/upload/, reads, /metrics."""
    import uvicorn

    from capstone.config import get_settings
    from capstone.store.engine import reset_engines, resolve_database_url
    from capstone.store.migrate import ensure_schema

    url = resolve_database_url()  # starts the embedded server when no DATABASE_URL is set
    ensure_schema(url)
    settings = get_settings()
    if not settings.api_key_hashes and not settings.capstone_auth_disabled:
        typer.echo(
            "note: no API_KEY_HASHES configured: writes will answer 401 "
            "(set CAPSTONE_AUTH_DISABLED=1 for local development)",
            err=True,
        )
    workers = workers or max(1, os.cpu_count() or 1)
    # Each API process's pool is its share of the database's connections: tell the workers
    # how many share it (more when CAPSTONE_API_PROCESSES counts other hosts' too).
    os.environ["CAPSTONE_API_PROCESSES"] = str(max(workers, settings.capstone_api_processes))
    get_settings.cache_clear()
    reset_engines()  # this process only supervises: it keeps no pooled connection
    typer.echo(
        f"serving on http://{host}:{port} with {workers} worker process(es) (docs at /docs); "
        f"analyses run in up to {settings.analyze_workers} analysis worker process(es)",
        err=True,
    )
    uvicorn.run(
        "service.app:app",
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
        **uvicorn_options(),
    )
