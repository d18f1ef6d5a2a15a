"""Foundation: migrations, the SPEC section 6 queries verbatim, HNSW use, configuration."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

from capstone.store import migrate
from capstone.store.tables import IMAGE_DIM
from tests.conftest import ROOT, TEST_HOME, _with_db

SPEC_TABLES = {
    "apps_db_video",
    "apps_db_videoanalysis",
    "apps_db_event",
    "apps_db_track",
    "apps_db_depthdata",
    "apps_db_displaydata",
    "frame_embeddings",
}


def _new_empty_db(server_url: str, name: str) -> str:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return _with_db(server_url, name)


def test_migrations_apply_idempotent_and_reversible(pg_server_url: str) -> None:
    url = _new_empty_db(pg_server_url, "t_migrations")
    migrate.upgrade(url)
    migrate.upgrade(url)  # idempotent
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) >= SPEC_TABLES
    assert migrate.current_revision(url) == migrate.head_revision()
    with engine.connect() as conn:
        methods = dict(conn.execute(text("SELECT indexname, indexdef FROM pg_indexes")).all())
    assert "USING hnsw" in methods["ix_frame_embeddings_hnsw"]
    assert "USING gin" in methods["ix_event_tsv"]

    migrate.downgrade(url, "base")
    assert not SPEC_TABLES & set(inspect(engine).get_table_names())
    migrate.upgrade(url, "head")
    assert set(inspect(engine).get_table_names()) >= SPEC_TABLES
    engine.dispose()


def _seed_test_001(url: str, n_frames: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    vectors = rng.random((n_frames, IMAGE_DIM), dtype=np.float32)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO apps_db_video (video_id, title, duration, status) "
                "VALUES ('test-001', 'Test clip', 10.0, 'completed')"
            )
        )
        analysis_id = conn.execute(
            text(
                "INSERT INTO apps_db_videoanalysis (video_id, status, progress, params, "
                "params_hash, frames_processed, attempts) VALUES ('test-001', 'completed', "
                "100, '{}', 'h', :n, 1) RETURNING id"
            ),
            {"n": n_frames},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO apps_db_event (video_id, analysis_id, frame_number, timestamp, "
                "event_type, class_name, confidence, bbox) VALUES "
                "('test-001', :a, :f, :t, 'detection', 'person', 0.9, ARRAY[1,2,3,4])"
            ),
            [{"a": analysis_id, "f": f, "t": f / 10} for f in range(n_frames)],
        )
        conn.execute(
            text(
                "INSERT INTO frame_embeddings (video_id, analysis_id, frame_number, timestamp,"
                " model, embedding) VALUES ('test-001', :a, :f, :t, 'test', :e)"
            ),
            [
                {"a": analysis_id, "f": f, "t": f / 10, "e": str(v.tolist())}
                for f, v in enumerate(vectors)
            ],
        )
    engine.dispose()
    return vectors


def test_spec_section6_queries_verbatim(db_url: str) -> None:
    vectors = _seed_test_001(db_url)
    query_vec = "[" + ", ".join(f"{x:.6f}" for x in vectors[7]) + "]"
    engine = create_engine(db_url)
    with engine.connect() as conn:
        video = conn.execute(
            text(
                "SELECT video_id, title, duration, status FROM apps_db_video "
                "WHERE video_id = 'test-001';"
            )
        ).all()
        assert video == [("test-001", "Test clip", 10.0, "completed")]

        events = conn.execute(
            text(
                "SELECT frame_number, class_name, confidence, bbox FROM apps_db_event\n"
                "  WHERE video_id = 'test-001' ORDER BY frame_number LIMIT 10;"
            )
        ).all()
        assert [e.frame_number for e in events] == list(range(10))
        assert events[0].bbox == [1.0, 2.0, 3.0, 4.0]

        nearest = conn.execute(
            text(
                "SELECT video_id, frame_number, embedding <-> "
                f"'{query_vec}'::vector AS distance\n"
                "  FROM frame_embeddings WHERE video_id = 'test-001' "
                "ORDER BY distance LIMIT 5;"
            )
        ).all()
        assert len(nearest) == 5
        assert nearest[0].frame_number == 7 and nearest[0].distance < 1e-3
        distances = [r.distance for r in nearest]
        assert distances == sorted(distances)

        status = conn.execute(
            text(
                "SELECT status, progress, created_at, updated_at FROM apps_db_videoanalysis "
                "WHERE video_id = 'test-001';"
            )
        ).one()
        assert status.status == "completed" and status.progress == 100
        assert status.created_at is not None and status.updated_at is not None

        count = conn.execute(
            text("SELECT COUNT(*) FROM apps_db_event WHERE video_id='test-001';")
        ).scalar_one()
        assert count == 40
    engine.dispose()


def test_nearest_neighbour_uses_hnsw_index(db_url: str) -> None:
    """The L2 query of SPEC section 6 is served by the HNSW index.

    On a tiny table the planner rightly prefers a scan (TOASTed vectors look cheap), so
    sequential scans are priced out: the test then fails only if no index can serve
    the operator (wrong opclass, missing index).
    """
    _seed_test_001(db_url, n_frames=50)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE frame_embeddings"))
        conn.execute(text("SET enable_seqscan = off"))
        vec = "[" + ",".join(["0.5"] * IMAGE_DIM) + "]"
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                text(
                    "EXPLAIN SELECT video_id, frame_number, embedding <-> "
                    f"'{vec}'::vector AS distance FROM frame_embeddings "
                    "ORDER BY distance LIMIT 5"
                )
            )
        )
    engine.dispose()
    assert "ix_frame_embeddings_hnsw" in plan, plan


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "capstone", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=120,
    )


def test_two_embedded_instances_side_by_side(tmp_path_factory: pytest.TempPathFactory) -> None:
    from capstone.store.server import embedded_running, embedded_url, stop_embedded

    dirs = [TEST_HOME / f"side-{i}" / "pgdata" for i in range(2)]
    urls = [embedded_url(d) for d in dirs]
    try:
        assert urls[0] != urls[1]
        for i, url in enumerate(urls):
            engine = create_engine(url)
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE IF NOT EXISTS marker (v int)"))
                conn.execute(text("DELETE FROM marker"))
                conn.execute(text("INSERT INTO marker VALUES (:v)"), {"v": i})
            engine.dispose()
        # DATABASE_URL pointing at the second instance is honoured by the CLI.
        result = _cli("db", "url", env={"DATABASE_URL": urls[1]})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == urls[1]
        for i, url in enumerate(urls):
            engine = create_engine(url)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT v FROM marker")).scalar_one() == i
            engine.dispose()
    finally:
        for d in dirs:
            stop_embedded(d)
    assert not any(embedded_running(d) for d in dirs)


def test_db_secret_arn_resolves_through_secrets_manager(
    aws_env: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from capstone.config import get_settings
    from capstone.store import resolve_database_url

    client = boto3.client("secretsmanager", endpoint_url=aws_env)
    arn = client.create_secret(Name="capstone/db-test", SecretString=json.dumps({"url": db_url}))[
        "ARN"
    ]
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    get_settings.cache_clear()
    assert resolve_database_url() == db_url

    rds_arn = client.create_secret(
        Name="capstone/db-rds",
        SecretString=json.dumps(
            {
                "username": "app",
                "password": "p@ss/w",
                "host": "db.local",
                "port": 5433,
                "dbname": "capstone",
            }
        ),
    )["ARN"]
    monkeypatch.setenv("DB_SECRET_ARN", rds_arn)
    get_settings.cache_clear()
    assert resolve_database_url() == "postgresql+psycopg://app:p%40ss%2Fw@db.local:5433/capstone"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
            "database not reachable",
        ),
        ({"CAPSTONE_HOME": str(ROOT / "pyproject.toml" / "sub")}, "cannot create data directory"),
        (
            {"DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope"},
            "cannot read database secret",
        ),
    ],
)
def test_bad_configuration_gives_one_readable_line(
    env: dict[str, str], expected: str, aws_env: str
) -> None:
    result = _cli("db", "up", env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_db_commands_help_explain_each_command() -> None:
    result = _cli("db", "--help")
    assert result.returncode == 0
    for command in ("up", "down", "status", "migrate", "url"):
        assert command in result.stdout
