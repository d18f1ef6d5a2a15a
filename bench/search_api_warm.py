"""Warm latency of one hybrid text search through the API (issue 26): `POST /search` with
the same query again and again, against `capstone serve` on this checkout's database.

    .venv/bin/python -m bench.search_api_warm            # "a cyclist on the street", 50 calls

Needs an analysed video with keyframe embeddings (e.g. `make demo`). The first calls load
the text model and warm the caches (not counted); p50 / p99 of the rest are printed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx

from bench import machine_note


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default="a cyclist on the street")
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    port = _port()
    env = {**os.environ, "CAPSTONE_AUTH_DISABLED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "capstone", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    body = {"text": args.text, "mode": "hybrid", "k": 10}
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/healthz").status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.3)
            for _ in range(3):  # warm-up: the text model, plans, the page cache
                client.post("/search", json=body).raise_for_status()
            times = []
            for _ in range(args.calls):
                t = time.perf_counter()
                reply = client.post("/search", json=body)
                times.append(time.perf_counter() - t)
                reply.raise_for_status()
        hits = len(reply.json()["hits"])
        p50, p99 = statistics.median(times) * 1000, statistics.quantiles(times, n=100)[98] * 1000
        print(f"POST /search hybrid {args.text!r}, warm, {args.calls} calls ({hits} hits): "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")  # fmt: skip
        print(machine_note())
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
