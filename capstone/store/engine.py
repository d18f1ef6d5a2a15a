"""Engine and session factory used by everything that touches the database.

>>> from sqlmodel import select
>>> from capstone.store import session_scope
>>> from capstone.store.tables import Video
>>> with session_scope() as session:  # doctest: +SKIP
...     [v.video_id for v in session.exec(select(Video)).all()]
['test-001']
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from capstone.config import get_settings, normalize_url, url_from_secret
from capstone.errors import ConfigError, DatabaseError
from capstone.store.server import before_stop, embedded_url

_resolved: dict[tuple[str | None, str | None, str], str] = {}


def resolve_database_url() -> str:
    """The database URL: `DATABASE_URL`, else `DB_SECRET_ARN`, else the embedded server.

    Resolved once per configuration (reading a secret or checking the embedded server is
    not for every request); `reset_engines()` forgets it."""
    settings = get_settings()
    key = (settings.database_url, settings.db_secret_arn, str(settings.pgdata))
    if key not in _resolved:
        if settings.database_url:
            _resolved[key] = normalize_url(settings.database_url)
        elif settings.db_secret_arn:
            _resolved[key] = _url_from_secret_arn(settings.db_secret_arn)
        else:
            _resolved[key] = embedded_url(settings.pgdata)
    return _resolved[key]


def _url_from_secret_arn(arn: str) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    settings = get_settings()
    client = boto3.client(
        "secretsmanager", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )
    try:
        secret = client.get_secret_value(SecretId=arn)["SecretString"]
    except (ClientError, BotoCoreError) as exc:
        raise ConfigError(f"cannot read database secret {arn}: {exc}") from exc
    return url_from_secret(secret)


_engines: dict[str, Engine] = {}


def _engine_for(url: str) -> Engine:
    if url not in _engines:
        # No pre-ping: it costs a round trip on every checkout (a fifth of a read request).
        # A connection the server dropped fails once; SQLAlchemy then invalidates the pool,
        # and `pool_recycle` retires idle connections before servers and proxies drop them.
        _engines[url] = create_engine(
            url,
            pool_pre_ping=False,
            pool_recycle=300,
            pool_size=10,
            max_overflow=30,
            connect_args={"connect_timeout": 5},
        )
    return _engines[url]


def get_engine(url: str | None = None) -> Engine:
    """A pooled engine for `url` (default: the configured database), checked reachable."""
    engine = _engine_for(url or resolve_database_url())
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(
            f"database not reachable at {engine.url.render_as_string()}: {reason}"
        ) from exc
    return engine


def ping(url: str | None = None) -> None:
    """Raise `DatabaseError` unless the database answers (readiness checks)."""
    get_engine(url)


def reset_engines() -> None:
    """Dispose pooled connections (tests, after a fork, after changing settings)."""
    _resolved.clear()
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session in one transaction: commit on success, roll back on any error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


before_stop(reset_engines)
