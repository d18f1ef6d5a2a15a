"""The one lease heartbeat: a thread that keeps what a worker holds from expiring.

It extends the analysis lease (when this worker holds it), the leases of the chunks it
runs (with their progress) and any other lease given as a `renew` callback (e.g. the
Batch job's SQS message visibility) every quarter of the lease, and notes what was lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from capstone.errors import CapstoneError
from capstone.store import analyses, staging

log = logging.getLogger(__name__)

HEARTBEAT_MIN_S = 0.5


class AnalysisCancelled(CapstoneError):
    """The caller asked the analysis to stop (e.g. the service shuts down)."""

    http_status = 503
    retryable = True  # given back as `pending`: the next request resumes it
    code = "cancelled"


class Progress(Protocol):
    """What a running chunk reports with its lease: the frames it has processed."""

    frames: int


class Heartbeat:
    """Extends the leases held every quarter of `seconds`; notes what was lost. A failed
    beat (the database or queue away) is logged and tried again at the next one.

    >>> Heartbeat(None, None, 30).interval
    7.5
    """

    def __init__(
        self,
        lease: analyses.Lease | None,
        cancel: threading.Event | None,
        seconds: int = analyses.LEASE_SECONDS,
        *,
        renew: Sequence[Callable[[], object]] = (),
        name: str = "capstone-lease",
    ) -> None:
        self.lease, self.cancel, self.seconds = lease, cancel, seconds
        self.renew = tuple(renew)
        self.lost = threading.Event()
        self.chunks: dict[int, tuple[staging.ChunkLease, Progress]] = {}
        self.lost_chunks: set[int] = set()
        self.beats = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def interval(self) -> float:
        return max(HEARTBEAT_MIN_S, self.seconds / 4)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:  # a missed beat is not yet a lost lease: try again
                log.warning("lease heartbeat failed: %s: %s", type(exc).__name__, exc)

    def beat(self) -> None:
        """Extend everything held now; raises what a `renew` callback raises."""
        with self._lock:
            held = list(self.chunks.values())
        for chunk_lease, run in held:
            if not staging.extend_chunk(chunk_lease, run.frames):
                self.lost_chunks.add(chunk_lease.chunk_index)
        if self.lease is not None and not analyses.extend_lease(self.lease):
            self.lost.set()
        for renew in self.renew:
            renew()
        self.beats += 1

    def hold(self, chunk_lease: staging.ChunkLease, run: Progress) -> None:
        with self._lock:
            self.chunks[chunk_lease.chunk_index] = (chunk_lease, run)

    def drop(self, chunk_index: int) -> None:
        with self._lock:
            self.chunks.pop(chunk_index, None)

    def held(self) -> list[staging.ChunkLease]:
        with self._lock:
            return [lease for lease, _ in self.chunks.values()]

    def check(self) -> None:
        """Raise if the analysis lease was lost or the caller cancelled."""
        if self.lost.is_set():
            assert self.lease is not None
            raise analyses.LeaseLostError(
                f"analysis {self.lease.analysis_id} was taken over by another worker"
            )
        if self.cancel is not None and self.cancel.is_set():
            raise AnalysisCancelled("cancelled before it finished")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
