"""The pipeline: probe -> plan chunks -> (decode -> detect -> track -> stages) per chunk,
rows streamed to staging -> stitch and publish in one transaction.

Memory does not grow with the video: rows leave for the staging tables as they are made
(`capstone.store.staging`), and per chunk only live state is kept
(`capstone.runtime.chunk_runner`). A killed run resumes at its first unfinished chunk;
`workers=N` runs chunks in N processes; `chunks=[...]`, `publish=False` runs only some
chunks (an AWS Batch array child) and a later call publishes (`capstone.runtime.publish`).

>>> from capstone.runtime.pipeline import analyze
>>> result = analyze("../shared/data/videos/bikes.mp4", video_id="bikes")  # doctest: +SKIP
>>> result.status, result.counts["apps_db_event"]  # doctest: +SKIP
('completed', 1234)
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from capstone.config import get_settings
from capstone.core.chunks import ChunkSpan, plan_chunks, planned_chunks
from capstone.core.ids import default_video_id
from capstone.core.video import VideoInfo, check_duration, probe
from capstone.errors import BudgetExceededError, CapstoneError, InputError, policy_of
from capstone.io.s3 import discard_download, fetch
from capstone.models.detector import Detector, get_detector
from capstone.models.weights import USER_CACHE
from capstone.runtime import reuse
from capstone.runtime.chunk_runner import ChunkJob, build_stages
from capstone.runtime.heartbeat import AnalysisCancelled, Heartbeat
from capstone.stages.params import AnalysisParams
from capstone.store import analyses, staging
from capstone.store.migrate import ensure_schema

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
WAIT_POLL_S = 0.5

__all__ = [
    "AnalysisCancelled",
    "AnalysisResult",
    "analyze",
    "build_stages",
    "plan",
]


@dataclass
class AnalysisResult:
    video_id: str
    analysis_id: int
    status: str  # completed | staged (chunks only) | pending | failed | conflict
    frames_processed: int = 0
    frames_expected: int = 0
    fps: float = 0.0
    wall_time: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    tracks_per_class: dict[str, int] = field(default_factory=dict)
    events_per_type: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    retryable: bool | None = None  # failed: can running it again succeed?
    chunks_total: int = 0
    chunks_run: int = 0  # done when this call returned
    frames_run: int = 0  # sampled frames this process analyzed (not its worker processes)
    reused_from: int | None = None  # the analysis whose detections and tracks were reused
    recomputed: list[str] = field(default_factory=list)  # stages a reuse ran again


def sampling_step(info: VideoInfo, params: AnalysisParams) -> int:
    return params.stride if not params.target_fps else max(1, round(info.fps / params.target_fps))


def plan(info: VideoInfo, params: AnalysisParams) -> list[ChunkSpan]:
    """The chunks of this video under these parameters (`capstone.core.chunks.plan_chunks`).

    The header's frame count is a claim, not the work: a header over the budgets
    (`MAX_VIDEO_DURATION_S`, `MAX_CHUNKS_PER_JOB`) fails the analysis before any work,
    chunks past the video's real end are completed empty without being run
    (`ChunkJob`), and decoding past `MAX_VIDEO_DURATION_S` fails it."""
    step = sampling_step(info, params)
    frame_count = max(1, info.frame_count)
    if params.max_frames:
        frame_count = min(frame_count, params.max_frames * step)
    settings = get_settings()
    check_duration(
        frame_count, info.fps, settings.max_video_duration_s, where=f"{info.path}: the header says"
    )
    n = planned_chunks(frame_count=frame_count, fps=info.fps, chunk_s=params.chunk_s, step=step)
    if n > settings.max_chunks_per_job:
        raise BudgetExceededError(
            f"{n} chunks of {params.chunk_s:g} s; at most {settings.max_chunks_per_job} per "
            "analysis (MAX_CHUNKS_PER_JOB): use a larger chunk_s"
        )
    return plan_chunks(frame_count=frame_count, fps=info.fps, chunk_s=params.chunk_s, step=step)


def _import_stage_modules() -> None:
    """Import what the first frame needs (the tracker: Ultralytics' trackers, which import
    torch; the detector itself needs neither) and the stage modules while the main thread
    probes and hashes the video, claims the analysis and compiles the detector."""
    import ultralytics.trackers.bot_sort
    import ultralytics.trackers.byte_tracker  # noqa: F401

    import capstone.stages  # noqa: F401


def _public(message: str, path: Path, label: str) -> str:
    """`message` with the server-side path of the input replaced by what the user named,
    and the server's directories by their setting names."""
    message = message.replace(str(path.absolute()), label).replace(str(path), label)
    settings = get_settings()
    places = [(settings.home, "$CAPSTONE_HOME"), (USER_CACHE, "~/.cache/capstone/models")]
    if settings.capstone_models_dir:
        places.append(
            (settings.capstone_models_dir.expanduser().absolute(), "$CAPSTONE_MODELS_DIR")
        )
    places.append((Path.home(), "~"))
    for place, name in places:
        message = message.replace(str(place), name)
    return message


@dataclass
class _Run:
    """One call's settings, passed down instead of a dozen arguments."""

    progress: ProgressCallback | None = None
    detector: Detector | None = None
    fail_store_after: str | None = None
    cancel: threading.Event | None = None
    workers: int = 1
    chunks: Sequence[int] | None = None
    publish: bool = True
    reuse: bool = True
    release_input: Callable[[], None] = lambda: None
    """Called once the video is no longer read (before the result is published)."""


def analyze(
    source: str | Path,
    *,
    video_id: str | None = None,
    title: str | None = None,
    params: AnalysisParams | None = None,
    progress: ProgressCallback | None = None,
    detector: Detector | None = None,
    fail_store_after: str | None = None,
    cancel: threading.Event | None = None,
    lease_seconds: int | None = None,
    owner: str | None = None,
    workers: int = 1,
    chunks: Sequence[int] | None = None,
    publish: bool = True,
    reuse: bool = True,
) -> AnalysisResult:
    """Analyze one video end to end and publish the result; returns a summary.

    Bad input never raises out of here once the analysis row exists: the row is marked
    `failed` with the reason and the result says so; so are database errors while it runs.
    `AnalysisBusyError` (the same analysis being published elsewhere) raises. `owner` names
    the worker (default: a fresh id); a worker that took a queued row passes its own.
    Setting `cancel` stops the analysis at the next frame and gives the row back as
    `pending` (retryable). `lease_seconds` (default `CAPSTONE_LEASE_S`, 120) is how long
    a killed worker's analysis and chunks stay locked before another worker may resume
    them. Error messages name the source as given (an `s3://` URI, a file name), never a
    server path.

    Chunks already staged by an earlier (killed) run are kept: the run resumes. `workers`
    > 1 runs chunks in that many processes. `chunks` with `publish=False` runs only those
    chunks and returns `staged`; a call with `publish=True` runs whatever is left and
    publishes.

    With `reuse` (the default), when a completed analysis of the same video has the same
    upstream parameters (`AnalysisParams.upstream_hash`: everything but the events stage's
    options and `confirm_s`), its stored detections and tracks are reused: the video is
    not decoded, only the derived stages are recomputed (`capstone.runtime.reuse`), and
    `reused_from` / `recomputed` say so. `reuse=False` forces a full run.

    Args:
        source: a local video path or an `s3://bucket/key` URI.
        video_id: the id to store it under (default: from the file name,
            `capstone.core.ids.default_video_id`).
        title: a display title for the video.
        params: `capstone.stages.params.AnalysisParams` (default: the defaults): model,
            sampling, tracker, stages and their options.
        progress: called with `(frames_done, frames_expected)` as frames are analyzed.
        detector: a `capstone.models.detector.Detector` to use instead of the cached one.
        fail_store_after: for tests: fail the store after this step.
        cancel, lease_seconds, owner, workers, chunks, publish, reuse: as above.

    Returns:
        `AnalysisResult`: `status` (`completed`, `staged`, `pending`, `failed` or
        `conflict`), the analysis id, frames, timings, rows per table (`counts`), tracks
        per class, events per type, warnings and `error`.

    >>> from capstone.stages.params import AnalysisParams
    >>> params = AnalysisParams(stride=2, stages=("track", "events"))
    >>> params.stages  # what a stage needs is added
    ('detect', 'track', 'events')
    >>> result = analyze("bikes.mp4", video_id="bikes", params=params)  # doctest: +SKIP
    >>> result.status, result.error, result.frames_processed  # doctest: +SKIP
    ('completed', None, 125)
    """
    params = params or AnalysisParams()
    video_id = video_id or default_video_id(source)
    lease_seconds = lease_seconds or get_settings().capstone_lease_s
    if workers < 1:
        raise ValueError("workers must be >= 1")
    started = time.perf_counter()
    threading.Thread(target=_import_stage_modules, name="capstone-imports", daemon=True).start()
    ensure_schema()
    owner = owner or analyses.worker_id()
    text = str(source)
    label = text if text.startswith("s3://") else Path(text).name
    path: Path | None = None
    run = _Run(progress, detector, fail_store_after, cancel, workers, chunks, publish, reuse)
    try:
        try:
            path, source_uri = fetch(source)
            info = probe(path)
        except InputError as exc:
            reason = _public(str(exc), path, label) if path is not None else str(exc)
            _discard_fetched(path, text)  # gone before the row says failed
            path = None
            analysis_id = analyses.record_rejected_input(
                video_id, params, reason, label, owner=owner
            )
            return AnalysisResult(video_id, analysis_id, "failed", error=reason)
        fetched = path
        run.release_input = functools.partial(_discard_fetched, fetched, text)

        def public(message: str) -> str:
            return _public(message, fetched, label)

        try:
            if publish:
                lease: analyses.Lease | None = analyses.claim_analysis(
                    video_id,
                    params,
                    owner,
                    info=info,
                    title=title,
                    source_uri=source_uri,
                    lease_seconds=lease_seconds,
                )
                analysis_id = lease.analysis_id  # type: ignore[union-attr]
            else:
                lease = None
                analysis_id, status = analyses.join_analysis(
                    video_id, params, info=info, title=title, source_uri=source_uri
                )
                if status == "completed":
                    return AnalysisResult(video_id, analysis_id, "completed")
        except analyses.ContentConflictError as exc:
            _discard_fetched(path, text)
            path = None
            analysis_id = analyses.record_rejected_input(
                video_id, params, str(exc), label, code="content_conflict", owner=owner
            )
            return AnalysisResult(video_id, analysis_id, "conflict", error=str(exc))
        result = AnalysisResult(video_id, analysis_id, "processing")
        _run_leased(info, params, lease, owner, lease_seconds, result, run, public)
    finally:
        _discard_fetched(path, text)
    result.wall_time = time.perf_counter() - started
    return result


def _discard_fetched(path: Path | None, source: str) -> None:
    """Remove what `fetch` downloaded for an `s3://` source (a local file stays)."""
    if path is not None and source.startswith("s3://"):
        discard_download(path)


def _run_leased(
    info: VideoInfo,
    params: AnalysisParams,
    lease: analyses.Lease | None,
    owner: str,
    lease_seconds: int,
    result: AnalysisResult,
    run: _Run,
    public: Callable[[str], str],
) -> None:
    """`_run` under a heartbeat; every outcome is written fenced by the lease (chunk-only
    runs hold no analysis lease: their failures stay in their chunks, for the publisher to
    retry), and every reason passes through `public` (no server paths)."""
    heartbeat = Heartbeat(lease, run.cancel, lease_seconds)
    try:
        with heartbeat:
            _run(info, params, lease, owner, result, run, heartbeat)
    except analyses.LeaseLostError as exc:  # the new owner's row: write nothing
        result.status, result.error = "failed", str(exc)
        result.retryable = policy_of(exc).retryable
    except AnalysisCancelled as exc:
        _give_back(heartbeat, lease, f"interrupted: {exc}; it runs again on the next request")
        result.status, result.error = "pending", f"interrupted: {exc}"
        result.retryable = policy_of(exc).retryable
    except (SQLAlchemyError, psycopg.Error) as exc:
        first_line = (str(exc).splitlines() or [""])[0][:300]
        _fail(lease, result, public(f"database error: {type(exc).__name__}: {first_line}"), exc)
        _hand_back_chunks(heartbeat, lease)
    except (CapstoneError, RuntimeError, ValueError, OSError) as exc:
        reason = str(exc) if isinstance(exc, CapstoneError) else f"{type(exc).__name__}: {exc}"
        _fail(lease, result, public(reason), exc)
        _hand_back_chunks(heartbeat, lease)
    except BaseException as exc:  # KeyboardInterrupt, SystemExit: retryable, then re-raise
        _give_back(heartbeat, lease, f"interrupted: {type(exc).__name__}")
        raise


def _fail(
    lease: analyses.Lease | None, result: AnalysisResult, reason: str, exc: BaseException
) -> None:
    """`result` and the analysis row (fenced by `lease`) failed with `reason`, saying
    whether a retry can help (`policy_of(exc)`)."""
    retryable = policy_of(exc).retryable
    result.status, result.error, result.retryable = "failed", reason, retryable
    if lease is None:
        log.error("chunk worker failed: %s", reason)
        return
    try:
        analyses.mark_failed(lease, reason, retryable=retryable)
    except SQLAlchemyError:
        log.error("analysis %s: cannot record failure: %s", lease.analysis_id, reason)


def _hand_back_chunks(heartbeat: Heartbeat, lease: analyses.Lease | None) -> None:
    """A chunk-only run that failed gives its chunks back at once, so that the publisher
    (the stitch job) takes them up and reports the failure now, not after the lease ends."""
    if lease is not None:
        return
    try:
        for chunk_lease in heartbeat.held():
            staging.release_chunk(chunk_lease)
    except SQLAlchemyError as exc:  # the database is away: the leases expire by themselves
        log.warning("chunks not handed back: %s", type(exc).__name__)


def _give_back(heartbeat: Heartbeat, lease: analyses.Lease | None, reason: str) -> None:
    for chunk_lease in heartbeat.held():
        staging.release_chunk(chunk_lease)
    if lease is not None:
        analyses.release(lease, reason)


def _settings_detector(params: AnalysisParams, detector: Detector | None) -> Detector:
    shared = detector or get_detector(params.model)
    # Settings travel with this analysis; the cached detector is shared and never changed.
    return shared.using(
        conf=params.conf,
        imgsz=params.imgsz,
        classes=shared.class_ids(params.classes) if params.classes else None,
    )


def _run(
    info: VideoInfo,
    params: AnalysisParams,
    lease: analyses.Lease | None,
    owner: str,
    result: AnalysisResult,
    run: _Run,
    heartbeat: Heartbeat,
) -> None:
    t0 = time.perf_counter()
    analysis_id = result.analysis_id
    if run.reuse and run.publish and run.chunks is None and lease is not None:
        source = reuse.find_source(result.video_id, params, analysis_id)
        if source is not None:
            run.release_input()
            _publish_reused(info, params, lease, result, run, source)
            return
    detector = _settings_detector(params, run.detector)
    spans = plan(info, params)
    if run.chunks is not None:
        bad = [i for i in run.chunks if not 0 <= i < len(spans)]
        if bad:
            raise ValueError(f"chunk(s) {bad} out of range: this video has {len(spans)} chunks")
    records = staging.chunk_records(analysis_id, spans[0].step)
    if records and [r.span.start for r in records] != [s.start for s in spans]:
        staging.discard(analysis_id)  # staged under another plan (another frame count)
        records = []
    staging.ensure_chunks(analysis_id, spans)
    result.chunks_total = len(spans)
    job = ChunkJob(
        analysis_id=analysis_id,
        video_id=result.video_id,
        info=info,
        params=params,
        spans=spans,
        detector=detector,
        owner=owner,
        heartbeat=heartbeat,
        progress=run.progress,
    )
    job.frames_before = sum(r.frames_processed for r in records if r.status == "done")
    timings: Counter[str] = Counter({"setup": time.perf_counter() - t0})
    if lease is not None:
        analyses.report_progress(
            lease, stage="analyze", progress=0.0, frames_processed=job.frames_before, fps=None
        )
    helpers = _start_workers(run.workers - 1, info, params, result, spans, owner, heartbeat.seconds)
    try:
        job.work(only=run.chunks)
        if run.publish:
            _wait_for_chunks(job, run)
    finally:
        _join_workers(helpers, run.cancel)
    timings.update(job.timings)
    result.frames_run = job.frames
    result.chunks_run = sum(1 for r in staging.chunk_records(analysis_id) if r.status == "done")
    if not run.publish:
        result.status = "staged"
        result.frames_processed = job.frames
        result.timings = {k: round(v, 3) for k, v in timings.items()}
        return
    run.release_input()
    heartbeat.check()
    records = staging.chunk_records(analysis_id, job.step)
    frames = sum(r.frames_processed for r in records)
    expected = job.expected
    if frames == 0:
        raise InputError(f"{info.path}: no frames could be decoded")
    if frames < expected and not params.max_frames:
        result.warnings.append(
            f"decoded {frames} of {expected} sampled frames the header announces "
            "(truncated or corrupt file); stored what decoded"
        )
    fps = job.frames / job.loop_time if job.loop_time > 0 and job.frames else 0.0
    assert lease is not None
    analyses.report_progress(
        lease, stage="publish", progress=95.0, frames_processed=frames, fps=round(fps, 2)
    )
    heartbeat.check()
    from capstone.runtime.publish import publish_analysis

    published = publish_analysis(
        lease,
        video_id=result.video_id,
        info=info,
        params=params,
        step=job.step,
        summary={
            "frames_expected": expected,
            # the time the analysis covers (`max_frames`, a truncated file: less than the
            # video): windows counted from the end and averages over time are read on it
            "analysed_s": round(min(frames, expected) * job.step / info.fps, 3)
            if info.fps
            else None,
            "fps": round(fps, 2),
            "warnings": result.warnings,
            "stages": list(params.stages),
        },
        fail_after=run.fail_store_after,
    )
    timings.update(published.timings)
    timings["store"] = published.timings.get("publish", 0.0)
    result.status = "completed"
    result.frames_processed, result.frames_expected, result.fps = frames, expected, fps
    result.counts, result.tracks_per_class = published.counts, published.tracks_per_class
    result.events_per_type = published.events_per_type
    result.timings = {k: round(v, 3) for k, v in timings.items()}


def _publish_reused(
    info: VideoInfo,
    params: AnalysisParams,
    lease: analyses.Lease,
    result: AnalysisResult,
    run: _Run,
    source: int,
) -> None:
    """Publish from the stored rows of analysis `source` (`capstone.runtime.reuse`)."""
    analyses.report_progress(lease, stage="reuse", progress=50.0, frames_processed=0, fps=None)
    published = reuse.publish_reused(
        lease,
        video_id=result.video_id,
        info=info,
        params=params,
        source_id=source,
        step=sampling_step(info, params),
        summary={"warnings": result.warnings, "stages": list(params.stages)},
        fail_after=run.fail_store_after,
    )
    result.status = "completed"
    result.reused_from, result.recomputed = source, reuse.recomputed(params)
    result.frames_processed = result.frames_expected = published.frames
    result.counts, result.tracks_per_class = published.counts, published.tracks_per_class
    result.events_per_type = published.events_per_type
    result.timings = {k: round(v, 3) for k, v in published.timings.items()}
    result.timings["store"] = result.timings.get("publish", 0.0)


def _wait_for_chunks(job: ChunkJob, run: _Run) -> None:
    """Until every chunk is done: run what can be claimed (a dead worker's chunk), else
    wait for the workers that hold the rest, reporting their progress."""
    while True:
        records = staging.chunk_records(job.analysis_id, job.step)
        if all(r.status == "done" for r in records):
            return
        if any(r.status == "pending" for r in records):
            job.work()
            continue
        job.heartbeat.check()
        if run.progress:
            run.progress(sum(r.frames_processed for r in records), job.expected)
        time.sleep(WAIT_POLL_S)


# -- worker processes --------------------------------------------------------------------


def _worker_main(
    path: str,
    video_id: str,
    params_json: str,
    analysis_id: int,
    owner: str,
    prefer: int,
    lease_seconds: int,
) -> None:
    """A chunk worker process (`analyze(workers=N)`): claims and runs chunks, from `prefer`
    on, until none is left; the parent publishes."""
    logging.basicConfig(level=logging.WARNING)
    params = AnalysisParams.model_validate_json(params_json)
    info = probe(path)
    spans = plan(info, params)
    with Heartbeat(None, None, lease_seconds) as heartbeat:
        job = ChunkJob(
            analysis_id=analysis_id,
            video_id=video_id,
            info=info,
            params=params,
            spans=spans,
            detector=_settings_detector(params, None),
            owner=owner,
            heartbeat=heartbeat,
        )
        job.work(prefer=prefer)


def _start_workers(
    n: int,
    info: VideoInfo,
    params: AnalysisParams,
    result: AnalysisResult,
    spans: Sequence[ChunkSpan],
    owner: str,
    heartbeat_seconds: int,
) -> list[multiprocessing.process.BaseProcess]:
    """`n` chunk worker processes, each starting in its own share of the chunks."""
    if n <= 0 or len(spans) < 2:
        return []
    context = multiprocessing.get_context("spawn")
    total = n + 1
    processes = []
    for k in range(1, total):
        process = context.Process(
            target=_worker_main,
            args=(
                str(info.path),
                result.video_id,
                params.model_dump_json(),
                result.analysis_id,
                f"{owner}/worker-{k}",
                k * len(spans) // total,
                heartbeat_seconds,
            ),
            name=f"capstone-chunks-{k}",
            daemon=True,
        )
        process.start()
        processes.append(process)
    return processes


def _join_workers(
    processes: list[multiprocessing.process.BaseProcess], cancel: threading.Event | None
) -> None:
    for process in processes:
        if cancel is not None and cancel.is_set():
            process.terminate()
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
