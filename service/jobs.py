"""Analyses outside the request-serving processes: the queue and its worker processes.

`submit` leaves a `pending` analysis row naming its object; analysis worker processes
(`service.worker`, started here on demand, at most `ANALYZE_WORKERS` per database) take
pending rows and run them, so an analysis never competes with request handling for this
process's GIL. The analysis row is the status source (`GET /analyses/{id}`, and `wait` here
for `POST /analyze?wait=true`).

Shutdown sends SIGTERM to the workers this process started: each cancels its analysis at
the next frame, gives the row back as `pending` (retryable) and exits; this waits for them.
At startup, `reclaim` returns rows whose worker died (an expired lease) to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from capstone.stages.params import AnalysisParams
from capstone.store import analyses, queries

log = logging.getLogger("capstone.service")
ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.2


def register_pending(
    video_id: str, params: AnalysisParams, source_uri: str, title: str | None = None
) -> int:
    """Make sure the video and a `pending` analysis row exist; return the analysis id."""
    return analyses.register_pending(video_id, params, source_uri, title)


def record_missing(video_id: str, params: AnalysisParams, reason: str, source: str) -> int:
    """A request for an object that does not exist leaves a `failed` row with the reason
    (never touching a completed analysis); returns its id."""
    return analyses.record_rejected_input(video_id, params, reason, source)


def _pending_exists() -> bool:
    return queries.pending_analysis_exists()


def _slots_taken() -> int:
    """Analysis worker slots held right now (advisory locks of `service.worker`)."""
    from capstone.store.slots import slots_taken
    from service.worker import ADVISORY_NAMESPACE

    return slots_taken(ADVISORY_NAMESPACE)


class AnalysisJobs:
    """The analysis queue of one API process and the worker processes it started."""

    def __init__(self, workers: int = 1, idle_exit_s: float = 300.0) -> None:
        self.workers = workers
        self.idle_exit_s = idle_exit_s
        self._procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._closing = False

    def submit(
        self, source: str, video_id: str, params: AnalysisParams, title: str | None = None
    ) -> int:
        """Queue the analysis of `source` (joining one queued or running); its id."""
        analysis_id = register_pending(video_id, params, source, title)
        self.kick()
        return analysis_id

    def kick(self) -> None:
        """Make sure workers run to take pending rows: up to `workers` from here, and none
        when every worker slot of the database is taken (by workers of other API
        processes), which would only start processes that exit at once."""
        with self._lock:
            if self._closing:
                raise RuntimeError("the service is shutting down")
            self._procs = [p for p in self._procs if p.poll() is None]
            free = self.workers - _slots_taken()
            while len(self._procs) < self.workers and free > 0:
                self._procs.append(self._spawn())
                free -= 1

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "service.worker", "--slots", str(self.workers)]
        command += ["--idle-exit", str(self.idle_exit_s)]
        # A worker is no API process: its few connections come out of the reserved ones
        # (DB_RESERVED_CONNECTIONS), not out of a share of the API processes'.
        env = {k: v for k, v in os.environ.items() if k != "CAPSTONE_API_PROCESSES"}
        return subprocess.Popen(command, cwd=ROOT, env=env)

    @staticmethod
    async def wait(analysis_id: int, timeout_s: float) -> dict[str, Any] | None:
        """The analysis row once it is `completed` or `failed`; None when `timeout_s` passes
        first (or it was given back unfinished)."""
        from starlette.concurrency import run_in_threadpool

        deadline = time.monotonic() + timeout_s
        while True:
            row = await run_in_threadpool(queries.get_analysis, analysis_id)
            if row is None or row["status"] in ("completed", "failed"):
                return row
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(POLL_S)

    def reclaim(self) -> int:
        """Return analyses whose worker died (lease expired) to the queue, and start
        workers when anything is queued; how many were reclaimed."""
        reclaimed = analyses.reclaim_expired()
        if reclaimed:
            log.info("reclaimed analyses", extra={"fields": {"count": len(reclaimed)}})
        if reclaimed or _pending_exists():
            self.kick()
        return len(reclaimed)

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Stop the workers started here: their analyses become `pending` again."""
        with self._lock:
            self._closing = True
            procs = [p for p in self._procs if p.poll() is None]
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + timeout_s
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("analysis worker %s did not stop; killed", proc.pid)
                proc.kill()
                proc.wait(timeout=10)
