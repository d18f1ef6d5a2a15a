"""Analysis worker processes: `python -m service.worker` (started by the API on demand).

Analyses never run in a request-serving process. `POST /analyze` and uploads leave a
`pending` analysis row naming its object (`source_uri`); a worker takes the oldest one
(`capstone.store.analyses.claim_next_pending`, `FOR UPDATE SKIP LOCKED`), runs
`capstone.runtime.pipeline.analyze` under its lease, and takes the next. At most `ANALYZE_WORKERS`
workers run against one database, however many API processes start them: each holds one of
that many PostgreSQL advisory-lock slots for its lifetime and exits when none is free.

Workers run at a lower CPU priority (`ANALYZE_NICE`, default 10), so request handling
keeps its share of the CPU while analyses run. SIGTERM (the API shutting down) cancels the
running analysis at its next frame, which gives its row back as `pending` (retryable), and
the worker exits. A worker with nothing to do for `--idle-exit` seconds exits too.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Any

log = logging.getLogger("capstone.service.worker")

OWNER_PREFIX = "service-worker:"
ADVISORY_NAMESPACE = 0x6361_7073  # "caps": the lock space of analysis worker slots
POLL_S = 0.25


def owner_id() -> str:
    return f"{OWNER_PREFIX}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def is_service_worker(owner: str | None) -> bool:
    return bool(owner) and owner.startswith(OWNER_PREFIX)  # type: ignore[union-attr]


def _hold_slot(slots: int) -> Any | None:
    """A connection holding one of `slots` worker slots (None: all are taken)."""
    from capstone.store.slots import hold_slot

    return hold_slot(ADVISORY_NAMESPACE, slots)


def release_slot(conn: Any) -> None:
    """Give the slot back."""
    from capstone.store.slots import release_slot as release

    release(conn)


def run_one(task: dict[str, Any], owner: str, stop: threading.Event) -> str:
    """Analyze one taken row; its final status."""
    from capstone.config import get_settings
    from capstone.io.s3 import parse_s3_uri
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses

    source = str(task["source_uri"])
    bucket, _ = parse_s3_uri(source)
    if bucket not in get_settings().allowed_buckets:
        analyses.fail_pending(
            task["id"], owner, f"bucket {bucket!r} is not one this service analyzes"
        )
        return "failed"
    params = AnalysisParams.model_validate(task["params"])
    try:
        result = analyze(source, video_id=task["video_id"], params=params, cancel=stop, owner=owner)
    except analyses.AnalysisBusyError:
        return "busy"
    log.info(
        "analysis finished",
        extra={
            "fields": {
                "video_id": task["video_id"],
                "analysis_id": result.analysis_id,
                "status": result.status,
                "frames": result.frames_processed,
                "fps": round(result.fps, 2),
                "error": result.error,
            }
        },
    )
    return result.status


def serve(slots: int, idle_exit_s: float, stop: threading.Event) -> int:
    """Take and run pending analyses until stopped or idle; how many ran."""
    from capstone.store import analyses

    slot = _hold_slot(slots)
    if slot is None:
        return 0  # ANALYZE_WORKERS workers already run against this database
    owner = owner_id()
    ran = 0
    idle_since = time.monotonic()
    try:
        while not stop.is_set():
            task = analyses.claim_next_pending(owner)
            if task is None:
                if time.monotonic() - idle_since > idle_exit_s:
                    break
                stop.wait(POLL_S)
                continue
            run_one(task, owner, stop)
            ran += 1
            idle_since = time.monotonic()
    finally:
        release_slot(slot)
    return ran


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m service.worker", description=__doc__)
    ap.add_argument("--slots", type=int, default=None, help="default: ANALYZE_WORKERS")
    ap.add_argument("--idle-exit", type=float, default=300.0, help="seconds idle before exit")
    args = ap.parse_args(argv)
    from capstone.config import get_settings
    from capstone.store.migrate import ensure_schema
    from service.middleware import configure_logging

    configure_logging()
    settings = get_settings()
    ensure_schema()  # once per worker process, before it takes any analysis
    # Analyses yield the CPU to request handling: reads stay fast while one runs.
    os.nice(settings.analyze_nice)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve(args.slots or settings.analyze_workers, args.idle_exit, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
