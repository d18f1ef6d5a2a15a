"""`capstone db ...`: the embedded PostgreSQL + pgvector server and the schema."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Manage the database: embedded server, schema migrations, URL.", no_args_is_help=True
)


@app.command("up")
def up() -> None:
    """Start the embedded PostgreSQL (reused when already running) and migrate it to head."""
    from capstone.store import migrate
    from capstone.store.engine import resolve_database_url

    url = resolve_database_url()
    migrate.upgrade(url)
    typer.echo(f"database ready at {url} (schema {migrate.current_revision(url)})")


@app.command("down")
def down() -> None:
    """Stop the embedded PostgreSQL of this project's CAPSTONE_HOME (no-op if not running)."""
    from capstone.config import get_settings
    from capstone.store.server import stop_embedded

    stopped = stop_embedded(get_settings().pgdata)
    typer.echo("embedded database stopped" if stopped else "embedded database was not running")


@app.command("status")
def status() -> None:
    """Show the state directory (CAPSTONE_HOME) and database in use, whether it answers, and
    its schema revision."""
    from capstone.config import get_settings
    from capstone.store import migrate
    from capstone.store.engine import resolve_database_url
    from capstone.store.server import embedded_running

    settings = get_settings()
    typer.echo(f"home: {settings.home} (from {settings.home_origin})")
    if not settings.database_url and not settings.db_secret_arn:
        running = embedded_running(settings.pgdata)
        typer.echo(f"data dir: {settings.pgdata}")
        typer.echo(f"embedded server: {'running' if running else 'stopped'}")
        if not running:
            return
    url = resolve_database_url()
    rev = migrate.current_revision(url)
    head = migrate.head_revision()
    typer.echo(f"url: {url}\nschema: {rev or 'empty'} (head {head})")


@app.command("migrate")
def migrate_cmd(
    revision: str = typer.Argument("head", help="target revision ('head', 'base', or an id)"),
    down: bool = typer.Option(False, "--down", help="downgrade to REVISION instead"),
) -> None:
    """Apply (or with --down revert) Alembic migrations."""
    from alembic.util import CommandError

    from capstone.store import migrate

    try:
        if down:
            migrate.downgrade(revision=revision)
        else:
            migrate.upgrade(revision=revision)
    except CommandError as exc:  # an unknown revision is a bad value: a usage error
        raise typer.BadParameter(str(exc), param_hint="'REVISION'") from None
    typer.echo(f"schema at {migrate.current_revision()}")


@app.command("url")
def url() -> None:
    """Print the database URL (starting the embedded server if needed)."""
    from capstone.store.engine import resolve_database_url

    typer.echo(resolve_database_url())
