"""Bad values, whole-string ids, health leaks and the latest analysis (issue 29, 10-13).

Each test runs the real API under uvicorn against the embedded PostgreSQL and moto's S3:
NUL characters and integers beyond 64 bits in every parameter of every route answer a
4xx on the same keep-alive connection; ids and keys with a trailing newline are refused;
`/readyz` names the failing component without its address or user; `/metrics` answers
while the database is down and needs a token when reads do; a failed re-analysis does not
hide the completed one as the video's latest analysis.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import _clear_caches, free_port, start_api_server, store_result

API_KEY = "values-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {API_KEY}"}
VIDEO = "vals-001"
NUL = "a\x00b"
HUGE_INTS: tuple[Any, ...] = (2**63, -(2**63) - 1, 10**30, "1e20", 1e20)
ROWS = {
    "apps_db_event": [
        {
            "frame_number": 3,
            "timestamp": 0.12,
            "event_type": "object_detected",
            "class_name": "person",
            "track_id": 1,
            "confidence": 0.9,
            "bbox": [1.0, 2.0, 30.0, 40.0],
            "description": "a person",
        }
    ],
    "apps_db_track": [
        {
            "track_id": 1,
            "class_name": "person",
            "first_frame": 3,
            "last_frame": 9,
            "first_timestamp": 0.12,
            "last_timestamp": 0.36,
            "length": 4,
            "mean_confidence": 0.9,
        }
    ],
}


@pytest.fixture
def env(
    db_url: str, aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """One test's settings: its database, its own bucket, its own CAPSTONE_HOME, one key."""
    from capstone.core.ids import hash_api_key

    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("S3_BUCKET_RAW", bucket)
    monkeypatch.setenv("API_KEY_HASHES", hash_api_key(API_KEY))
    for var in ("SQS_QUEUE_URL", "CAPSTONE_AUTH_DISABLED", "REQUIRE_AUTH_FOR_READS"):
        monkeypatch.delenv(var, raising=False)
    _clear_caches()
    from capstone.io.s3 import s3_client

    s3_client().create_bucket(Bucket=bucket)
    yield {"bucket": bucket, "db": db_url, "moto": aws_env}


def _serve() -> Iterator[str]:
    url, server, thread = start_api_server()
    yield url
    server.should_exit = True
    thread.join(timeout=60)


@pytest.fixture
def api(env: dict[str, Any]) -> Iterator[str]:
    yield from _serve()


def _port(response: httpx.Response) -> int | None:
    """The client-side port of the connection that carried `response` (None: closed)."""
    stream = response.extensions["network_stream"]
    try:
        return int(stream.get_extra_info("client_addr")[1])
    except OSError:  # the server closed it already
        return None


# -- 10. NUL characters and huge integers: a 4xx, and the connection stays -------------------


def _probes(spec: dict[str, Any], bucket: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, url, httpx kwargs) for every parameter of every operation of the OpenAPI
    document: a NUL in each string, integers beyond 64 bits (and floats) in each integer."""
    probes: list[tuple[str, str, dict[str, Any]]] = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            params = op.get("parameters", [])
            base = {p["name"]: _valid(p) for p in params if p["in"] == "path"}
            for param in params:
                kinds = _kinds(param["schema"])
                bad: list[Any] = []
                if "string" in kinds:
                    bad.append(NUL)
                if "integer" in kinds:
                    bad.extend(HUGE_INTS)
                for value in bad:
                    values = dict(base)
                    query: dict[str, Any] = {}
                    if param["in"] == "path":
                        values[param["name"]] = value
                    elif param["in"] == "query":
                        query[param["name"]] = str(value)
                    else:
                        continue
                    url = path.format(**{k: quote(str(v), safe="") for k, v in values.items()})
                    kwargs: dict[str, Any] = {"params": query, "headers": AUTH}
                    if path == "/analyze":
                        kwargs["json"] = {"s3_bucket": bucket, "s3_key": "videos/x/none.mp4"}
                        kwargs["params"] = {**query, "wait": "false"}
                    if path == "/search":
                        kwargs["json"] = {"text": "person"}
                    if path.startswith("/db/videos/upload"):
                        kwargs["files"] = {"video": ("v.mp4", b"not a video", "video/mp4")}
                    probes.append((method.upper(), url, kwargs))
    analyze = {"s3_bucket": bucket, "s3_key": "videos/x/none.mp4"}
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/search", {"text": NUL}),
        ("/search", {"text": "person", "filters": {"video_ids": [NUL]}}),
        ("/search", {"text": "person", "filters": {"class_names": [NUL]}}),
        ("/search", {"text": "person", "filters": {"event_types": [NUL]}}),
        ("/search", {"text": "person", "target": "events", "filters": {"event_types": [NUL]}}),
        ("/search", {"frame": {"video_id": NUL, "frame_number": 1}}),
        ("/search", {"track": {"video_id": NUL, "track_id": 1}}),
        ("/analyze", {**analyze, "title": NUL}),
        ("/analyze", {**analyze, "video_id": NUL}),
        ("/analyze", {**analyze, "s3_key": "videos/x/a\x00.mp4"}),
        ("/analyze", {**analyze, "params": {"model": NUL}}),
        ("/analyze", {**analyze, "params": {"classes": [NUL]}}),
        ("/analyze", {**analyze, "params": {"tracker": NUL}}),
        ("/analyze", {**analyze, "params": {"options": {NUL: 1}}}),
        ("/analyze", {**analyze, "params": {"options": {"anchor": NUL}}}),
    ]
    for number in (2**63, 10**30, 1e20, -(2**63) - 1):
        bodies += [
            ("/search", {"text": "person", "filters": {"analysis_ids": [number]}}),
            ("/search", {"text": "person", "filters": {"min_track_length": number}}),
            ("/search", {"frame": {"video_id": VIDEO, "frame_number": number}}),
            ("/search", {"frame": {"video_id": VIDEO, "frame_number": 3, "analysis_id": number}}),
            ("/search", {"track": {"id": number}}),
            ("/search", {"track": {"video_id": VIDEO, "track_id": number}}),
            ("/search", {"track": {"video_id": VIDEO, "track_id": 1, "analysis_id": number}}),
            ("/search", {"text": "person", "k": number}),
            ("/analyze", {**analyze, "params": {"max_frames": number}}),
            ("/analyze", {**analyze, "params": {"stride": number}}),
        ]
    for path, body in bodies:
        params = {"wait": "false"} if path == "/analyze" else {}
        probes.append(("POST", path, {"json": body, "headers": AUTH, "params": params}))
    for cursor in ("9223372036854775808:0", "0:9223372036854775808", "-9223372036854775809:1"):
        for route in ("events", "tracks", "depth"):
            probes.append(("GET", f"/videos/{VIDEO}/{route}", {"params": {"after": cursor}}))
    return probes


def _kinds(schema: dict[str, Any]) -> set[str]:
    options = schema.get("anyOf", [schema])
    return {o.get("type", "") for o in options} | (
        {"string"} if any("enum" in o for o in options) else set()
    )


def _valid(param: dict[str, Any]) -> Any:
    return {"video_id": VIDEO, "analysis_id": 1, "frame_number": 3}.get(param["name"], 1)


def test_nul_and_huge_integers_answer_4xx_on_the_same_connection(
    api: str, env: dict[str, Any]
) -> None:
    store_result(VIDEO, ROWS)
    with httpx.Client(base_url=api, timeout=60) as client:
        spec = client.get("/openapi.json").json()
        probes = _probes(spec, env["bucket"])
        assert len(probes) > 150
        port = _port(client.get("/healthz"))
        failures = []
        for method, url, kwargs in probes:
            label = f"{method} {url} {kwargs.get('params')} {kwargs.get('json')}"
            try:
                answer = client.request(method, url, **kwargs)
            except httpx.TransportError as exc:  # the server dropped the connection
                failures.append(f"{label}: {type(exc).__name__} {exc}")
                continue
            used = _port(answer)
            if not 400 <= answer.status_code < 500:
                failures.append(f"{label}: {answer.status_code} {answer.text[:160]}")
            else:
                body = answer.json()
                assert body["code"] and body["detail"] and "Traceback" not in answer.text, label
                assert "pgdata" not in answer.text and "/tmp" not in answer.text, label
            try:
                after = client.get("/healthz")  # the same connection still serves
            except httpx.TransportError:  # the server closed it after answering
                after = client.get("/healthz")
            assert after.status_code == 200
            if used != port or _port(after) != port:
                failures.append(f"{label}: the keep-alive connection was closed")
                port = _port(after)
        assert not failures, f"{len(failures)} of {len(probes)} probes:\n" + "\n".join(failures)


def test_a_nul_answer_names_the_parameter(api: str, env: dict[str, Any]) -> None:
    with httpx.Client(base_url=api, timeout=60) as client:
        query = client.get(f"/videos/{VIDEO}/events", params={"class_name": NUL})
        assert query.status_code == 422 and "class_name" in query.json()["detail"]
        body = client.post("/search", json={"text": "x", "filters": {"event_types": ["a", NUL]}})
        assert body.status_code == 422, body.text
        assert body.json()["errors"][0]["loc"] == ["filters", "event_types", "1"]
        assert "filters.event_types.1" in body.json()["detail"]
        # Without a token, a write with a NUL is refused for the token first (no parsing).
        anonymous = client.post("/analyze", json={"s3_bucket": "abc", "s3_key": NUL})
        assert anonymous.status_code == 401
        # The literal text backslash-u-0000 is not a NUL: it passes to the route.
        literal = client.post("/search", json={"text": "\\u0000 person", "mode": "text"})
        assert literal.status_code == 200, literal.text
        store_result(VIDEO, ROWS)
        cursor = client.get(f"/videos/{VIDEO}/tracks", params={"after": "9223372036854775808:0"})
        assert cursor.status_code == 422 and "cursor" in cursor.json()["detail"], cursor.text


# -- 11. ids and keys are matched whole: a trailing newline is refused -----------------------


def test_ids_and_keys_with_a_trailing_newline_are_refused(api: str, env: dict[str, Any]) -> None:
    from capstone.io.s3 import s3_client

    bucket = env["bucket"]
    s3_client().put_object(Bucket=bucket, Key="videos/nl/a.mp4", Body=b"not a video")
    analyze = {"s3_bucket": bucket, "s3_key": "videos/nl/a.mp4"}
    wait = {"wait": "false"}
    with httpx.Client(base_url=api, timeout=60, headers=AUTH) as client:
        probes = [
            client.post("/analyze", params=wait, json={**analyze, "video_id": "nl-a\n"}),
            client.post(
                "/analyze",
                params=wait,
                json={**analyze, "s3_key": "videos/nl/missing.mp4", "video_id": "nl-b\n"},
            ),
            client.post("/analyze", params=wait, json={**analyze, "s3_key": "videos/nl/a.mp4\n"}),
            client.post(
                "/analyze", params=wait, json={**analyze, "params": {"model": "yolo11n\n"}}
            ),
            client.post(
                "/db/videos/upload/",
                params={"video_id": "nl-c\n"},
                files={"video": ("v.mp4", b"not a video", "video/mp4")},
            ),
            client.get("/videos/nl-a%0A"),
            client.get("/videos/nl-a%0A/events"),
        ]
        for answer in probes:
            assert answer.status_code == 422, (answer.request.url, answer.text)
        assert client.get("/videos").json()["total"] == 0, "a video was registered"

    from capstone.errors import InputError
    from capstone.io.s3 import validate_key, validate_video_id, video_id_from_key
    from capstone.models.weights import is_model_name

    for bad in ("nl-a\n", "nl-a\n\n"):
        with pytest.raises(InputError):
            validate_video_id(bad)
    with pytest.raises(InputError):
        validate_key("videos/nl/a.mp4\n")
    assert video_id_from_key("videos/nl-a\n/a.mp4") != "nl-a\n"
    assert not is_model_name("yolo11n\n")


# -- 12. health bodies name the component; /metrics answers and is guarded -------------------


@pytest.fixture
def dead_env(
    aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Settings whose database (a user, a socket directory) and S3 endpoint are not there."""
    secrets = {
        "user": f"leaky_user_{uuid.uuid4().hex[:6]}",
        "socket": f"/tmp/leaky-socket-{uuid.uuid4().hex[:6]}",
        "endpoint": f"127.0.0.1:{free_port()}",
    }
    monkeypatch.setenv(
        "DATABASE_URL",
        f"postgresql+psycopg://{secrets['user']}:pw@/capstone?host={secrets['socket']}",
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{secrets['endpoint']}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("S3_BUCKET_RAW", "leaky-bucket")
    for var in ("REQUIRE_AUTH_FOR_READS", "CAPSTONE_AUTH_DISABLED"):
        monkeypatch.delenv(var, raising=False)
    _clear_caches()
    yield secrets
    _clear_caches()


def test_readyz_names_the_failing_component_not_its_address(dead_env: dict[str, str]) -> None:
    for url in _serve():
        with httpx.Client(base_url=url, timeout=60) as client:
            ready = client.get("/readyz")
            metrics = client.get("/metrics")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not_ready",
        "checks": {"database": "unavailable", "storage": "unavailable"},
    }
    for secret in dead_env.values():
        assert secret not in ready.text
    assert metrics.status_code == 200 and "capstone_database_up 0.0" in metrics.text


def test_metrics_answer_while_the_database_is_down(api: str, env: dict[str, Any]) -> None:
    store_result(VIDEO, ROWS)
    with httpx.Client(base_url=api, timeout=60) as client:
        up = client.get("/metrics")
        assert up.status_code == 200 and 'capstone_analyses{status="completed"} 1.0' in up.text
        _drop_database(env["db"])  # the database goes away under the running server
        down = client.get("/metrics")
        assert down.status_code == 200, down.text
        assert "capstone_database_up 0.0" in down.text
        assert "capstone_database_up 1.0" in up.text
        assert "capstone_http_requests_total" in down.text  # what needs no database
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] == "unavailable"
        assert "postgres" not in ready.text and "pgdata" not in ready.text


def _drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    head, _, query = url.partition("?")
    base, name = head.rsplit("/", 1)
    admin = create_engine(
        f"{base}/postgres" + (f"?{query}" if query else ""), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_metrics_need_a_token_when_reads_do(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUIRE_AUTH_FOR_READS", "1")
    _clear_caches()
    for url in _serve():
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/metrics").status_code == 401
            assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 403
            assert client.get("/metrics", headers=AUTH).status_code == 200
            monkeypatch.delenv("REQUIRE_AUTH_FOR_READS")
            _clear_caches()
            assert client.get("/metrics").status_code == 200  # open by default, like reads


# -- 13. a failed re-analysis does not hide the completed one --------------------------------


def test_latest_analysis_is_the_completed_one_after_a_failed_attempt(
    api: str, env: dict[str, Any]
) -> None:
    from capstone.io.s3 import s3_client

    completed = store_result(VIDEO, ROWS)
    bucket = env["bucket"]
    s3_client().put_object(Bucket=bucket, Key="videos/junk/junk.mp4", Body=b"not a video")
    request = {
        "s3_bucket": bucket,
        "s3_key": "videos/junk/junk.mp4",
        "video_id": VIDEO,
        "params": {"stages": ["detect", "track"], "max_frames": 5},
    }
    with httpx.Client(base_url=api, timeout=120, headers=AUTH) as client:
        failed = client.post("/analyze", json=request)
        assert failed.status_code in (409, 422), failed.text
        attempts = client.get(f"/videos/{VIDEO}/analyses").json()
        assert {a["status"] for a in attempts} == {"completed", "failed"}, attempts
        latest = client.get(f"/videos/{VIDEO}").json()["latest_analysis"]
        assert latest["id"] == completed and latest["status"] == "completed"
        tracks = client.get(f"/videos/{VIDEO}/tracks").json()
        assert tracks["analysis_id"] == latest["id"]  # the shown results are the latest's
