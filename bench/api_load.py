"""Read throughput of `capstone serve` against the plainest FastAPI app, side by side.

One run, one database (a fresh one on the bench server): a stored analysis (bikes, 100
frames) to read, a synthetic video with `--big-rows` events (1M) for deep pages, and an S3
emulator holding PETS09 for an analysis that runs while reads are measured. Both servers
run as subprocesses on 127.0.0.1: ours (`uvicorn service.app:app --workers W`, analyses in
analysis worker processes) and the baseline (`bench/baseline_app.py`, sync routes, one
worker). The load generator (`wrk` when installed, else this process with httpx) runs N
clients for `--duration` seconds over
`GET /videos` and `GET /videos/{id}/events?limit=100`, and prints req/s, p50, p99 and
errors (median of alternating rounds) for: baseline idle, ours idle, ours while an analysis
runs, baseline while it runs;
then first vs deep page latency of the 1M-event video (keyset cursor vs OFFSET).

    .venv/bin/python -m bench.api_load                      # 50 clients, 3 rounds of 10 s
    .venv/bin/python -m bench.api_load --clients 50 --duration 15 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import (
    ROOT,
    VIDEOS,
    copy_synthetic_detections,
    drop_database,
    fresh_database,
    machine_note,
    setup_environment,
)

SEED_VIDEO = "bench-load"
BIG_VIDEO = "bench-1m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(app: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--no-access-log", "--log-level", "warning",
         "--timeout-keep-alive", "30"],
        cwd=ROOT, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_ready(url: str, path: str = "/videos", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server at {url} did not answer {path} in {timeout:.0f}s")


def _seed_analysis() -> int:
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    params = AnalysisParams(max_frames=100, stages=("detect", "track", "events"))
    result = analyze(VIDEOS / "bikes.mp4", video_id=SEED_VIDEO, params=params)
    if result.status != "completed":
        raise SystemExit(f"seeding failed: {result.error}")
    return int(result.counts.get("apps_db_event", 0))


def _synthesize_big_video(rows: int, batch: int = 100_000) -> None:
    """A completed analysis with `rows` detection events, written with COPY."""
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses
    from capstone.store.engine import session_scope

    params = AnalysisParams(max_frames=1)
    lease = analyses.claim_analysis(BIG_VIDEO, params, analyses.worker_id())
    with session_scope() as session:
        analyses.fence(session, lease)
        copy_synthetic_detections(
            session,
            BIG_VIDEO,
            lease.analysis_id,
            rows,
            confidence=0.5,
            track_of=lambda _row, frame: frame % 500,
            batch=batch,
        )
        analyses.mark_completed(
            session, lease, frames_processed=rows // 20, fps=0.0, summary={"synthetic": True}
        )


async def _client(
    client: httpx.AsyncClient, paths: list[tuple[str, dict | None]], stop_at: float, n: int,
    out: dict[str, list],
) -> None:  # fmt: skip
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


async def _load(url: str, clients: int, duration: float) -> dict[str, Any]:
    paths: list[tuple[str, dict | None]] = [
        (f"/videos/{SEED_VIDEO}/events", {"limit": 100}),
        ("/videos", {"limit": 20}),
    ]
    out: dict[str, list] = {"latency": [], "errors": []}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.monotonic()
        stop_at = started + duration
        await asyncio.gather(*(_client(client, paths, stop_at, n, out) for n in range(clients)))
        elapsed = time.monotonic() - started
    lat = sorted(out["latency"])
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [lat[0]] * 99
    return {
        "requests_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "errors": len(out["errors"]),
        "error_kinds": sorted(set(out["errors"]))[:3],
    }


_WRK_SCRIPT = """
local paths = {"/videos/%s/events?limit=100", "/videos?limit=20"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% 2) + 1])
end
"""


def _load_wrk(url: str, clients: int, duration: float) -> dict[str, Any]:
    """The same request mix with wrk (C, a fraction of httpx's CPU per request)."""
    import re
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % SEED_VIDEO)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{duration:.0f}s", "--latency", "--timeout", "30s",
         "-s", script.name, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    os.unlink(script.name)

    def ms(label: str) -> float:
        found = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not found:
            return float("nan")
        value, unit = float(found.group(1)), found.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 1)

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in sockets.groups()) if sockets else 0
    return {
        "requests_per_s": float(rate.group(1)) if rate else 0.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "errors": errors,
        "error_kinds": [] if not errors else ["see wrk output"],
    }


def _server_cpu_s(server: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by a server and its worker processes."""
    import psutil

    total = 0.0
    root = psutil.Process(server.pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _measure(
    url: str, server: subprocess.Popen[bytes], clients: int, duration: float
) -> dict[str, Any]:
    """One load round, plus the server's CPU milliseconds per request (whatever the client
    costs, this is what the server itself spends)."""
    cpu = _server_cpu_s(server)
    if shutil.which("wrk"):
        result = _load_wrk(url, clients, duration)
    else:
        result = asyncio.run(_load(url, clients, duration))
    requests = result["requests_per_s"] * duration
    result["server_cpu_ms_per_req"] = round(
        (_server_cpu_s(server) - cpu) * 1000 / max(1.0, requests), 2
    )
    return result


def _rounds(
    sides: dict[str, tuple[str, subprocess.Popen[bytes]]],
    clients: int,
    duration: float,
    rounds: int,
) -> dict[str, dict[str, Any]]:
    """Each side measured `rounds` times, alternating (A B A B ...), so that a change in the
    machine's load hits both sides alike; the median round of each side is reported."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, (url, server) in sides.items():
            runs[name].append(_measure(url, server, clients, duration))
    out = {}
    for name, results in runs.items():
        out[name] = {
            key: statistics.median(r[key] for r in results)
            for key in ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_req")
        }
        out[name]["errors"] = sum(r["errors"] for r in results)
        out[name]["error_kinds"] = sorted({k for r in results for k in r["error_kinds"]})[:3]
        out[name]["rounds_req_s"] = [r["requests_per_s"] for r in results]
    return out


def _page_latency(url: str, params: dict[str, Any], repeat: int = 15) -> float:
    """Median ms of one events page of the big video."""
    times = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(repeat):
            t = time.perf_counter()
            res = client.get(f"/videos/{BIG_VIDEO}/events", params=params)
            times.append(time.perf_counter() - t)
            if res.status_code != 200:
                raise SystemExit(f"deep page failed: {res.status_code} {res.text[:200]}")
    return round(statistics.median(times) * 1000, 1)


def _deep_pages(url: str, page: int, limit: int = 100) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(os.environ["DATABASE_URL"])
    with engine.connect() as conn:
        key = conn.execute(
            text(
                "SELECT frame_number, id FROM apps_db_event WHERE video_id = :v "
                "ORDER BY frame_number, id OFFSET :o LIMIT 1"
            ),
            {"v": BIG_VIDEO, "o": (page - 1) * limit - 1},
        ).one()
    engine.dispose()
    _page_latency(url, {"limit": limit}, repeat=2)  # warm the count of this result
    first = _page_latency(url, {"limit": limit})
    deep = _page_latency(url, {"limit": limit, "after": f"{key[0]}:{key[1]}"})
    offset = _page_latency(url, {"limit": limit, "offset": (page - 1) * limit}, repeat=5)
    return {
        "page": page,
        "first_ms": first,
        "deep_cursor_ms": deep,
        "deep_offset_ms": offset,
        "cursor_ratio": round(deep / first, 2),
    }


def _start_analysis(url: str, token: str, bucket: str) -> int:
    res = httpx.post(
        f"{url}/analyze",
        params={"wait": "false"},
        json={"s3_bucket": bucket, "s3_key": "videos/bench-run/pets09.avi"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    if res.status_code != 202:
        raise SystemExit(f"could not start the analysis: {res.status_code} {res.text[:200]}")
    analysis_id = int(res.json()["analysis_id"])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        row = httpx.get(f"{url}/analyses/{analysis_id}", timeout=10).json()
        if row["status"] == "processing" and row["frames_processed"] > 0:
            return analysis_id
        time.sleep(0.5)
    raise SystemExit("the analysis did not start")


def _analysis_state(url: str, analysis_id: int) -> str:
    row = httpx.get(f"{url}/analyses/{analysis_id}", timeout=10).json()
    return f"{row['status']} ({row['frames_processed']} frames)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per side and round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    ap.add_argument("--workers", type=int, default=0, help="our uvicorn workers (0: per core)")
    ap.add_argument("--big-rows", type=int, default=1_000_000)
    ap.add_argument("--deep-page", type=int, default=10_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not 1 <= args.clients <= 500 or not 0 < args.duration <= 300:
        raise SystemExit("--clients must be 1-500 and --duration 0-300 s (a bounded load)")
    setup_environment()
    from moto.server import ThreadedMotoServer

    url_db = fresh_database("api")
    moto_port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        token = secrets.token_hex(16)
        bucket = "bench-raw"
        aws = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        }
        os.environ.update(aws)
        from capstone.core.ids import hash_api_key

        env = {
            **os.environ,
            **aws,
            "S3_BUCKET_RAW": bucket,
            "API_KEY_HASHES": hash_api_key(token),
            "DATABASE_URL": url_db,
        }
        from bench import _clear_caches
        from capstone.io.s3 import s3_client

        _clear_caches()
        s3_client().create_bucket(Bucket=bucket)
        s3_client().upload_file(
            str(VIDEOS / "pets09-s2l1.avi"), bucket, "videos/bench-run/pets09.avi"
        )
        t = time.perf_counter()
        seeded = _seed_analysis()
        print(f"seeded {SEED_VIDEO}: {seeded} events ({time.perf_counter() - t:.1f} s)")
        t = time.perf_counter()
        _synthesize_big_video(args.big_rows)
        print(f"synthesized {BIG_VIDEO}: {args.big_rows} events ({time.perf_counter() - t:.1f} s)")

        workers = args.workers or max(1, os.cpu_count() or 1)
        ours_url, base_url = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
        servers.append(_start("service.app:app", int(ours_url.rsplit(":", 1)[1]), workers, env))
        servers.append(_start("bench.baseline_app:app", int(base_url.rsplit(":", 1)[1]), 1, env))
        _wait_ready(ours_url)
        _wait_ready(base_url)
        report: dict[str, Any] = {
            "clients": args.clients,
            "duration_s": args.duration,
            "rounds": args.rounds,
        }
        ours_side, base_side = (ours_url, servers[0]), (base_url, servers[1])
        report["load generator"] = "wrk" if shutil.which("wrk") else "httpx (asyncio)"
        sides = {"baseline idle": base_side, "ours idle": ours_side}
        report.update(_rounds(sides, args.clients, args.duration, args.rounds))
        analysis_id = _start_analysis(ours_url, token, bucket)
        busy = {"ours, analysis running": ours_side, "baseline, analysis running": base_side}
        report.update(_rounds(busy, args.clients, args.duration, args.rounds))
        report["analysis"] = _analysis_state(ours_url, analysis_id)
        report["deep pages (ours)"] = _deep_pages(ours_url, args.deep_page)

        base, ours = report["baseline idle"], report["ours idle"]
        busy = report["ours, analysis running"]
        report["ratios"] = {
            "ours/baseline req/s (>= 2)": round(ours["requests_per_s"] / base["requests_per_s"], 2),
            "ours p99 / baseline p99 (<= 1)": round(ours["p99_ms"] / base["p99_ms"], 2),
            "ours p99 running / idle (<= 1.5)": round(busy["p99_ms"] / ours["p99_ms"], 2),
            "server CPU per request, ours / baseline": round(
                ours["server_cpu_ms_per_req"] / base["server_cpu_ms_per_req"], 2
            ),
            "page 10,000 / page 1 (<= 2)": report["deep pages (ours)"]["cursor_ratio"],
        }
        report["machine"] = machine_note()
        print(f"our uvicorn workers: {workers}; load: {report['load generator']}")
        print(report["machine"])
        print("| side | req/s | p50 ms | p99 ms | errors | server CPU ms/request |")
        print("|---|---|---|---|---|---|")
        for name in (
            "baseline idle",
            "ours idle",
            "ours, analysis running",
            "baseline, analysis running",
        ):
            r = report[name]
            print(
                f"| {name} | {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} "
                f"| {r['errors']} | {r['server_cpu_ms_per_req']} |"
            )
        print(json.dumps(report["deep pages (ours)"]))
        print(json.dumps(report["ratios"]))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        moto.stop()
        drop_database(url_db)


if __name__ == "__main__":
    main()
