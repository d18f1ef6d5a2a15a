"""The read path under load (issue 19): keyset pages, ETags, gzip, and analyses that run in
analysis worker processes, never in the request-serving process. Real uvicorn, the real
embedded PostgreSQL, moto's S3; rows written with the real store."""

from __future__ import annotations

import gzip
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import VIDEOS, _clear_caches, require, start_api_server, store_result

API_KEY = "reads-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def api(
    db_url: str, aws_env: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    from capstone.core.ids import hash_api_key
    from capstone.io.s3 import s3_client

    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("S3_BUCKET_RAW", bucket)
    monkeypatch.setenv("API_KEY_HASHES", hash_api_key(API_KEY))
    monkeypatch.delenv("SQS_QUEUE_URL", raising=False)
    monkeypatch.delenv("REQUIRE_AUTH_FOR_READS", raising=False)
    _clear_caches()
    s3_client().create_bucket(Bucket=bucket)
    url, server, thread = start_api_server()
    yield {"url": url, "bucket": bucket, "db": db_url}
    server.should_exit = True
    thread.join(timeout=60)


def _store_events(video_id: str, n: int) -> int:
    """A completed analysis with `n` detection rows, several per frame (production path)."""
    rows = [
        {
            "frame_number": i // 3,
            "timestamp": i / 30.0,
            "event_type": "detection",
            "class_name": "car" if i % 2 else "person",
            "confidence": 0.5,
            "bbox": [1.0, 2.0, 3.0, 4.0],
            "track_id": i % 7,
        }
        for i in range(n)
    ]
    return store_result(video_id, {"apps_db_event": rows}, variant=n)


def test_keyset_cursor_walks_every_event_once_in_the_offset_order(api: dict[str, Any]) -> None:
    _store_events("paged", 1000)
    with httpx.Client(base_url=api["url"], timeout=30) as client:
        by_offset: list[int] = []
        for offset in range(0, 1000, 150):
            page = client.get("/videos/paged/events", params={"limit": 150, "offset": offset})
            by_offset += [e["id"] for e in page.json()["items"]]
        by_cursor: list[int] = []
        params: dict[str, Any] = {"limit": 150}
        while True:
            page = client.get("/videos/paged/events", params=params).json()
            by_cursor += [e["id"] for e in page["items"]]
            assert page["total"] == 1000
            if page["next"] is None:
                break
            params = {"limit": 150, "after": page["next"]}
        assert by_cursor == by_offset and len(set(by_cursor)) == 1000

        cars = client.get("/videos/paged/events", params={"class_name": "car", "limit": 1000})
        assert cars.json()["total"] == 500 and cars.json()["next"] is None
        bad = client.get("/videos/paged/events", params={"after": "12"})
        assert bad.status_code == 422
        missing = client.get("/videos/nope/events")
        assert missing.status_code == 404


def test_etags_answer_304_until_the_result_changes(api: dict[str, Any]) -> None:
    _store_events("tagged", 300)
    with httpx.Client(base_url=api["url"], timeout=30) as client:
        first = client.get("/videos/tagged/events", params={"limit": 50})
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "no-cache"
        again = client.get(
            "/videos/tagged/events", params={"limit": 50}, headers={"If-None-Match": etag}
        )
        assert again.status_code == 304 and again.content == b""
        other_query = client.get("/videos/tagged/events", params={"limit": 51})
        assert other_query.headers["etag"] != etag

        _store_events("tagged", 300)  # a re-run of the same analysis: a new version
        after = client.get(
            "/videos/tagged/events", params={"limit": 50}, headers={"If-None-Match": etag}
        )
        assert after.status_code == 200 and after.headers["etag"] != etag

        big = client.get(
            "/videos/tagged/events", params={"limit": 300}, headers={"Accept-Encoding": "gzip"}
        )
        assert big.headers["content-encoding"] == "gzip"
        assert len(big.json()["items"]) == 300  # httpx decodes it
        params = {"limit": 300}
        with client.stream(
            "GET", "/videos/tagged/events", params=params, headers={"Accept-Encoding": "gzip"}
        ) as wire:
            compressed = b"".join(wire.iter_raw())  # the bytes as sent
        plain = client.get(
            "/videos/tagged/events", params=params, headers={"Accept-Encoding": "identity"}
        )
        assert "content-encoding" not in plain.headers
        assert gzip.decompress(compressed) == plain.content
        assert len(compressed) < len(plain.content) / 2


def test_analyses_run_in_worker_processes_not_in_the_api_process(api: dict[str, Any]) -> None:
    pets = require(VIDEOS / "pets09-s2l1.avi")
    from capstone.io.s3 import s3_client

    s3_client().upload_file(str(pets), api["bucket"], "videos/elsewhere/pets.avi")
    with httpx.Client(base_url=api["url"], timeout=60) as client:
        started = client.post(
            "/analyze",
            params={"wait": "false"},
            json={
                "s3_bucket": api["bucket"],
                "s3_key": "videos/elsewhere/pets.avi",
                "params": {"stages": ["detect", "track"], "max_frames": 200},
            },
            headers=AUTH,
        )
        assert started.status_code == 202, started.text
        analysis_id = started.json()["analysis_id"]
        engine = create_engine(api["db"])
        owner = None
        deadline = time.monotonic() + 120
        while owner is None and time.monotonic() < deadline:
            with engine.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT status, lease_owner, frames_processed FROM apps_db_videoanalysis "
                        "WHERE id = :i"
                    ),
                    {"i": analysis_id},
                ).one()
            if row.status == "processing" and row.frames_processed > 0:
                owner = row.lease_owner
            time.sleep(0.2)
        engine.dispose()
        assert owner is not None, "the analysis never ran"
        assert owner.startswith("service-worker:")
        assert int(owner.split(":")[2]) != os.getpid(), "it ran in the API process"
        # Reads stay served while it runs, from the API process.
        assert client.get("/videos").status_code == 200
        status = client.get(f"/analyses/{analysis_id}").json()
        assert status["lease_live"] is True and status["progress"] >= 0


def test_workers_are_bounded_per_database_not_per_api_process(db_url: str) -> None:
    from capstone.store.migrate import ensure_schema
    from service import jobs as service_jobs
    from service.worker import _hold_slot, release_slot

    ensure_schema()
    held = _hold_slot(1)  # another API process's worker holds the only slot
    assert held is not None
    try:
        assert service_jobs._slots_taken() == 1
        assert _hold_slot(1) is None, "a second worker got the only slot"
        pool = service_jobs.AnalysisJobs(workers=1)
        pool.kick()
        assert pool._procs == [], "a worker was started although no slot is free"
    finally:
        release_slot(held)
    assert service_jobs._slots_taken() == 0
