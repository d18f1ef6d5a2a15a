"""`capstone serve`: the FastAPI service under uvicorn (embedded database by default)."""

from __future__ import annotations

import os

import typer


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
    from capstone.store.engine import resolve_database_url
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
        timeout_keep_alive=30,
        log_level="info",
    )
