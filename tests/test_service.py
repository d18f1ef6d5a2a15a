"""The FastAPI service through real HTTP (uvicorn on 127.0.0.1), the real embedded database
and moto's S3: upload -> analyze -> read, the original contracts, auth, limits, bad input."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import VIDEOS, _clear_caches, require, start_api_server

API_KEY = "test-key-" + uuid.uuid4().hex
BIKES = VIDEOS / "bikes.mp4"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def service_env(db_url: str, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings for one test: its database, its own raw bucket in moto, one API key."""
    from capstone.core.ids import hash_api_key

    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("S3_BUCKET_RAW", bucket)
    monkeypatch.setenv("API_KEY_HASHES", f"{'0' * 64},{hash_api_key(API_KEY)}")
    monkeypatch.delenv("SQS_QUEUE_URL", raising=False)
    monkeypatch.delenv("CAPSTONE_AUTH_DISABLED", raising=False)
    monkeypatch.delenv("REQUIRE_AUTH_FOR_READS", raising=False)
    _clear_caches()
    from capstone.io.s3 import s3_client

    s3_client().create_bucket(Bucket=bucket)
    yield bucket


@pytest.fixture
def live_server(service_env: str) -> Iterator[str]:
    """The app under a real uvicorn server on a free 127.0.0.1 port."""
    url, server, thread = start_api_server()
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def _bucket_keys(bucket: str) -> list[str]:
    from capstone.io.s3 import s3_client

    listing = s3_client().list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listing.get("Contents", [])]


def _count(db_url: str, sql: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def _one_pixel_png() -> bytes:
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0]))
    pixels = chunk(b"IDAT", zlib.compress(b"\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + header + pixels + chunk(b"IEND", b"")


def _upload(client: httpx.Client, path: Path, **params: str) -> httpx.Response:
    with path.open("rb") as fh:
        return client.post(
            "/db/videos/upload/",
            params=params,
            files={"video": (path.name, fh, "video/mp4")},
            headers=AUTH,
        )


@pytest.mark.slow
def test_upload_analyze_events_and_spec_queries_over_http(
    live_server: str, service_env: str, db_url: str
) -> None:
    require(BIKES)
    with httpx.Client(base_url=live_server, timeout=120) as client:
        up = _upload(client, BIKES, video_id="test-001", analyze="false")
        assert up.status_code == 201, up.text
        body = up.json()
        assert body["video_id"] == "test-001"
        key = body["s3_key"]  # content-addressed: videos/{id}/{sha256[:16]}-{filename}
        assert key.startswith("videos/test-001/") and key.endswith("-bikes.mp4")
        assert body["analysis"] == "none"
        assert up.headers["x-request-id"]
        assert key in _bucket_keys(service_env)

        video = client.get("/videos/test-001").json()
        assert video["status"] == "pending" and video["frame_count"] == 250

        request = {
            "s3_bucket": service_env,
            "s3_key": key,
            "params": {"max_frames": 40},
        }
        res = client.post("/analyze", json=request, headers=AUTH)
        assert res.status_code == 200, res.text
        assert res.json()["status"] == "success" and res.json()["video_id"] == "test-001"

        # The same analysis again answers at once, without re-running (attempts stays 1).
        again = client.post("/analyze", json=request, headers=AUTH)
        assert again.status_code == 200 and again.json()["video_id"] == "test-001"
        analyses = client.get("/videos/test-001/analyses").json()
        assert len(analyses) == 1 and analyses[0]["status"] == "completed"
        assert analyses[0]["attempts"] == 1 and analyses[0]["frames_processed"] == 40

        events = client.get("/videos/test-001/events", params={"limit": 1000}).json()
        assert events["total"] > 0 and events["analysis_id"] == analyses[0]["id"]
        frames = [e["frame_number"] for e in events["items"]]
        assert frames == sorted(frames) and max(frames) < 40
        # class + time filter. Which objects a detector finds, and when, differs between CPUs
        # (int8 kernels), so the class and the window come from the stored rows: the most
        # detected class, between the first and third quartile of its detection times
        # (bounds inclusive). The filter must return exactly the rows that match.
        assert events["total"] == len(events["items"])
        detections = [e for e in events["items"] if e["event_type"] == "detection"]
        cls = Counter(e["class_name"] for e in detections).most_common(1)[0][0]
        times = sorted({e["timestamp"] for e in detections if e["class_name"] == cls})
        t_from, t_to = times[len(times) // 4], times[3 * len(times) // 4]
        expected = sorted(
            e["id"]
            for e in events["items"]
            if e["class_name"] == cls and t_from <= e["timestamp"] <= t_to
        )
        only = client.get(
            "/videos/test-001/events",
            params={"class_name": cls, "t_from": t_from, "t_to": t_to, "limit": 1000},
        ).json()
        assert only["total"] == len(expected) > 0
        assert sorted(e["id"] for e in only["items"]) == expected
        assert only["total"] < events["total"]  # the filter did filter
        assert all(e["class_name"] == cls for e in only["items"])
        assert all(t_from <= e["timestamp"] <= t_to for e in only["items"])
        page = client.get("/videos/test-001/events", params={"limit": 5, "offset": 5}).json()
        assert [e["id"] for e in page["items"]] == [e["id"] for e in events["items"][5:10]]
        tracks = client.get("/videos/test-001/tracks").json()
        assert tracks["total"] > 0
        tid = tracks["items"][0]["track_id"]
        by_track = client.get(
            "/videos/test-001/events",
            params={"track_id": tid, "event_type": "detection", "limit": 1000},
        ).json()
        observed = [e for e in by_track["items"] if not (e["attributes"] or {}).get("interpolated")]
        assert len(observed) == tracks["items"][0]["length"]

        # wait=false: 202 with a status URL that the caller polls to completion.
        request["params"] = {"max_frames": 10, "stride": 2}
        accepted = client.post("/analyze", params={"wait": "false"}, json=request, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        status_url = accepted.json()["status_url"]
        deadline = time.monotonic() + 60
        while (status := client.get(status_url).json())["status"] != "completed":
            assert status["status"] in ("pending", "processing"), status
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert status["frames_processed"] == 10

        metrics = client.get("/metrics").text
        assert 'capstone_analyses{status="completed"} 2.0' in metrics
        assert "capstone_frames_processed_total 50.0" in metrics
        assert (
            'capstone_http_requests_total{method="POST",route="/analyze",status="200"}' in metrics
        )

    # SPEC section 6, verbatim.
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT video_id, title, duration, status FROM apps_db_video "
                "WHERE video_id = 'test-001'"
            )
        ).one()
        assert row.status == "completed" and row.duration == pytest.approx(10.0)
        first = conn.execute(
            text(
                "SELECT frame_number, class_name, confidence, bbox FROM apps_db_event "
                "WHERE video_id = 'test-001' ORDER BY frame_number LIMIT 10"
            )
        ).all()
        assert len(first) == 10 and all(len(r.bbox) == 4 for r in first)
        runs = conn.execute(
            text(
                "SELECT status, progress, created_at, updated_at FROM apps_db_videoanalysis "
                "WHERE video_id = 'test-001'"
            )
        ).all()
        assert {(r.status, r.progress) for r in runs} == {("completed", 100.0)}
        count = conn.execute(
            text("SELECT COUNT(*) FROM apps_db_event WHERE video_id='test-001'")
        ).scalar_one()
        assert count >= events["total"]
    engine.dispose()


def test_bad_input_is_a_4xx_with_a_reason_and_stores_nothing(
    live_server: str, service_env: str, db_url: str, tmp_path: Path
) -> None:
    not_video = tmp_path / "clip.mp4"
    not_video.write_bytes(b"this is text pretending to be a video\n" * 200)
    with httpx.Client(base_url=live_server, timeout=30) as client:
        res = _upload(client, not_video)
        assert res.status_code == 415 and res.json()["detail"].startswith("not a video")
        assert res.json()["code"] == "unsupported_media_type"

        png = tmp_path / "still.mp4"
        png.write_bytes(_one_pixel_png())
        still = _upload(client, png)
        assert still.status_code == 415 and "still image" in still.json()["detail"]

        no_field = client.post("/db/videos/upload/", files={"file": ("a.mp4", b"x")}, headers=AUTH)
        assert no_field.status_code == 422 and "'video'" in no_field.json()["detail"]
        not_multipart = client.post("/db/videos/upload/", content=b"abc", headers=AUTH)
        assert not_multipart.status_code == 415

        cases = {
            "missing key": {"s3_bucket": service_env},
            "missing bucket": {"s3_key": "videos/a/b.mp4"},
            "dot-dot key": {"s3_bucket": service_env, "s3_key": "videos/../../etc/passwd"},
            "absolute key": {"s3_bucket": service_env, "s3_key": "/etc/passwd"},
            "bad params": {"s3_bucket": service_env, "s3_key": "a.mp4", "params": {"stride": 0}},
            "detect_every 0": {
                "s3_bucket": service_env,
                "s3_key": "a.mp4",
                "params": {"detect_every": 0},
            },
            "detect_every text": {
                "s3_bucket": service_env,
                "s3_key": "a.mp4",
                "params": {"detect_every": "fast"},
            },
            "unknown field": {"s3_bucket": service_env, "s3_key": "a.mp4", "bogus": 1},
            "bad option value": {
                "s3_bucket": service_env,
                "s3_key": "a.mp4",
                "params": {"options": {"anchor": "top"}},
            },
            "unknown option": {
                "s3_bucket": service_env,
                "s3_key": "a.mp4",
                "params": {"options": {"no_such_option": 1}},
            },
        }
        for name, payload in cases.items():
            res = client.post("/analyze", json=payload, headers=AUTH)
            assert res.status_code == 422, name
            assert res.json()["code"] == "invalid_input" and res.json()["detail"], name
            assert res.json()["retryable"] is False, name
        assert (
            "s3_key"
            in client.post("/analyze", json=cases["dot-dot key"], headers=AUTH).json()["detail"]
        )
        for name, option in (("bad option value", "anchor"), ("unknown option", "no_such_option")):
            detail = client.post("/analyze", json=cases[name], headers=AUTH).json()["detail"]
            assert f"'{option}'" in detail, detail
        bad_json = client.post(
            "/analyze",
            content=b'{"s3_bucket": "x",',
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert bad_json.status_code == 422 and bad_json.json()["detail"]
        missing = client.post(
            "/analyze", json={"s3_bucket": service_env, "s3_key": "videos/x/none.mp4"}, headers=AUTH
        )
        assert missing.status_code == 404 and "not found" in missing.json()["detail"]
        assert missing.json()["retryable"] is False

        no_token = client.post("/analyze", json=cases["missing key"])
        assert no_token.status_code == 401 and no_token.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in no_token.json()["detail"]
        wrong = client.post(
            "/analyze", json=cases["missing key"], headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 403 and wrong.json()["detail"] == "invalid API key"
        unknown = client.get("/videos/nope-1/events")
        assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"

    assert _bucket_keys(service_env) == []
    assert _count(db_url, "SELECT COUNT(*) FROM apps_db_video") == 0
    assert _count(db_url, "SELECT COUNT(*) FROM apps_db_videoanalysis") == 0


def test_oversize_upload_is_refused_before_it_is_read(
    live_server: str, service_env: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(256 * 1024))
    _clear_caches()
    total = 64 * 1024 * 1024

    # 1. Declared too large: the answer comes before any of the body is sent.
    port = int(live_server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            (
                "POST /db/videos/upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {API_KEY}\r\n"
                "Content-Type: multipart/form-data; boundary=xyz\r\n"
                f"Content-Length: {total}\r\n\r\n"
            ).encode()
        )
        head = ""
        while "exceeds" not in head:  # headers and body may come in separate packets
            data = sock.recv(4096)
            if not data:
                break
            head += data.decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert "exceeds the limit of 262144 bytes" in head

    # 2. No length announced (chunked): counted while streaming, stopped at the limit.
    from service.app import create_app

    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n\r\n'
        chunk = b"\0" * 65536
        while sent < total:
            sent += len(chunk)
            yield chunk

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(
                "/db/videos/upload/",
                content=body(),
                headers={**AUTH, "Content-Type": "multipart/form-data; boundary=xyz"},
            )

    res = asyncio.run(post())
    assert res.status_code == 413 and res.json()["code"] == "payload_too_large"
    assert sent < 1024 * 1024, f"read {sent} bytes of {total} before refusing"
    assert _bucket_keys(service_env) == []
    assert _count(db_url, "SELECT COUNT(*) FROM apps_db_video") == 0


def test_auth_configuration_and_health(
    live_server: str, service_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "database": "ok",
            "storage": "ok",
        }
        assert client.get("/videos").json()["total"] == 0  # reads open by default

        monkeypatch.setenv("REQUIRE_AUTH_FOR_READS", "1")
        _clear_caches()
        assert client.get("/videos").status_code == 401
        assert client.get("/videos", headers={"Authorization": "Bearer x"}).status_code == 403
        assert client.get("/videos", headers=AUTH).status_code == 200
        assert client.get("/healthz").status_code == 200

        monkeypatch.setenv("API_KEY_HASHES", "")
        _clear_caches()
        refused = client.post("/analyze", json={"s3_bucket": "abc", "s3_key": "k"}, headers=AUTH)
        assert refused.status_code == 401 and refused.json()["code"] == "auth_not_configured"

        monkeypatch.setenv("S3_BUCKET_RAW", "no-such-bucket-here")
        _clear_caches()
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json()["status"] == "not_ready"
        assert not_ready.json()["checks"]["storage"] == "unavailable"  # no bucket named

        rid = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert rid.headers["x-request-id"] == "abc-123"


def test_video_id_from_metadata_key_or_hash(service_env: str) -> None:
    from capstone.io.s3 import object_video_id, s3_client, upload_video, video_id_from_key

    require(BIKES)
    key = upload_video(BIKES, service_env, "meta-42", "clip.mp4")
    assert key.startswith("videos/meta-42/") and key.endswith("-clip.mp4")
    assert object_video_id(service_env, key) == "meta-42"
    s3_client().copy_object(
        Bucket=service_env,
        Key="inbox/Street Clip.mp4",
        CopySource={"Bucket": service_env, "Key": key},
        MetadataDirective="REPLACE",
        Metadata={},
    )
    derived = object_video_id(service_env, "inbox/Street Clip.mp4")
    assert derived == video_id_from_key("inbox/Street Clip.mp4")
    assert derived.startswith("street-clip-") and len(derived) == len("street-clip-") + 8
    assert video_id_from_key("videos/abc/x.mp4") == "abc"
