"""Hostile and concurrent use (issue 15): each test reproduces an attack or a race against
the real API under uvicorn, the real embedded PostgreSQL and moto's S3, with real parallel
clients (asyncio + httpx), and checks that nothing runs, leaks, races or is lost."""

from __future__ import annotations

import asyncio
import hashlib
import pickle
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, VIDEOS, _clear_caches, require, start_api_server

# analyses here must take their real time (killed, cancelled or watched while running)
pytestmark = pytest.mark.usefixtures("real_detection")

API_KEY = "hardening-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BIKES = VIDEOS / "bikes.mp4"
PETS = VIDEOS / "pets09-s2l1.avi"
CHEAP = {"stages": ["detect", "track"]}


@pytest.fixture
def env(
    db_url: str, aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """One test's settings: its database, its own bucket, its own CAPSTONE_HOME, one key."""
    from capstone.core.ids import hash_api_key

    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    home = tmp_path / "home"
    monkeypatch.setenv("CAPSTONE_HOME", str(home))
    monkeypatch.setenv("S3_BUCKET_RAW", bucket)
    monkeypatch.setenv("API_KEY_HASHES", hash_api_key(API_KEY))
    for var in ("SQS_QUEUE_URL", "CAPSTONE_AUTH_DISABLED", "REQUIRE_AUTH_FOR_READS"):
        monkeypatch.delenv(var, raising=False)
    _clear_caches()
    from capstone.io.s3 import s3_client

    s3_client().create_bucket(Bucket=bucket)
    yield {"bucket": bucket, "db": db_url, "home": home}


@pytest.fixture
def api(env: dict[str, Any]) -> Iterator[str]:
    url, server, thread = start_api_server()
    yield url
    server.should_exit = True
    thread.join(timeout=60)


def _sql(db_url: str, query: str, **params: Any) -> list[Any]:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def _put(bucket: str, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
    from capstone.io.s3 import s3_client

    s3_client().put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})


def _wait_status(client: httpx.Client, analysis_id: int, wanted: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        row = client.get(f"/analyses/{analysis_id}").json()
        if row["status"] in wanted:
            return row
        assert time.monotonic() < deadline, f"analysis {analysis_id} stayed {row['status']}"
        time.sleep(0.3)


class _Marker:
    """Unpickling this creates a file: proof that a pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


# -- 1. no code execution from requests ------------------------------------------------------


def test_a_model_path_in_a_request_is_refused_and_no_pickle_runs(
    api: str, env: dict[str, Any], tmp_path: Path
) -> None:
    require(BIKES)
    marker = tmp_path / "pwned"
    bucket = env["bucket"]
    _put(bucket, "videos/evil/evil.pt", pickle.dumps(_Marker(marker)))
    _put(bucket, "videos/real/bikes.mp4", BIKES.read_bytes())
    with httpx.Client(base_url=api, timeout=60) as client:
        models = client.get("/models").json()
        assert "yolo11n" in models["models"] and models["default"] == "yolo11n"
        assert all("/" not in name for name in models["models"])

        first = client.post(
            "/analyze", json={"s3_bucket": bucket, "s3_key": "videos/evil/evil.pt"}, headers=AUTH
        )
        assert first.status_code == 422, first.text
        assert str(env["home"]) not in first.text and "downloads" not in first.text
        assert not list((env["home"] / "downloads").rglob("evil.pt")), "the download stays"

        candidates = [
            str(env["home"] / "downloads" / bucket / "videos/evil/evil.pt"),
            "../downloads/evil.pt",
            "/etc/passwd",
            "/etc",
            str(ROOT),
            "yolo99-not-installed",
        ]
        for model in candidates:
            res = client.post(
                "/analyze",
                json={
                    "s3_bucket": bucket,
                    "s3_key": "videos/real/bikes.mp4",
                    "params": {"model": model, **CHEAP},
                },
                headers=AUTH,
            )
            assert res.status_code == 422, (model, res.status_code, res.text)
            assert "params.model" in res.json()["detail"]
            assert "/work" not in res.json()["detail"] and "/root" not in res.json()["detail"]
    assert not marker.exists(), "a pickle from the request ran"


def test_a_path_that_is_no_model_is_a_clear_error_for_the_cli_too(tmp_path: Path) -> None:
    from capstone.errors import ModelNotFoundError
    from capstone.models.weights import resolve_model, resolve_model_name

    (tmp_path / "empty-dir").mkdir()
    for path in ("/etc/passwd", str(tmp_path / "empty-dir")):
        with pytest.raises(ModelNotFoundError, match="not a model"):
            resolve_model(path)
    with pytest.raises(ModelNotFoundError, match="not a path"):
        resolve_model_name("/etc/passwd", {"yolo11n": Path("x")})


# -- 2. races ---------------------------------------------------------------------------------


async def _parallel(url: str, requests: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        return await asyncio.gather(*(client.request(**r) for r in requests))


def test_concurrent_analyze_requests_for_a_new_video_make_one_video_row(
    api: str, env: dict[str, Any]
) -> None:
    require(BIKES)
    bucket = env["bucket"]
    _put(bucket, "videos/race-new/bikes.mp4", BIKES.read_bytes())
    requests = [
        {
            "method": "POST",
            "url": "/analyze",
            "params": {"wait": "false"},
            "headers": AUTH,
            "json": {
                "s3_bucket": bucket,
                "s3_key": "videos/race-new/bikes.mp4",
                "params": {"max_frames": 2 + i, "stages": ["detect"]},
            },
        }
        for i in range(8)
    ]
    answers = asyncio.run(_parallel(api, requests))
    assert [r.status_code for r in answers] == [202] * 8, [r.text for r in answers]
    assert _sql(env["db"], "SELECT count(*) FROM apps_db_video")[0][0] == 1
    ids = {r.json()["analysis_id"] for r in answers}
    assert len(ids) == 8
    rows = _sql(env["db"], "SELECT count(*) FROM apps_db_videoanalysis WHERE video_id='race-new'")
    assert rows[0][0] == 8


def _upload_request(path_bytes: bytes, name: str, video_id: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": "/db/videos/upload/",
        "params": {"video_id": video_id, "analyze": "false"},
        "headers": AUTH,
        "files": {"video": (name, path_bytes, "video/mp4")},
    }


def test_concurrent_uploads_never_delete_or_overwrite_each_others_objects(
    api: str, env: dict[str, Any]
) -> None:
    require(BIKES)
    require(VIDEOS / "highway-cctv.avi")
    from capstone.io.s3 import s3_client

    bikes = BIKES.read_bytes()
    answers = asyncio.run(_parallel(api, [_upload_request(bikes, "a.mp4", "same")] * 6))
    assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
    s3 = s3_client()
    for answer in answers:
        stored = s3.get_object(Bucket=env["bucket"], Key=answer.json()["s3_key"])["Body"].read()
        assert stored == bikes, "an upload reported as stored is gone or altered"

    # Different content under one new id: one content wins, the others are refused, and
    # every object reported as stored holds exactly what its request sent.
    highway = (VIDEOS / "highway-cctv.avi").read_bytes()
    mixed = [_upload_request(bikes if i % 2 else highway, f"{i}.avi", "mixed") for i in range(6)]
    answers = asyncio.run(_parallel(api, mixed))
    codes = [r.status_code for r in answers]
    assert set(codes) <= {201, 409} and 201 in codes, [r.text for r in answers]
    stored_sha = _sql(env["db"], "SELECT sha256 FROM apps_db_video WHERE video_id='mixed'")[0][0]
    for sent, answer in zip(mixed, answers, strict=True):
        body = sent["files"]["video"][1]
        if answer.status_code == 201:
            assert hashlib.sha256(body).hexdigest() == stored_sha
            key = answer.json()["s3_key"]
            assert s3.get_object(Bucket=env["bucket"], Key=key)["Body"].read() == body
        else:
            assert answer.json()["code"] == "content_conflict"


def test_different_content_under_an_existing_id_never_returns_the_old_result(
    api: str, env: dict[str, Any]
) -> None:
    require(BIKES)
    require(VIDEOS / "highway-cctv.avi")
    bucket = env["bucket"]
    params = {"max_frames": 3, **CHEAP}
    with httpx.Client(base_url=api, timeout=120) as client:
        up = client.post(
            "/db/videos/upload/",
            params={"video_id": "reused", "analyze": "false"},
            files={"video": ("bikes.mp4", BIKES.read_bytes(), "video/mp4")},
            headers=AUTH,
        )
        assert up.status_code == 201
        done = client.post(
            "/analyze",
            json={"s3_bucket": bucket, "s3_key": up.json()["s3_key"], "params": params},
            headers=AUTH,
        )
        assert done.status_code == 200, done.text

        other = (VIDEOS / "highway-cctv.avi").read_bytes()
        again = client.post(
            "/db/videos/upload/",
            params={"video_id": "reused", "analyze": "false"},
            files={"video": ("bikes.mp4", other, "video/mp4")},
            headers=AUTH,
        )
        assert again.status_code == 409 and again.json()["code"] == "content_conflict"
        assert again.json()["retryable"] is False

        # The same id on an object written straight to S3, with or without a content hash.
        sha = hashlib.sha256(other).hexdigest()
        _put(bucket, "videos/reused/direct.avi", other, {"sha256": sha})
        _put(bucket, "videos/reused/plain.avi", other)
        for key in ("videos/reused/direct.avi", "videos/reused/plain.avi"):
            res = client.post(
                "/analyze",
                json={"s3_bucket": bucket, "s3_key": key, "params": params},
                headers=AUTH,
            )
            assert res.status_code == 409, (key, res.status_code, res.text)
    rows = _sql(env["db"], "SELECT status, attempts FROM apps_db_videoanalysis")
    assert [tuple(r) for r in rows] == [("completed", 1)]


def test_failed_requests_change_nothing_a_completed_analysis_depends_on(
    api: str, env: dict[str, Any]
) -> None:
    require(BIKES)
    bucket = env["bucket"]
    params = {"max_frames": 3, **CHEAP}
    _put(bucket, "videos/kept/bikes.mp4", BIKES.read_bytes())
    with httpx.Client(base_url=api, timeout=120) as client:
        done = client.post(
            "/analyze",
            json={
                "s3_bucket": bucket,
                "s3_key": "videos/kept/bikes.mp4",
                "params": params,
                "title": "Kept",
            },
            headers=AUTH,
        )
        assert done.status_code == 200, done.text
        before = client.get("/videos/kept").json()
        for i in range(4):
            for p in (params, {"max_frames": 4 + i, **CHEAP}):
                res = client.post(
                    "/analyze",
                    json={
                        "s3_bucket": bucket,
                        "s3_key": f"videos/kept/missing-{i}.mp4",
                        "video_id": "kept",
                        "title": f"attacker {i}",
                        "params": p,
                    },
                    headers=AUTH,
                )
                assert res.status_code == 404
        after = client.get("/videos/kept").json()
    assert (after["source_uri"], after["title"], after["status"]) == (
        before["source_uri"],
        "Kept",
        "completed",
    )
    completed = _sql(
        env["db"], "SELECT count(*) FROM apps_db_videoanalysis WHERE status = 'completed'"
    )
    assert completed[0][0] == 1


def test_per_analysis_detector_settings_never_leak_between_concurrent_analyses(
    env: dict[str, Any],
) -> None:
    require(BIKES)
    from capstone.models.detector import get_detector
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    shared = get_detector("yolo11n")
    before = (shared.conf, shared.imgsz, shared.classes)
    wanted = {"only-bicycle": ("bicycle",), "only-person": ("person",), "only-car": ("car",)}
    results: dict[str, Any] = {}

    def run(video_id: str, classes: tuple[str, ...]) -> None:
        params = AnalysisParams(classes=classes, conf=0.2, max_frames=40, stages=("detect",))
        results[video_id] = analyze(BIKES, video_id=video_id, params=params)

    threads = [threading.Thread(target=run, args=item) for item in wanted.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (shared.conf, shared.imgsz, shared.classes) == before
    for video_id, classes in wanted.items():
        assert results[video_id].status == "completed", results[video_id].error
        seen = _sql(
            env["db"],
            "SELECT DISTINCT class_name FROM apps_db_event WHERE video_id = :v",
            v=video_id,
        )
        assert {r[0] for r in seen} <= set(classes), (video_id, seen)


# -- 3. leases fence every write --------------------------------------------------------------


def _takeover(db_url: str, analysis_id: int) -> None:
    """What a second worker does after the first one's lease expired."""
    _sql(
        db_url,
        "UPDATE apps_db_videoanalysis SET lease_expires_at = now() - interval '1 second' "
        "WHERE id = :i",
        i=analysis_id,
    )


def test_a_stale_owner_can_neither_store_nor_fail_the_new_owners_run(
    env: dict[str, Any],
) -> None:
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses, staging
    from capstone.store.engine import session_scope

    params = AnalysisParams(max_frames=5)
    old = analyses.claim_analysis("fenced", params, "worker-old")
    _takeover(env["db"], old.analysis_id)
    new = analyses.claim_analysis("fenced", params, "worker-new")
    assert new.analysis_id == old.analysis_id and new.token == old.token + 1

    rows = {"apps_db_event": [{"frame_number": 0, "timestamp": 0.0, "event_type": "detection"}]}
    with pytest.raises(analyses.LeaseLostError), session_scope() as session:
        staging.publish(session, old, video_id="fenced", track_map={}, rows=rows)
        analyses.mark_completed(session, old, frames_processed=1, fps=1.0, summary={})
    assert not analyses.report_progress(
        old, stage="analyze", progress=50, frames_processed=1, fps=1
    )
    assert not analyses.extend_lease(old)
    assert not analyses.mark_failed(old, "stale owner gives up")
    assert not analyses.release(old, "stale owner lets go")
    row = _sql(
        env["db"],
        "SELECT status, lease_owner, error FROM apps_db_videoanalysis WHERE id = :i",
        i=old.analysis_id,
    )[0]
    assert (row.status, row.lease_owner, row.error) == ("processing", "worker-new", None)
    assert _sql(env["db"], "SELECT count(*) FROM apps_db_event")[0][0] == 0
    assert analyses.report_progress(new, stage="analyze", progress=5, frames_processed=1, fps=1)


def test_a_taken_over_analysis_stores_nothing_and_leaves_the_row_to_its_new_owner(
    env: dict[str, Any],
) -> None:
    require(BIKES)
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses

    params = AnalysisParams(max_frames=30, stages=("detect", "track"))
    taken: dict[str, Any] = {}

    def progress(done: int, _total: int) -> None:
        if done == 5 and not taken:
            analysis_id = _sql(env["db"], "SELECT id FROM apps_db_videoanalysis")[0][0]
            _takeover(env["db"], analysis_id)
            taken["lease"] = analyses.claim_analysis("taken", params, "worker-new")

    result = analyze(BIKES, video_id="taken", params=params, progress=progress)
    assert result.status == "failed" and "taken over" in (result.error or "")
    row = _sql(env["db"], "SELECT status, lease_owner FROM apps_db_videoanalysis")[0]
    assert (row.status, row.lease_owner) == ("processing", "worker-new")
    assert _sql(env["db"], "SELECT count(*) FROM apps_db_event")[0][0] == 0


def test_the_heartbeat_holds_the_lease_for_the_whole_analysis(env: dict[str, Any]) -> None:
    require(BIKES)
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses

    params = AnalysisParams(max_frames=6, stages=("detect", "track"))
    attempts: list[str] = []

    def slow_progress(done: int, total: int) -> None:
        if done == total:  # a long stretch with no progress report (like a long finish)
            time.sleep(3.5)
            try:
                analyses.claim_analysis("held", params, "intruder", lease_seconds=60)
                attempts.append("taken")
            except analyses.AnalysisBusyError:
                attempts.append("busy")

    result = analyze(BIKES, video_id="held", params=params, progress=slow_progress, lease_seconds=2)
    assert attempts == ["busy"], "the lease expired while the analysis was still working"
    assert result.status == "completed", result.error


def test_database_errors_are_failures_with_their_reason_not_interruptions(
    env: dict[str, Any],
) -> None:
    require(BIKES)
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    def break_schema(done: int, _total: int) -> None:
        if done == 2:
            _sql(env["db"], "ALTER TABLE apps_db_track RENAME TO apps_db_track_gone")

    params = AnalysisParams(max_frames=4, stages=("detect", "track"))
    result = analyze(BIKES, video_id="dberr", params=params, progress=break_schema)
    assert result.status == "failed" and result.error.startswith("database error:")
    row = _sql(env["db"], "SELECT status, error FROM apps_db_videoanalysis")[0]
    assert row.status == "failed" and row.error.startswith("database error:")
    assert "interrupted" not in row.error


# -- 4. recovery after a crash ----------------------------------------------------------------


def test_startup_reclaims_dead_analyses_and_the_job_reposts_on_a_dead_lease(
    env: dict[str, Any],
) -> None:
    require(BIKES)
    from batch.process_video import ServiceClient
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses
    from capstone.store.migrate import ensure_schema

    ensure_schema()
    bucket = env["bucket"]
    _put(bucket, "videos/orphan/bikes.mp4", BIKES.read_bytes())
    params = AnalysisParams(max_frames=3, stages=("detect", "track"))
    uri = f"s3://{bucket}/videos/orphan/bikes.mp4"
    dead = analyses.claim_analysis("orphan", params, "killed-api", source_uri=uri)
    _takeover(env["db"], dead.analysis_id)  # the API that held it was killed -9

    url, server, thread = start_api_server()  # the restarted API reclaims and re-runs it
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            row = _wait_status(client, dead.analysis_id, {"completed", "failed"}, 120)
            assert row["status"] == "completed", row
            assert row["attempts"] == 2 and row["lease_live"] is False

            # A row whose worker dies while a Batch job polls it: the job notices the dead
            # lease and returns to POST again, instead of polling forever.
            stale = analyses.claim_analysis(
                "orphan", params.model_copy(update={"max_frames": 2}), "x"
            )
            _takeover(env["db"], stale.analysis_id)
            status = client.get(f"/analyses/{stale.analysis_id}").json()
            assert status["status"] == "processing" and status["lease_live"] is False
            job = ServiceClient(url, API_KEY, threading.Event(), poll_s=0.2)
            started = time.monotonic()
            job._wait_for(f"/analyses/{stale.analysis_id}")
            assert time.monotonic() - started < 10
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def test_shutdown_cancels_running_analyses_and_leaves_them_retryable(
    env: dict[str, Any],
) -> None:
    require(PETS)
    bucket = env["bucket"]
    _put(bucket, "videos/long/pets.avi", PETS.read_bytes())
    url, server, thread = start_api_server()
    with httpx.Client(base_url=url, timeout=60) as client:
        res = client.post(
            "/analyze",
            params={"wait": "false"},
            json={"s3_bucket": bucket, "s3_key": "videos/long/pets.avi", "params": CHEAP},
            headers=AUTH,
        )
        assert res.status_code == 202, res.text
        analysis_id = res.json()["analysis_id"]
        deadline = time.monotonic() + 120
        while client.get(f"/analyses/{analysis_id}").json()["frames_processed"] == 0:
            assert time.monotonic() < deadline, "the analysis never started"
            time.sleep(0.3)
    server.should_exit = True
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith("analysis")]
    row = _sql(env["db"], "SELECT status, error, lease_owner FROM apps_db_videoanalysis")[0]
    assert row.status == "pending" and row.lease_owner is None
    assert row.error.startswith("interrupted")
    assert _sql(env["db"], "SELECT count(*) FROM apps_db_event")[0][0] == 0


# -- 5. exposure ------------------------------------------------------------------------------


def test_errors_name_the_object_not_server_paths_and_downloads_do_not_stay(
    api: str, env: dict[str, Any]
) -> None:
    require(BIKES)
    bucket = env["bucket"]
    _put(bucket, "videos/junk/clip.mp4", b"not a video at all\n" * 100)
    _put(bucket, "videos/fine/bikes.mp4", BIKES.read_bytes())
    with httpx.Client(base_url=api, timeout=120) as client:
        bad = client.post(
            "/analyze", json={"s3_bucket": bucket, "s3_key": "videos/junk/clip.mp4"}, headers=AUTH
        )
        assert bad.status_code == 422
        assert f"s3://{bucket}/videos/junk/clip.mp4" in bad.json()["detail"]
        good = client.post(
            "/analyze",
            json={
                "s3_bucket": bucket,
                "s3_key": "videos/fine/bikes.mp4",
                "params": {"max_frames": 3, **CHEAP},
            },
            headers=AUTH,
        )
        assert good.status_code == 200, good.text
    errors = " ".join(
        r[0] or "" for r in _sql(env["db"], "SELECT error FROM apps_db_videoanalysis")
    )
    for text_ in (bad.text, errors):
        assert str(env["home"]) not in text_ and "/root" not in text_ and "/tmp" not in text_
    downloads = env["home"] / "downloads"
    assert not downloads.exists() or not any(p.is_file() for p in downloads.rglob("*"))


def test_buckets_sizes_and_bodies_are_limited_before_any_work(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    require(BIKES)
    from capstone.io.s3 import s3_client

    bucket = env["bucket"]
    s3_client().create_bucket(Bucket="someone-elses")
    _put("someone-elses", "videos/x/bikes.mp4", BIKES.read_bytes())
    _put(bucket, "videos/big/bikes.mp4", BIKES.read_bytes())
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(BIKES.stat().st_size - 1))
    monkeypatch.setenv("MAX_JSON_BYTES", "4096")
    _clear_caches()
    url, server, thread = start_api_server()
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            other = client.post(
                "/analyze",
                json={"s3_bucket": "someone-elses", "s3_key": "videos/x/bikes.mp4"},
                headers=AUTH,
            )
            assert other.status_code == 403 and other.json()["code"] == "bucket_not_allowed"
            big = client.post(
                "/analyze",
                json={"s3_bucket": bucket, "s3_key": "videos/big/bikes.mp4"},
                headers=AUTH,
            )
            assert big.status_code == 413, big.text
            huge = b'{"s3_bucket": "' + b"a" * 10_000 + b'"}'
            json_headers = {"Content-Type": "application/json"}
            anonymous = client.post("/analyze", content=huge, headers=json_headers)
            assert anonymous.status_code == 401, "the body was read before authentication"
            capped = client.post("/analyze", content=huge, headers={**AUTH, **json_headers})
            assert capped.status_code == 413 and capped.json()["code"] == "payload_too_large"
            search = client.post("/search", content=huge, headers=json_headers)
            assert search.status_code == 413
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    assert _sql(env["db"], "SELECT count(*) FROM apps_db_videoanalysis")[0][0] == 0


def test_the_openapi_schema_declares_auth_only_where_it_is_required(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app

    def security(schema: dict, path: str, method: str) -> Any:
        return schema["paths"][path][method].get("security")

    open_reads = TestClient(create_app()).get("/openapi.json").json()
    assert security(open_reads, "/videos", "get") is None
    assert security(open_reads, "/models", "get") is None
    assert security(open_reads, "/analyze", "post")
    monkeypatch.setenv("REQUIRE_AUTH_FOR_READS", "1")
    _clear_caches()
    closed = TestClient(create_app()).get("/openapi.json").json()
    assert security(closed, "/videos", "get") and security(closed, "/search", "post")
