"""Hostile requests (issue 29, findings 1, 2, 4 and 14): each test reproduces the attack
against the real API under uvicorn, with the embedded PostgreSQL and moto, and real parallel
clients, and checks the server refuses before it spends memory, answers from the right cache
entry, and drops slow or idle connections."""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.conftest import _clear_caches, free_port, start_api_server, store_result

API_KEY = "requests-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MB = 1024 * 1024


@pytest.fixture
def env(
    db_url: str, aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    from capstone.core.ids import hash_api_key

    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("S3_BUCKET_RAW", f"raw-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("API_KEY_HASHES", hash_api_key(API_KEY))
    for var in ("SQS_QUEUE_URL", "CAPSTONE_AUTH_DISABLED", "REQUIRE_AUTH_FOR_READS"):
        monkeypatch.delenv(var, raising=False)
    _clear_caches()
    yield {"db": db_url}


@pytest.fixture
def api(env: dict[str, Any]) -> Iterator[str]:
    url, server, thread = start_api_server()
    yield url
    server.should_exit = True
    thread.join(timeout=60)


def _rss() -> int:
    """This process's resident set (the server runs in it, in a thread)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# -- 1. image decompression bomb ---------------------------------------------------------------


def _jpeg_declaring(width: int, height: int) -> bytes:
    """A valid 16x16 JPEG whose SOF0 header is patched to declare width x height."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _png_declaring(width: int, height: int) -> bytes:
    """A valid 16x16 PNG whose IHDR declares width x height (CRC recomputed)."""
    data = bytearray(cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_an_image_bomb_is_refused_from_its_header_before_decoding(api: str) -> None:
    import base64

    def body(image: bytes) -> dict[str, Any]:
        return {"image_base64": base64.b64encode(image).decode(), "k": 1}

    bombs = [
        _jpeg_declaring(12000, 12000),  # 144 megapixels: 432 MB decoded
        _png_declaring(12000, 12000),
        _jpeg_declaring(60000, 60000),  # beyond OpenCV's own cap: was a 500
        _png_declaring(2**30, 2**30),
    ]
    assert all(len(b) < 1000 for b in bombs)

    async def attack() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api, timeout=120) as client:
            warm = await client.post("/search", json=body(b"not an image at all"))
            assert warm.status_code == 422, warm.text  # loads the decoders: not in the delta
            before = _rss()
            answers = await asyncio.gather(*(client.post("/search", json=body(b)) for b in bombs))
            answers.append(await client.post("/search", json=body(bombs[0][:300])))
            grown = _rss() - before
            assert grown < 200 * MB, f"the bombs grew the server by {grown / MB:.0f} MB"
            return answers

    started = time.monotonic()
    answers = asyncio.run(attack())
    assert time.monotonic() - started < 60
    for answer in answers[:4]:
        assert answer.status_code == 413, answer.text  # no token needed, and still refused
        assert "MAX_IMAGE_PIXELS" in answer.json()["detail"]
    truncated = answers[4]
    assert truncated.status_code in (413, 422), truncated.text


def test_an_image_within_the_pixel_budget_still_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from capstone.config import get_settings
    from capstone.search.query import ImageTooLarge, SearchInputError, _decode_image, image_size

    png = cv2.imencode(".png", np.full((30, 40, 3), 200, np.uint8))[1].tobytes()
    assert _decode_image(png).shape == (30, 40, 3)
    assert image_size(png, 1200) == (40, 30)
    with pytest.raises(ImageTooLarge, match="1199"):
        image_size(png, 1199)
    monkeypatch.setenv("MAX_IMAGE_PIXELS", "1000")
    get_settings.cache_clear()
    try:
        with pytest.raises(ImageTooLarge, match="MAX_IMAGE_PIXELS"):
            _decode_image(png)
        with pytest.raises(SearchInputError, match="could not be decoded"):
            _decode_image(b"\x89PNG\r\n\x1a\n garbage")
    finally:
        monkeypatch.delenv("MAX_IMAGE_PIXELS")
        get_settings.cache_clear()


# -- 2. the page cache: exact keys, budgets ------------------------------------------------------


def _store_video(video_id: str) -> int:
    events = [
        {
            "frame_number": i,
            "timestamp": i / 25.0,
            "event_type": "detection",
            "class_name": "car",
            "confidence": 0.5,
            "bbox": [1.0, 2.0, 3.0, 4.0],
            "track_id": 1 + i % 3,
        }
        for i in range(60)
    ]
    tracks = [
        {
            "track_id": t,
            "class_name": "car",
            "first_frame": t,
            "last_frame": 50 + t,
            "first_timestamp": t / 25.0,
            "last_timestamp": (50 + t) / 25.0,
            "length": 51,
            "mean_confidence": 0.5,
        }
        for t in (1, 2, 3)
    ]
    return store_result(video_id, {"apps_db_event": events, "apps_db_track": tracks})


def _pages() -> tuple[int, int]:
    from service.routes import videos

    with videos._PAGES_LOCK:
        return len(videos._PAGES), sum(len(b) for b in videos._PAGES.values())


def _clear_pages() -> None:
    from service.routes import videos

    clear = getattr(videos, "clear_page_cache", None)
    if clear is not None:
        clear()
    else:
        with videos._PAGES_LOCK:
            videos._PAGES.clear()


def test_tracks_and_events_with_one_query_are_separate_pages(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_pages()
    _store_video("cached")
    with httpx.Client(base_url=api, timeout=30) as client:
        query = {"limit": 5}
        tracks = client.get("/videos/cached/tracks", params=query)
        events = client.get("/videos/cached/events", params=query)
        depth = client.get("/videos/cached/depth", params=query)
        assert tracks.status_code == events.status_code == depth.status_code == 200
        assert len({tracks.headers["etag"], events.headers["etag"], depth.headers["etag"]}) == 3
        assert tracks.json()["total"] == 3 and "first_frame" in tracks.json()["items"][0]
        assert events.json()["total"] == 60 and "event_type" in events.json()["items"][0]
        again = client.get("/videos/cached/events", params=query)  # from the cache
        assert again.json() == events.json()
        # A validator of one route is no validator of another.
        other = client.get(
            "/videos/cached/events", params=query, headers={"If-None-Match": tracks.headers["etag"]}
        )
        assert other.status_code == 200 and "event_type" in other.json()["items"][0]
        # Defaults are normalized: no `limit` is `limit=100`.
        assert (
            client.get("/videos/cached/events").headers["etag"]
            == client.get("/videos/cached/events", params={"limit": 100}).headers["etag"]
        )

        monkeypatch.setenv("REQUIRE_AUTH_FOR_READS", "1")  # another auth scope
        from capstone.config import get_settings

        get_settings.cache_clear()
        scoped = client.get("/videos/cached/events", params=query, headers=AUTH)
        assert scoped.status_code == 200 and scoped.headers["etag"] != events.headers["etag"]
        assert client.get("/videos/cached/events", params=query).status_code == 401


def test_junk_parameters_make_no_cache_entries_and_budgets_hold(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capstone.config import get_settings

    _clear_pages()
    _store_video("junk")
    url = "/videos/junk/events"
    with httpx.Client(base_url=api, timeout=30) as client:
        plain = client.get(url, params={"limit": 20})
    assert plain.status_code == 200

    async def flood(requests: list[dict[str, Any]]) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=api, timeout=60, limits=limits) as client:
            return await asyncio.gather(*(client.get(url, params=p) for p in requests))

    junk = [{"limit": 20, f"junk{i}": uuid.uuid4().hex * 4} for i in range(300)]
    answers = asyncio.run(flood(junk))
    assert all(a.status_code == 200 for a in answers)
    assert {a.headers["etag"] for a in answers} == {plain.headers["etag"]}
    assert all(a.content == plain.content for a in answers[:20])
    entries, _ = _pages()
    assert entries <= 1, f"{entries} cache entries after 300 junk parameters"

    # Distinct valid pages: at most PAGE_CACHE_ENTRIES of them, and PAGE_CACHE_BYTES.
    monkeypatch.setenv("PAGE_CACHE_ENTRIES", "8")
    get_settings.cache_clear()
    answers = asyncio.run(flood([{"limit": 3, "offset": i} for i in range(40)]))
    assert all(a.status_code == 200 for a in answers)
    entries, _ = _pages()
    assert entries <= 8, f"{entries} pages kept, the budget is 8"

    budget = 3 * len(answers[0].content) + 100
    monkeypatch.setenv("PAGE_CACHE_ENTRIES", "1000")
    monkeypatch.setenv("PAGE_CACHE_BYTES", str(budget))
    get_settings.cache_clear()
    answers = asyncio.run(flood([{"limit": 3, "offset": i} for i in range(40, 57)]))
    assert all(a.status_code == 200 for a in answers)
    entries, size = _pages()
    assert size <= budget and 1 <= entries <= 4, (entries, size, budget)
    big = asyncio.run(flood([{"limit": 60}]))[0]  # larger than the whole budget: not kept
    assert big.status_code == 200 and len(big.content) > budget
    assert _pages()[1] <= budget


# -- 4. multipart is guarded like any body --------------------------------------------------


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _stream_post(url: str, path: str, total: int, *, chunked: bool) -> tuple[int, int]:
    """POST a multipart body of `total` bytes in 64 KiB pieces, watching for an answer
    while sending. Returns (status, bytes of body sent before the answer came)."""
    boundary = "hardening" + uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = total + len(head) + len(tail)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    request = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\n{framing}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    ).encode()
    piece = b"\0" * 65536

    def pieces() -> Iterator[bytes]:
        yield head
        left = total
        while left > 0:
            yield piece[: min(len(piece), left)]
            left -= len(piece)
        yield tail

    sent = 0
    answer = b""
    with socket.create_connection(_host_port(url), timeout=60) as sock:
        sock.sendall(request)
        try:
            for part in pieces():
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered (or closed) before the body was sent
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n" if chunked else part)
                sent += len(part)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except ConnectionError:
            pass  # the server closed: its answer may still be readable
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionError:
            pass
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split()[1]), sent


def test_multipart_to_json_routes_is_refused_before_its_body_is_read(api: str) -> None:
    total = 48 * MB
    results: dict[str, tuple[int, int]] = {}
    cases = {
        "analyze declared": ("/analyze", False),
        "analyze chunked": ("/analyze", True),
        "search declared": ("/search", False),
        "search chunked": ("/search", True),
    }
    before = _rss()

    def run(name: str, path: str, chunked: bool) -> None:
        results[name] = _stream_post(api, path, total, chunked=chunked)

    threads = [threading.Thread(target=run, args=(n, *c)) for n, c in cases.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    grown = _rss() - before
    assert set(results) == set(cases), results
    for name, (_, sent) in results.items():
        assert sent < 16 * MB, f"{name}: the server answered after {sent / MB:.0f} MB"
    assert results["analyze declared"][0] == 401 and results["analyze chunked"][0] == 401
    assert results["search declared"][0] == 413 and results["search chunked"][0] == 413
    assert grown < 150 * MB, f"the server grew by {grown / MB:.0f} MB"


# -- 14. slow and idle connections are dropped --------------------------------------------


def _options() -> dict[str, Any]:
    try:
        from capstone.cli.serve import uvicorn_options
    except ImportError:  # before issue 29: what `capstone serve` passed
        return {"timeout_keep_alive": 30}
    return uvicorn_options()


def _protocols() -> list[Any]:
    try:
        from capstone.cli.serve import uvicorn_options  # noqa: F401
        from service.server import H11HeaderDeadlineProtocol
    except ImportError:  # before issue 29
        return [None]
    return [None, H11HeaderDeadlineProtocol]


@pytest.fixture(params=_protocols(), ids=lambda p: "h11" if p else "serve")
def served(
    request: pytest.FixtureRequest, env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, int]]:
    """The app under uvicorn configured as `capstone serve` configures it (its default
    protocol, or the h11 one), with 1-second header and keep-alive timeouts."""
    import uvicorn

    from service.app import create_app

    monkeypatch.setenv("HTTP_HEADER_TIMEOUT_S", "1")
    monkeypatch.setenv("HTTP_KEEP_ALIVE_S", "1")
    monkeypatch.setenv("MAX_HEADER_BYTES", "8192")
    _clear_caches()
    options = _options()
    if request.param is not None:
        options["http"] = request.param
    port = free_port()
    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=port, log_level="warning", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=30)


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed `sock` within `seconds` (and what it sent before)."""
    sock.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionError:
            return True, got
        if not data:
            return True, got
        got += data
    return False, got


GET = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"


def test_idle_and_slow_clients_are_dropped(served: tuple[str, int]) -> None:
    idle = socket.create_connection(served)  # connects, sends nothing
    slow = socket.create_connection(served)  # sends its head a byte at a time
    kept = socket.create_connection(served)  # one request, then stays idle
    stop = threading.Event()

    def trickle() -> None:
        for byte in GET[:-2]:
            if stop.wait(0.25):
                return
            try:
                slow.send(bytes([byte]))
            except OSError:
                return

    sender = threading.Thread(target=trickle, daemon=True)
    try:
        started = time.monotonic()
        sender.start()
        kept.sendall(GET)
        closed, got = _closed_within(slow, 6)
        stop.set()
        sender.join(timeout=5)
        assert closed, "a client sending its headers at 4 bytes/s stayed connected"
        assert got == b"" or got.startswith(b"HTTP/1.1 408"), got[:100]

        closed, got = _closed_within(idle, 1)
        assert closed and got == b"", "a connection that never sent anything stayed open"

        closed, got = _closed_within(kept, 3)
        assert got.startswith(b"HTTP/1.1 200"), got[:100]
        assert closed, "an idle kept-alive connection stayed open"
        assert time.monotonic() - started < 20
    finally:
        stop.set()
        for sock in (idle, slow, kept):
            sock.close()


def _one_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body): a single recv may return
    only part of it when the machine is busy, leaving the rest to the next read."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = sock.recv(4096)
        if not data:
            return answer
        answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
         if line.lower().startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(body) < length:
        data = sock.recv(4096)
        if not data:
            break
        body += data
    return head + b"\r\n\r\n" + body


def test_prompt_clients_are_served_and_huge_heads_refused(served: tuple[str, int]) -> None:
    with socket.create_connection(served) as sock:
        for _ in range(3):  # keep-alive: each request's head in pieces, within the deadline
            sock.sendall(GET[:10])
            time.sleep(0.3)
            sock.sendall(GET[10:])
            sock.settimeout(10)
            assert _one_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(0.5)  # idle below the keep-alive timeout
    with socket.create_connection(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        try:
            for _ in range(64):  # 64 KiB of headers, never finished
                sock.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        except ConnectionError:
            pass
        closed, got = _closed_within(sock, 5)
        assert closed and got.split(b" ")[1] in (b"400", b"431"), got[:100]
