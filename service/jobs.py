"""Background analyses inside the service process: a bounded thread pool, one job per result.

The analysis row in the database is the status source (`GET /analyses/{id}`); this module
only runs `capstone.pipeline.analyze` on worker threads and remembers which (video, params)
pairs it is already running so that repeated requests join the running job.

Shutdown cancels what runs (each analysis stops at its next frame and gives its row back as
`pending`, retryable) and waits for the threads, so no analysis outlives the app and writes
into whatever database the process points at next. At startup, `reclaim` re-runs analyses
whose worker died (an expired lease) when their source is an object of an allowed bucket.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures

from capstone import analyses
from capstone.config import get_settings
from capstone.db.migrate import ensure_schema
from capstone.params import AnalysisParams
from capstone.pipeline import AnalysisResult, analyze
from capstone.storage import parse_s3_uri

log = logging.getLogger("capstone.service")


def register_pending(
    video_id: str, params: AnalysisParams, source_uri: str, title: str | None = None
) -> int:
    """Make sure the video and a `pending` analysis row exist; return the analysis id."""
    ensure_schema()
    return analyses.register_pending(video_id, params, source_uri, title)


def record_missing(video_id: str, params: AnalysisParams, reason: str, source: str) -> int:
    """A request for an object that does not exist leaves a `failed` row with the reason
    (never touching a completed analysis); returns its id."""
    ensure_schema()
    return analyses.record_rejected_input(video_id, params, reason, source)


class AnalysisJobs:
    """A bounded pool of analysis threads, deduplicated by (video_id, params_hash)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[tuple[str, str], Future[AnalysisResult]] = {}
        self._lock = threading.Lock()
        self._cancel = threading.Event()

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="analysis")
        return self._pool

    def running(self, video_id: str, params_hash: str) -> Future[AnalysisResult] | None:
        """The job of this process for (video, params), if one is queued or running."""
        with self._lock:
            future = self._running.get((video_id, params_hash))
            return future if future is not None and not future.done() else None

    def submit(
        self, source: str, video_id: str, params: AnalysisParams, title: str | None = None
    ) -> Future[AnalysisResult]:
        """Queue `analyze(source)`, or return the job already queued for the same result."""
        key = (video_id, params.params_hash())
        with self._lock:
            if self._cancel.is_set():
                raise RuntimeError("the service is shutting down")
            current = self._running.get(key)
            if current is not None and not current.done():
                return current
            future = self._executor().submit(self._run, source, video_id, params, title)
            self._running[key] = future
            future.add_done_callback(lambda f, k=key: self._forget(k, f))
            return future

    def _forget(self, key: tuple[str, str], future: Future[AnalysisResult]) -> None:
        with self._lock:
            if self._running.get(key) is future:
                del self._running[key]

    def _run(
        self, source: str, video_id: str, params: AnalysisParams, title: str | None
    ) -> AnalysisResult:
        log.info(
            "analysis started",
            extra={"fields": {"video_id": video_id, "source": source}},
        )
        result = analyze(source, video_id=video_id, title=title, params=params, cancel=self._cancel)
        log.info(
            "analysis finished",
            extra={
                "fields": {
                    "video_id": video_id,
                    "analysis_id": result.analysis_id,
                    "status": result.status,
                    "frames": result.frames_processed,
                    "fps": round(result.fps, 2),
                    "error": result.error,
                }
            },
        )
        return result

    def reclaim(self) -> int:
        """Re-run analyses whose worker died (lease expired); how many were resubmitted."""
        allowed = get_settings().allowed_buckets
        resubmitted = 0
        for row in analyses.reclaim_expired():
            source = row.get("source_uri") or ""
            try:
                bucket, _ = parse_s3_uri(source)
            except Exception:
                continue  # a local file of another machine: the next request retries it
            if bucket not in allowed:
                continue
            params = AnalysisParams.model_validate(row["params"])
            self.submit(source, row["video_id"], params, row.get("title"))
            resubmitted += 1
        if resubmitted:
            log.info("reclaimed analyses", extra={"fields": {"resubmitted": resubmitted}})
        return resubmitted

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Cancel queued and running analyses (their rows stay retryable) and wait for them."""
        with self._lock:
            self._cancel.set()
            pending = list(self._running.values())
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        started = time.monotonic()
        _, not_done = wait_futures(pending, timeout=timeout_s)
        if not not_done and self._pool is not None:
            self._pool.shutdown(wait=True)  # every job is done: the threads exit at once
        if not_done:
            log.warning(
                "analyses still running after shutdown",
                extra={"fields": {"count": len(not_done), "waited_s": time.monotonic() - started}},
            )
