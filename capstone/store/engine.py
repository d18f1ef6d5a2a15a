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

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
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

# One process's pool: at most POOL_KEPT connections kept open and POOL_MAX in all (the old
# fixed pool), at least POOL_MIN, and never more than its share of the server's connections.
POOL_KEPT, POOL_MAX, POOL_MIN = 10, 40, 2
# Connections one analysis worker process uses (its slot, its work, its heartbeat, a spare).
WORKER_CONNECTIONS = 4

# The connections this login may open: the server's, less those kept for superusers (and, for
# other roles, PostgreSQL 16's `reserved_connections` and the role's and database's limits).
_LIMIT_SQL = text(
    "SELECT current_setting('max_connections')::int"
    " - current_setting('superuser_reserved_connections')::int,"
    " coalesce(current_setting('reserved_connections', true), '0')::int,"
    " r.rolsuper, r.rolconnlimit, d.datconnlimit"
    " FROM pg_roles r, pg_database d"
    " WHERE r.rolname = current_user AND d.datname = current_database()"
)


def pool_limits(connection_limit: int, processes: int, reserved: int) -> tuple[int, int]:
    """`(pool_size, max_overflow)` of each of `processes` API processes sharing the
    `connection_limit` connections of the database login, `reserved` of them kept out.

    >>> pool_limits(97, 8, 9)  # the embedded server (100 - 3), 8 processes: 8 x 11 <= 88
    (10, 1)
    >>> pool_limits(97, 1, 9)  # one process: the most a process gets
    (10, 30)
    >>> pool_limits(97, 32, 9)  # more processes than connections: a pooler belongs in front
    (2, 0)
    """
    share = (connection_limit - reserved) // max(1, processes)
    total = max(POOL_MIN, min(POOL_MAX, share))
    kept = min(POOL_KEPT, total)
    return kept, total - kept


def connection_limit(conn: Connection) -> int:
    """The connections the login of `conn` may open at most (read once per engine)."""
    server, reserved, superuser, role_limit, db_limit = conn.execute(_LIMIT_SQL).one()
    if superuser:  # role and database limits and reserved_connections do not apply
        return int(server)
    limits = [int(server) - int(reserved)]
    limits += [int(v) for v in (role_limit, db_limit) if v is not None and v >= 0]
    return min(limits)


def session_options() -> str:
    """The libpq `options` that set every session's timeouts (milliseconds; 0: none)."""
    s = get_settings()
    timeouts = {
        "statement_timeout": s.db_statement_timeout_s,
        "lock_timeout": s.db_lock_timeout_s,
        "idle_in_transaction_session_timeout": s.db_idle_in_transaction_timeout_s,
    }
    return " ".join(f"-c {name}={round(value * 1000)}" for name, value in timeouts.items())


def _engine_for(url: str) -> Engine:
    if url not in _engines:
        settings = get_settings()
        # Timeouts on every session, in the startup packet (no round trip); options in the
        # URL itself come after ours, so they win.
        options = session_options()
        url_options = make_url(url).query.get("options")
        if url_options:
            options += " " + (url_options if isinstance(url_options, str) else url_options[-1])
        connect_args = {"connect_timeout": 5, "options": options}
        pool_size, max_overflow = settings.db_pool_size, settings.db_max_overflow
        if pool_size is None or max_overflow is None:
            reserved = settings.db_reserved_connections
            if reserved is None:
                reserved = 5 + WORKER_CONNECTIONS * settings.analyze_workers
            probe = create_engine(url, poolclass=NullPool, connect_args=connect_args)
            try:
                with probe.connect() as conn:
                    limit = connection_limit(conn)
            finally:
                probe.dispose()
            kept, overflow = pool_limits(limit, settings.capstone_api_processes, reserved)
            pool_size = kept if pool_size is None else pool_size
            max_overflow = overflow if max_overflow is None else max_overflow
        # No pre-ping: it costs a round trip on every checkout (a fifth of a read request).
        # A connection the server dropped fails once; SQLAlchemy then invalidates the pool,
        # and `pool_recycle` retires idle connections before servers and proxies drop them.
        # A checkout waits at most `db_pool_timeout_s`: a burst beyond the pool gets a 503.
        _engines[url] = create_engine(
            url,
            pool_pre_ping=False,
            pool_recycle=300,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            connect_args=connect_args,
        )
    return _engines[url]


def lift_timeouts(session: Session, seconds: float | None = None) -> None:
    """Raise this transaction's statement and idle-in-transaction timeouts to `seconds`
    (default `DB_PUBLISH_TIMEOUT_S`; 0: none), e.g. for a publish moving every staged row."""
    value = get_settings().db_publish_timeout_s if seconds is None else seconds
    ms = str(round(value * 1000))
    session.execute(
        text(
            "SELECT set_config('statement_timeout', :ms, true),"
            " set_config('idle_in_transaction_session_timeout', :ms, true)"
        ),
        {"ms": ms},
    )


def get_engine(url: str | None = None) -> Engine:
    """A pooled engine for `url` (default: the configured database), checked reachable."""
    url = url or resolve_database_url()
    try:
        engine = _engine_for(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(
            f"database not reachable at {make_url(url).render_as_string()}: {reason}"
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
