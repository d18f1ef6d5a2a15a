"""Bounded HTTP load on the read API from a second process, on 127.0.0.1 only.

Starts the service (uvicorn, one process) unless --url is given, makes sure the video exists
(analyzing --seed into the same database when it does not), then runs N concurrent clients
for a fixed time over event listing and video reads, and prints requests/s, p50/p99
latency and the error count.

    .venv/bin/python bench/api_load.py --clients 50 --duration 30
    .venv/bin/python bench/api_load.py --url http://127.0.0.1:8087 --video-id test-001
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEED = ROOT.parent / "shared" / "data" / "videos" / "bikes.mp4"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "service.app:app", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} did not become healthy in {timeout:.0f}s")


def _ensure_video(url: str, video_id: str, seed: Path, max_frames: int) -> int:
    found = httpx.get(f"{url}/videos/{video_id}/events", params={"limit": 1}, timeout=10)
    if found.status_code == 200 and found.json()["total"] > 0:
        return int(found.json()["total"])
    from capstone.params import AnalysisParams
    from capstone.pipeline import analyze

    result = analyze(seed, video_id=video_id, params=AnalysisParams(max_frames=max_frames))
    if result.status != "completed":
        raise SystemExit(f"seeding {seed} failed: {result.error}")
    return int(result.counts.get("apps_db_event", 0))


async def _client(
    client: httpx.AsyncClient, video_id: str, stop_at: float, n: int, out: dict[str, list]
) -> None:
    paths = [
        (f"/videos/{video_id}/events", {"limit": 100, "offset": 0}),
        (f"/videos/{video_id}/events", {"limit": 50, "offset": 100}),
        (f"/videos/{video_id}/events", {"class_name": "car", "limit": 100}),
        (f"/videos/{video_id}/events", {"t_from": 1.0, "t_to": 3.0}),
        (f"/videos/{video_id}", None),
        ("/videos", {"limit": 20}),
        (f"/videos/{video_id}/tracks", None),
    ]
    i = n
    while time.monotonic() < stop_at:
        path, params = paths[i % len(paths)]
        i += 1
        t = time.perf_counter()
        try:
            res = await client.get(path, params=params)
            why = "" if res.status_code == 200 else f"{res.status_code} {res.text[:120]}"
        except httpx.HTTPError as exc:
            why = type(exc).__name__
        out["latency"].append(time.perf_counter() - t)
        if why:
            out["errors"].append(f"{path}: {why}")


async def _load(url: str, video_id: str, clients: int, duration: float) -> dict[str, object]:
    out: dict[str, list] = {"latency": [], "errors": []}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {}
    if os.environ.get("CAPSTONE_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['CAPSTONE_API_KEY']}"
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=30, headers=headers
    ) as client:
        started = time.monotonic()
        stop_at = started + duration
        await asyncio.gather(*(_client(client, video_id, stop_at, n, out) for n in range(clients)))
        elapsed = time.monotonic() - started
    lat = sorted(out["latency"])
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [lat[0]] * 99
    return {
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "requests": len(lat),
        "requests_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "errors": len(out["errors"]),
        "error_kinds": sorted(set(out["errors"]))[:5],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--url", help="a running service (default: start one on a free port)")
    ap.add_argument("--video-id", default="bench-load")
    ap.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="video analyzed if missing")
    ap.add_argument("--max-frames", type=int, default=100)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=30.0)
    args = ap.parse_args()
    if not 1 <= args.clients <= 500 or not 0 < args.duration <= 300:
        raise SystemExit("--clients must be 1-500 and --duration 0-300 s (a bounded load)")
    server = None
    url = args.url
    if url is None:
        url = f"http://127.0.0.1:{_free_port()}"
        server = _start_server(int(url.rsplit(":", 1)[1]))
    elif not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("this load generator only targets the loopback interface")
    try:
        _wait_ready(url)
        events = _ensure_video(url, args.video_id, args.seed, args.max_frames)
        report = asyncio.run(_load(url, args.video_id, args.clients, args.duration))
        report["events_in_video"] = events
        print(json.dumps(report))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
