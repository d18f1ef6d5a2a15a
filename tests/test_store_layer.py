"""The persistence layer: the reads the applications call, migrations at process start, the
shared lease heartbeat, and the response models derived from the store's field lists."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from capstone.store import queries
from tests.conftest import _with_db, store_result

DETECTIONS = [
    {
        "frame_number": f,
        "timestamp": f / 25.0,
        "event_type": "detection",
        "class_name": "person",
        "confidence": 0.9,
        "bbox": [10.0, 20.0, 30.0, 60.0],
        "track_id": 1 + f % 2,
    }
    for f in range(6)
]
TRACKS = [
    {
        "track_id": t,
        "identity_id": 7 if t == 2 else None,
        "class_name": "person",
        "first_frame": t - 1,
        "last_frame": 5,
        "first_timestamp": (t - 1) / 25.0,
        "last_timestamp": 0.2,
        "length": 3,
        "mean_confidence": 0.9,
        "best_frame": 2,
        "best_bbox": [10.0, 20.0, 30.0, 60.0],
        "best_crop": b"\xff\xd8crop" + bytes([t]),
    }
    for t in (1, 2)
]


def test_store_result_publishes_through_staging_like_production(db_url: str) -> None:
    aid = store_result("seeded", {"apps_db_event": DETECTIONS, "apps_db_track": TRACKS})
    row = queries.get_analysis(aid)
    assert row is not None and row["status"] == "completed" and row["progress"] == 100.0
    assert (row["chunks_done"], row["chunks_total"]) == (1, 1)
    assert row["summary"]["counts"]["apps_db_event"] == 6
    engine = create_engine(db_url)
    with engine.connect() as conn:
        staged = conn.execute(text("SELECT count(*) FROM staging_apps_db_event")).scalar()
        chunks = conn.execute(text("SELECT count(*) FROM apps_db_analysischunk")).scalar()
    engine.dispose()
    assert (staged, chunks) == (0, 0)
    assert [t["track_id"] for t in queries.list_tracks("seeded")["items"]] == [1, 2]

    again = store_result("seeded", {"apps_db_event": DETECTIONS[:2]})
    assert again == aid and queries.get_analysis(aid)["attempts"] == 2
    assert queries.list_events("seeded")["total"] == 2

    failed = store_result("seeded", {"apps_db_event": DETECTIONS}, variant=2, status="failed")
    assert queries.get_analysis(failed)["status"] == "failed"
    assert queries.list_events("seeded", analysis_id=failed)["total"] == 6
    assert queries.list_events("seeded")["analysis_id"] == aid


def test_reads_the_applications_call(db_url: str) -> None:
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses

    aid = store_result("reads", {"apps_db_event": DETECTIONS, "apps_db_track": TRACKS})
    params = AnalysisParams(stages=("detect", "track"), max_frames=1)
    found = queries.analysis_for_params("reads", params.params_hash())
    assert found is not None and found["id"] == aid and found["status"] == "completed"
    assert found["lease_live"] is False and found["lease_owner"] is None
    assert queries.analysis_for_params("reads", "no-such-hash") is None

    assert queries.video_sha256("reads") is None
    assert queries.video_sha256("nobody") is None
    assert queries.track_crop("reads", aid, 2) == b"\xff\xd8crop\x02"
    assert queries.track_crop("reads", aid, 9) is None

    raw = queries.tracked_detections("reads", aid)
    assert [(f, t) for f, t, _, _ in raw] == [(f, 1 + f % 2) for f in range(6)]
    named = queries.tracked_detections("reads", aid, identities=True)
    assert {t for _, t, _, _ in named} == {1, 7}
    assert queries.tracked_detections("reads", aid, "car") == []

    assert queries.pending_analysis_exists() is False
    analyses.register_pending("waiting", params, "s3://bucket/videos/waiting/a.mp4")
    assert queries.pending_analysis_exists() is True

    assert queries.analysis_notebook(aid) == (True, None)
    assert analyses.store_notebook(aid, {"cells": [], "nbformat": 4})
    assert queries.analysis_notebook(aid) == (True, {"cells": [], "nbformat": 4})
    assert queries.analysis_notebook(10**9) == (False, None)
    assert analyses.store_notebook(10**9, {}) is False


def test_run_sql_returns_columns_and_rows_and_never_commits(db_url: str) -> None:
    store_result("test-001", {"apps_db_event": DETECTIONS})
    columns, rows = queries.run_sql("SELECT COUNT(*) FROM apps_db_event WHERE video_id='test-001';")
    assert columns == ["count"] and rows == [(6,)]
    assert queries.run_sql("DELETE FROM apps_db_event") == ([], [])
    assert queries.run_sql("SELECT count(*) AS n FROM apps_db_event") == (["n"], [(6,)])
    assert queries.first_frame_embedding("test-001") is None


def test_the_spec_queries_run_verbatim_through_the_store(db_url: str) -> None:
    import numpy as np

    from capstone.cli.analyze import SPEC_QUERIES
    from capstone.store.tables import IMAGE_DIM

    vectors = np.eye(3, IMAGE_DIM, dtype=np.float32)
    frames = [
        {"frame_number": i, "timestamp": i / 25.0, "model": "m", "embedding": vectors[i]}
        for i in range(3)
    ]
    store_result("test-001", {"apps_db_event": DETECTIONS, "frame_embeddings": frames})
    vector = queries.first_frame_embedding("test-001")
    assert vector is not None and vector.startswith("[1,0,0")
    results = [queries.run_sql(sql.replace("{vector}", vector)) for sql in SPEC_QUERIES]
    assert [len(rows) for _, rows in results] == [1, 6, 3, 1, 1]
    assert results[2][0] == ["video_id", "frame_number", "distance"]
    assert results[2][1][0][1:] == (0, 0.0)
    assert results[4][1] == [(6,)]


def test_chunk_progress_is_part_of_every_analysis_read(db_url: str) -> None:
    from capstone.core.chunks import ChunkSpan
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses, staging

    lease = analyses.claim_analysis("chunky", AnalysisParams(max_frames=9), "w")
    staging.ensure_chunks(
        lease.analysis_id, [ChunkSpan(i, 3 * i, 3 * i + 3, 3 * i) for i in (0, 1)]
    )
    chunk = staging.claim_chunk(lease.analysis_id, "w")
    assert chunk is not None
    staging.complete_chunk(staging.StagingSink("chunky", chunk), [], {}, 3)
    expected = (1, 2)
    detail = queries.get_video("chunky")["latest_analysis"]
    listed = queries.list_analyses("chunky")[0]
    status = queries.get_analysis(lease.analysis_id)
    for row in (detail, listed, status):
        assert (row["chunks_done"], row["chunks_total"]) == expected


def test_response_models_are_the_store_field_lists() -> None:
    from service import schemas

    pairs = [
        (schemas.VideoOut, queries.VIDEO_FIELDS),
        (schemas.EventOut, queries.EVENT_FIELDS),
        (schemas.TrackOut, queries.TRACK_FIELDS),
        (schemas.DepthOut, queries.DEPTH_FIELDS),
    ]
    for model, fields in pairs:
        assert tuple(model.model_fields) == fields
    extra = ("lease_expires_at", "lease_live")
    assert tuple(schemas.AnalysisOut.model_fields) == queries.ANALYSIS_FIELDS + extra
    assert schemas.EventOut.model_fields["id"].annotation is int
    assert not schemas.EventOut.model_fields["class_name"].is_required()
    assert schemas.TrackOut.model_fields["class_name"].is_required()


def test_concurrent_process_starts_migrate_an_empty_database_once(pg_server_url: str) -> None:
    from capstone.store import migrate

    name = "t_migrate_race"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = _with_db(pg_server_url, name)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            migrate.ensure_schema(url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == []
        assert migrate.current_revision(url) == migrate.head_revision()
    finally:
        from capstone.store import reset_engines

        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_service_start_migrates_and_requests_do_not(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from capstone.store import migrate
    from service.app import create_app

    calls: list[str | None] = []
    real = migrate.ensure_schema
    monkeypatch.setattr(migrate, "ensure_schema", lambda url=None: (calls.append(url), real(url)))
    with TestClient(create_app()) as client:
        assert calls == [None]
        for _ in range(3):
            assert client.get("/videos").status_code == 200
            assert client.get("/videos/nope/analyses").status_code == 404
    assert calls == [None]


def test_one_heartbeat_renews_every_lease_it_is_given() -> None:
    from capstone.runtime.heartbeat import Heartbeat

    renewed: list[float] = []
    failures = iter([RuntimeError("queue away")])

    def renew() -> None:
        renewed.append(time.monotonic())
        error = next(failures, None)
        if error is not None:
            raise error

    with Heartbeat(None, None, 2, renew=[renew]) as beat:
        assert beat.interval == 0.5
        deadline = time.monotonic() + 10
        while len(renewed) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(renewed) >= 3, "a failed renewal stopped the heartbeat"
    assert beat.beats == len(renewed) - 1  # the failed one is not counted
    with pytest.raises(RuntimeError, match="again"):
        Heartbeat(
            None, None, 2, renew=[lambda: (_ for _ in ()).throw(RuntimeError("again"))]
        ).beat()


def test_batch_holds_its_message_with_the_library_heartbeat(aws_env: str) -> None:
    import boto3

    from batch.process_video import visibility_heartbeat
    from capstone.runtime.heartbeat import Heartbeat

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="hb-test", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    receipt = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0][
        "ReceiptHandle"
    ]
    heartbeat = visibility_heartbeat(sqs, url, receipt)
    assert isinstance(heartbeat, Heartbeat) and heartbeat.seconds == 2
    heartbeat.beat()
    with heartbeat:
        time.sleep(3.0)  # longer than the visibility timeout: still held
        again: dict[str, Any] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    assert "Messages" not in again and heartbeat.beats >= 3
