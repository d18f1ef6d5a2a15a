"""Database connections are sized, not hoped for (issue 29, finding 3): each API process's
pool is its share of the connections the server allows, every session carries a statement,
lock and idle-in-transaction timeout, and a burst beyond capacity is answered with fast 503s
(`Retry-After`) by the real multi-process `capstone serve`, which then recovers by itself."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import ROOT, _clear_caches, free_port, start_api_server

ROLE_LIMIT = 30  # connections the burst test's database login may open


def _pool_total(engine) -> int:
    return engine.pool.size() + engine.pool._max_overflow


def test_sessions_carry_timeouts_and_pools_fit_the_server(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every session from the app's engine has the three timeouts; with 8 API processes the
    pools together stay within the server's connections, leaving the reserve free."""
    monkeypatch.setenv("CAPSTONE_API_PROCESSES", "8")
    for var in ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_RESERVED_CONNECTIONS"):
        monkeypatch.delenv(var, raising=False)
    _clear_caches()
    from capstone.store import get_engine, session_scope

    engine = get_engine()
    with session_scope() as session:
        shown = {
            name: session.execute(text(f"SHOW {name}")).scalar_one()
            for name in (
                "statement_timeout",
                "lock_timeout",
                "idle_in_transaction_session_timeout",
                "max_connections",
                "superuser_reserved_connections",
            )
        }
    assert shown["statement_timeout"] == "30s"
    assert shown["lock_timeout"] == "5s"
    assert shown["idle_in_transaction_session_timeout"] == "1min"
    usable = int(shown["max_connections"]) - int(shown["superuser_reserved_connections"])
    reserved = 5 + 4 * 1  # the default reserve with ANALYZE_WORKERS=1
    assert 8 * _pool_total(engine) + reserved <= usable, (_pool_total(engine), usable)
    assert engine.pool.timeout() <= 5  # a checkout waits seconds, not SQLAlchemy's 30

    # One process alone gets what it had before, and explicit settings win.
    monkeypatch.setenv("CAPSTONE_API_PROCESSES", "1")
    _clear_caches()
    assert _pool_total(get_engine()) == 40
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "2")
    _clear_caches()
    assert (get_engine().pool.size(), get_engine().pool._max_overflow) == (3, 2)

    # The publishing transaction lifts them (moving every staged row may take long) ...
    from capstone.store.engine import lift_timeouts

    with session_scope() as session:
        lift_timeouts(session, 120)
        assert session.execute(text("SHOW statement_timeout")).scalar_one() == "2min"
    # ... for itself only: the pooled connection is back to the session's timeouts.
    with session_scope() as session:
        assert session.execute(text("SHOW statement_timeout")).scalar_one() == "30s"


@contextmanager
def _table_locked(db_url: str, table: str = "apps_db_video") -> Iterator[None]:
    """`table` locked by someone else (a migration, an admin) while the block runs."""
    locker = create_engine(db_url)
    release, locked = threading.Event(), threading.Event()

    def hold() -> None:
        with locker.begin() as conn:
            conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join(10)
        locker.dispose()


@contextmanager
def _login_limited(db_url: str, server_url: str, limit: int) -> Iterator[str]:
    """`db_url` as a new login that may open `limit` connections (a slice of the shared test
    server standing for a server's max_connections); dropped afterwards."""
    role = f"h3_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    owner = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {limit}"))
    with owner.connect() as conn:
        conn.execute(text(f"GRANT ALL ON SCHEMA public TO {role}"))
        conn.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))
        conn.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    try:
        yield make_url(db_url).set(username=role).render_as_string(hide_password=False)
    finally:
        with owner.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
                {"r": role},
            )
            conn.execute(text(f"DROP OWNED BY {role}"))
        owner.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


@contextmanager
def _api(monkeypatch: pytest.MonkeyPatch, **settings: str) -> Iterator[str]:
    """The app under a real uvicorn server in this process, with these settings."""
    monkeypatch.delenv("REQUIRE_AUTH_FOR_READS", raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    _clear_caches()
    url, server, thread = start_api_server()
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def _gets(url: str, n: int, timeout: float = 15) -> list[tuple[int, float, str, str]]:
    """`n` concurrent GET /videos: (status, seconds, Retry-After, body)."""
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:

        async def one() -> tuple[int, float, str, str]:
            t0 = time.monotonic()
            r = await client.get("/videos")
            return r.status_code, time.monotonic() - t0, r.headers.get("Retry-After", ""), r.text

        return await asyncio.gather(*(one() for _ in range(n)))


def test_a_read_behind_a_held_lock_answers_503_quickly(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table locked by someone else used to hold every read until it was released; now
    the lock timeout ends the wait: a fast 503 with Retry-After, and the same read succeeds
    once the lock is gone."""
    with _api(monkeypatch, DB_LOCK_TIMEOUT_S="0.5") as url:
        with _table_locked(db_url):
            [(status, seconds, retry_after, text_)] = asyncio.run(_gets(url, 1))
        assert status == 503, text_
        body = json.loads(text_)
        assert retry_after and body["code"] == "database_busy" and body["retryable"] is True
        assert "DB_LOCK_TIMEOUT_S" in body["detail"] and "/" not in body["detail"]
        assert seconds < 10, seconds
        assert httpx.get(f"{url}/videos", timeout=10).status_code == 200


def test_reads_beyond_the_pool_or_the_login_limit_get_fast_503s(
    db_url: str, pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While reads wait on a lock: those that find no pooled connection within
    DB_POOL_TIMEOUT_S get a fast 503 (SQLAlchemy waited 30 s, then answered 500), and so do
    those refused by the server's connection limit (500 "too many connections" before)."""
    # 1.5 s: long enough for the app's own startup queries on a loaded machine, short
    # against the 3 s the lock holds the only connection
    pool = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT_S": "1.5"}
    with _api(monkeypatch, DB_LOCK_TIMEOUT_S="3", **pool) as url, _table_locked(db_url):
        results = asyncio.run(_gets(url, 6))
    assert {status for status, *_ in results} == {503}, results
    waited = [r for r in results if "no database connection free" in r[3]]
    assert len(waited) >= 4, results  # all but the one holding the only connection
    assert all(seconds < 3 and retry_after for _, seconds, retry_after, _ in waited), waited

    # A login that may open 2 connections, a pool (set too large on purpose) that may open 10.
    with _login_limited(db_url, pg_server_url, 2) as limited:
        monkeypatch.setenv("DATABASE_URL", limited)
        big = {"DB_POOL_SIZE": "10", "DB_POOL_TIMEOUT_S": "3"}
        with _api(monkeypatch, DB_LOCK_TIMEOUT_S="3", **big) as url:
            with _table_locked(db_url):
                results = asyncio.run(_gets(url, 6))
            assert {status for status, *_ in results} == {503}, results
            refused = [r for r in results if "connection limit" in r[3]]
            assert refused, results
            assert all(seconds < 3 and retry_after for _, seconds, retry_after, _ in refused)
            assert httpx.get(f"{url}/videos", timeout=10).status_code == 200


@pytest.fixture
def limited_url(db_url: str, pg_server_url: str) -> Iterator[str]:
    """`db_url` as a login that may open ROLE_LIMIT connections."""
    with _login_limited(db_url, pg_server_url, ROLE_LIMIT) as url:
        yield url


def _serve(url: str, port: int, workers: int, home: Path, log: Path) -> subprocess.Popen[bytes]:
    """`capstone serve --workers N` in its own process group, on `port`, logging to `log`
    (a file: a pipe nobody reads would fill and stop the server)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CAPSTONE_HOME": str(home),
        "CAPSTONE_AUTH_DISABLED": "1",
        "PYTHONPATH": str(ROOT),
    }
    for var in (
        "CAPSTONE_API_PROCESSES",
        "DB_POOL_SIZE",
        "DB_MAX_OVERFLOW",
        "REQUIRE_AUTH_FOR_READS",
    ):
        env.pop(var, None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "capstone",
                "serve",
                "--port",
                f"{port}",
                "--workers",
                f"{workers}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _burst(base: str, n: int) -> list[tuple[int, float, str | None, str]]:
    """`n` concurrent GET /videos, each on its own connection: (status, seconds,
    Retry-After, body head)."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def one() -> tuple[int, float, str | None, str]:
            t0 = time.monotonic()
            try:
                r = await client.get("/videos")
            except httpx.HTTPError as exc:  # a dropped connection counts as a failure
                return 0, time.monotonic() - t0, None, type(exc).__name__
            return r.status_code, time.monotonic() - t0, r.headers.get("Retry-After"), r.text[:200]

        return await asyncio.gather(*(one() for _ in range(n)))


def test_a_burst_on_several_processes_gets_200_or_fast_503(
    limited_url: str, tmp_path: Path
) -> None:
    """600 concurrent reads on `capstone serve --workers 4` whose login may open
    ROLE_LIMIT connections (the embedded server's 100 shared by 8 processes, scaled down):
    before, each process's pool could open 40 (160 in all) and part of the burst was
    answered 500 "too many connections"; now the pools share what the login allows (less
    the reserve), the burst gets 200s or fast 503s with Retry-After, and then the service
    answers normally."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = _serve(limited_url, port, 4, tmp_path / "home", log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "capstone serve did not start"
            try:
                if httpx.get(f"{base}/videos", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        results = asyncio.run(_burst(base, 600))
        statuses = Counter(status for status, *_ in results)
        bad = [r for r in results if r[0] not in (200, 503)]
        assert not bad, (statuses, bad[:3])
        for status, seconds, retry_after, body in results:
            if status == 503:
                assert retry_after and int(retry_after) >= 1, body
                assert "database_busy" in body, body
                assert seconds < 45, seconds  # the pool's wait, not a hung request
        assert statuses[200] > 0, statuses
        # It recovers by itself: the next reads are answered normally.
        for _ in range(5):
            assert httpx.get(f"{base}/videos", timeout=10).status_code == 200
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)
