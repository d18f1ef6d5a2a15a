"""Background analyses inside the service process: a bounded thread pool, one job per result.

The analysis row in the database is the status source (`GET /analyses/{id}`); this module
only runs `capstone.pipeline.analyze` on worker threads and remembers which (video, params)
pairs it is already running so that repeated requests join the running job.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from capstone import analyses
from capstone.db.migrate import ensure_schema
from capstone.params import AnalysisParams
from capstone.pipeline import AnalysisResult, analyze

log = logging.getLogger("capstone.service")


def register_pending(
    video_id: str, params: AnalysisParams, source_uri: str, title: str | None = None
) -> int:
    """Make sure the video and a `pending` analysis row exist; return the analysis id."""
    ensure_schema()
    return analyses.register_pending(video_id, params, source_uri, title)


class AnalysisJobs:
    """A bounded pool of analysis threads, deduplicated by (video_id, params_hash)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[tuple[str, str], Future[AnalysisResult]] = {}
        self._lock = threading.Lock()

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

    @staticmethod
    def _run(
        source: str, video_id: str, params: AnalysisParams, title: str | None
    ) -> AnalysisResult:
        log.info(
            "analysis started",
            extra={"fields": {"video_id": video_id, "source": source}},
        )
        result = analyze(source, video_id=video_id, title=title, params=params)
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

    def shutdown(self) -> None:
        """Stop taking jobs; queued ones are cancelled, running ones finish on their own."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
