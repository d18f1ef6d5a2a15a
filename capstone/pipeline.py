"""The pipeline: probe -> decode -> detect -> track -> stages -> store, one pass over the frames.

>>> from capstone.pipeline import analyze
>>> result = analyze("../shared/data/videos/bikes.mp4", video_id="bikes")  # doctest: +SKIP
>>> result.status, result.counts["apps_db_event"]  # doctest: +SKIP
('completed', 1234)
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from capstone import analyses
from capstone.config import get_settings
from capstone.db.engine import session_scope
from capstone.db.migrate import ensure_schema
from capstone.detect import Detector, get_detector
from capstone.detections import Detections
from capstone.errors import CapstoneError, InputError, ModelNotFoundError
from capstone.media import Frame, iter_frames, probe
from capstone.models import USER_CACHE
from capstone.params import OPTIONAL_STAGES, AnalysisParams
from capstone.stage import Rows, RunContext, Stage, TrackSummary
from capstone.storage import discard_download, fetch
from capstone.store import replace_results
from capstone.track import Tracker

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
PROGRESS_INTERVAL_S = 1.0


@dataclass
class AnalysisResult:
    video_id: str
    analysis_id: int
    status: str
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


def default_video_id(source: str | Path) -> str:
    """A stable id from the file name: `clips/My Video.mp4` -> `my-video`."""
    stem = Path(str(source).rstrip("/")).stem.lower()
    return re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-") or "video"


def build_stages(ctx: RunContext) -> list[Stage]:
    """The enabled optional stages, in the order of `AnalysisParams.stages`."""
    from capstone.enrich import STAGES

    missing = [n for n in ctx.params.stages if n in OPTIONAL_STAGES and n not in STAGES]
    if missing:
        raise ValueError(f"stage(s) not available: {', '.join(missing)}")
    return [STAGES[name](ctx) for name in ctx.params.stages if name in STAGES]


class _Tracks:
    """Per-frame detection rows and running track summaries (the detect/track output)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.events: list[dict[str, Any]] = []

    def add(self, frame: Frame, dets: Detections) -> None:
        tracked = dets.tracker_id is not None
        width, height = self.ctx.info.width, self.ctx.info.height
        clipped = dets.xyxy.clip(0, [width, height, width, height])
        for i in range(len(dets)):
            box = [round(float(v), 2) for v in clipped[i]]
            cls = int(dets.class_id[i])
            name = dets.class_names.get(cls, str(cls))
            conf = float(dets.confidence[i])
            tid = int(dets.tracker_id[i]) if tracked else None  # type: ignore[index]
            self.events.append(
                {
                    "frame_number": frame.index,
                    "timestamp": round(frame.timestamp, 4),
                    "event_type": "detection",
                    "class_name": name,
                    "confidence": round(conf, 4),
                    "bbox": box,
                    "track_id": tid,
                }
            )
            if tid is None:
                continue
            summary = self.ctx.tracks.get(tid)
            if summary is None:
                summary = self.ctx.tracks[tid] = TrackSummary(
                    tid, cls, name, frame.index, frame.index, frame.timestamp, frame.timestamp
                )
            summary.last_frame, summary.last_timestamp = frame.index, frame.timestamp
            summary.length += 1
            summary.confidence_sum += conf
            summary.observations.append((frame.index, frame.timestamp, tuple(box)))  # type: ignore[arg-type]
            area = (box[2] - box[0]) * (box[3] - box[1])
            score = conf * (area**0.5)
            if score > summary.best_score:
                summary.best_score, summary.best_frame, summary.best_bbox = score, frame.index, box

    def rows(self) -> Rows:
        tracks = [
            {
                "track_id": t.track_id,
                "identity_id": t.extra.get("identity_id"),
                "class_name": t.class_name,
                "first_frame": t.first_frame,
                "last_frame": t.last_frame,
                "first_timestamp": round(t.first_timestamp, 4),
                "last_timestamp": round(t.last_timestamp, 4),
                "length": t.length,
                "mean_confidence": round(t.mean_confidence, 4),
                "best_frame": t.best_frame,
                "best_bbox": t.best_bbox,
                **{k: t.extra[k] for k in _TRACK_EXTRA_COLUMNS if k in t.extra},
            }
            for t in self.ctx.tracks.values()
        ]
        return {"apps_db_event": self.events, "apps_db_track": tracks}


_TRACK_EXTRA_COLUMNS = (
    "best_crop",
    "avg_depth",
    "min_depth",
    "max_depth",
    "embedding",
    "reid_embedding",
)


def _merge(into: Rows, more: Rows) -> None:
    for table, rows in more.items():
        into.setdefault(table, []).extend(rows)


def _import_stage_modules() -> None:
    """Import the tracker and stage modules (about a second when cold) while the main
    thread probes and hashes the video and claims the analysis."""
    import ultralytics.trackers.bot_sort
    import ultralytics.trackers.byte_tracker  # noqa: F401

    import capstone.enrich  # noqa: F401


class AnalysisCancelled(CapstoneError):
    """The caller asked the analysis to stop (e.g. the service shuts down)."""


class _LeaseKeeper:
    """Extends the lease every quarter of its length for the whole analysis (frame loop,
    end-of-pass stages and store), and notes when the row has moved on."""

    def __init__(self, lease: analyses.Lease, cancel: threading.Event | None) -> None:
        self.lease = lease
        self.cancel = cancel
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capstone-lease", daemon=True)

    def _run(self) -> None:
        interval = max(0.5, self.lease.seconds / 4)
        while not self._stop.wait(interval):
            try:
                if not analyses.extend_lease(self.lease):
                    self.lost.set()
                    return
            except SQLAlchemyError as exc:  # the database is away: try again next beat
                log.warning("lease heartbeat failed: %s", type(exc).__name__)

    def check(self) -> None:
        """Raise if the lease was lost or the caller cancelled."""
        if self.lost.is_set():
            raise analyses.LeaseLostError(
                f"analysis {self.lease.analysis_id} was taken over by another worker"
            )
        if self.cancel is not None and self.cancel.is_set():
            raise AnalysisCancelled("cancelled before it finished")

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


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
    lease_seconds: int = analyses.LEASE_SECONDS,
    owner: str | None = None,
) -> AnalysisResult:
    """Analyze one video end to end and store the result; returns a summary.

    Bad input never raises out of here once the analysis row exists: the row is marked
    `failed` with the reason and the result says so; so are database errors while it runs.
    `AnalysisBusyError` (the same analysis running elsewhere) raises. `owner` names the
    worker (default: a fresh id); a worker that took a queued row passes its own. Setting `cancel`
    stops the analysis at the next frame and gives the row back as `pending` (retryable).
    Error messages name the source as given (an `s3://` URI, a file name), never a server
    path.
    """
    params = params or AnalysisParams()
    video_id = video_id or default_video_id(source)
    started = time.perf_counter()
    threading.Thread(target=_import_stage_modules, name="capstone-imports", daemon=True).start()
    ensure_schema()
    owner = owner or analyses.worker_id()
    text = str(source)
    label = text if text.startswith("s3://") else Path(text).name
    path: Path | None = None
    try:
        try:
            path, source_uri = fetch(source)
            info = probe(path)
        except InputError as exc:
            reason = _public(str(exc), path, label) if path is not None else str(exc)
            analysis_id = analyses.record_rejected_input(
                video_id, params, reason, label, owner=owner
            )
            return AnalysisResult(video_id, analysis_id, "failed", error=reason)
        try:
            lease = analyses.claim_analysis(
                video_id,
                params,
                owner,
                info=info,
                title=title,
                source_uri=source_uri,
                lease_seconds=lease_seconds,
            )
        except analyses.ContentConflictError as exc:
            analysis_id = analyses.record_rejected_input(
                video_id, params, str(exc), label, code="content_conflict", owner=owner
            )
            return AnalysisResult(video_id, analysis_id, "conflict", error=str(exc))
        result = AnalysisResult(video_id, lease.analysis_id, "processing")
        fetched = path
        _run_leased(
            info,
            params,
            lease,
            result,
            (progress, detector, fail_store_after, cancel),
            lambda message: _public(message, fetched, label),
        )
    finally:
        if path is not None and text.startswith("s3://"):
            discard_download(path)
    result.wall_time = time.perf_counter() - started
    return result


def _run_leased(
    info: Any,
    params: AnalysisParams,
    lease: analyses.Lease,
    result: AnalysisResult,
    options: tuple[ProgressCallback | None, Detector | None, str | None, threading.Event | None],
    public: Callable[[str], str],
) -> None:
    """`_run` under a heartbeat; every outcome is written fenced by the lease, and every
    reason passes through `public` (no server paths)."""
    progress, detector, fail_store_after, cancel = options
    try:
        with _LeaseKeeper(lease, cancel) as keeper:
            _run(info, params, lease, result, progress, detector, fail_store_after, keeper)
    except analyses.LeaseLostError as exc:  # the new owner's row: write nothing
        result.status, result.error = "failed", str(exc)
    except AnalysisCancelled as exc:
        analyses.release(lease, f"interrupted: {exc}; it runs again on the next request")
        result.status, result.error = "pending", f"interrupted: {exc}"
    except (SQLAlchemyError, psycopg.Error) as exc:
        first_line = (str(exc).splitlines() or [""])[0][:300]
        reason = public(f"database error: {type(exc).__name__}: {first_line}")
        try:
            analyses.mark_failed(lease, reason)
        except SQLAlchemyError:
            log.error("analysis %s: cannot record failure: %s", lease.analysis_id, reason)
        result.status, result.error = "failed", reason
    except (CapstoneError, RuntimeError, ValueError, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, CapstoneError) else str(exc)
        reason = public(reason)
        permanent = isinstance(exc, InputError | ModelNotFoundError | ValueError)
        analyses.mark_failed(lease, reason, retryable=not permanent)
        result.status, result.error = "failed", reason
    except BaseException as exc:  # KeyboardInterrupt, SystemExit: retryable, then re-raise
        analyses.release(lease, f"interrupted: {type(exc).__name__}")
        raise


def _run(
    info: Any,
    params: AnalysisParams,
    lease: analyses.Lease,
    result: AnalysisResult,
    progress: ProgressCallback | None,
    detector: Detector | None,
    fail_store_after: str | None,
    keeper: _LeaseKeeper,
) -> None:
    t0 = time.perf_counter()
    video_id = result.video_id
    shared = detector or get_detector(params.model)
    # Settings travel with this analysis; the cached detector is shared and never changed.
    detector = shared.using(
        conf=params.conf,
        imgsz=params.imgsz,
        classes=shared.class_ids(params.classes) if params.classes else None,
    )
    step = params.stride if not params.target_fps else max(1, round(info.fps / params.target_fps))
    expected = max(1, -(-info.frame_count // step))
    if params.max_frames:
        expected = min(expected, params.max_frames)
    ctx = RunContext(video_id, info, params, info.fps / step, detector.class_names)
    tracker = Tracker(params.tracker, frame_rate=ctx.sample_fps) if params.runs("track") else None
    stages = build_stages(ctx)
    core = _Tracks(ctx)
    timings: Counter[str] = Counter({"setup": time.perf_counter() - t0})

    frames = 0
    last_report = time.perf_counter()
    loop_start = time.perf_counter()
    # Frames are detected with several in flight (decode runs ahead in its own thread) and
    # come back in order, so tracking and the stages see them one by one, as before.
    detected = detector.stream(iter_frames(info.path, stride=step, max_frames=params.max_frames))
    while True:
        t = time.perf_counter()
        item = next(detected, None)
        timings["detect"] += time.perf_counter() - t  # waiting on decode + detect
        if item is None:
            break
        frame, dets = item
        keeper.check()
        if tracker is not None:
            t = time.perf_counter()
            dets = tracker.update(dets, frame.image)
            timings["track"] += time.perf_counter() - t
        core.add(frame, dets)
        for stage in stages:
            t = time.perf_counter()
            stage.process(frame, dets, ctx)
            timings[stage.name] += time.perf_counter() - t
        frames += 1
        if progress:
            progress(frames, expected)
        now = time.perf_counter()
        if now - last_report >= PROGRESS_INTERVAL_S:
            last_report = now
            if not analyses.report_progress(
                lease,
                stage="analyze",
                progress=90.0 * frames / expected,
                frames_processed=frames,
                fps=frames / (now - loop_start),
            ):
                keeper.lost.set()
    loop_time = time.perf_counter() - loop_start
    if frames == 0:
        raise InputError(f"{info.path}: no frames could be decoded")
    keeper.check()
    if frames < expected and not params.max_frames:
        result.warnings.append(
            f"decoded {frames} of {expected} sampled frames the header announces "
            "(truncated or corrupt file); stored what decoded"
        )

    stage_rows: Rows = {}
    for stage in stages:
        t = time.perf_counter()
        _merge(stage_rows, stage.finish(ctx))
        timings[stage.name] += time.perf_counter() - t
    rows = core.rows()  # after the stages: they may have enriched the track summaries
    _merge(rows, stage_rows)
    for stage in stages:  # stages that work on everything merged (e.g. embed descriptions)
        finalize = getattr(stage, "finalize", None)
        if finalize is not None:
            t = time.perf_counter()
            finalize(rows, ctx)
            timings[stage.name] += time.perf_counter() - t
    fps = frames / loop_time if loop_time > 0 else 0.0
    tracks_per_class = dict(Counter(t.class_name for t in ctx.tracks.values()))
    events_per_type = dict(Counter(e["event_type"] for e in rows.get("apps_db_event", [])))
    timings.update(ctx.timings)

    keeper.check()
    if not analyses.report_progress(
        lease, stage="store", progress=95.0, frames_processed=frames, fps=fps
    ):
        keeper.lost.set()
    keeper.check()
    t = time.perf_counter()
    summary = {
        "frames_processed": frames,
        "frames_expected": expected,
        "fps": round(fps, 2),
        "tracks_per_class": tracks_per_class,
        "events_per_type": events_per_type,
        "warnings": result.warnings,
        "stages": list(params.stages),
    }
    with session_scope() as session:
        analyses.fence(session, lease)  # locks the row: a takeover waits until we commit
        counts = replace_results(
            session,
            video_id=video_id,
            analysis_id=lease.analysis_id,
            rows=rows,
            fail_after=fail_store_after,
        )
        summary["counts"] = counts
        analyses.mark_completed(
            session, lease, frames_processed=frames, fps=round(fps, 2), summary=summary
        )
    timings["store"] = time.perf_counter() - t
    result.status = "completed"
    result.frames_processed, result.frames_expected, result.fps = frames, expected, fps
    result.counts, result.tracks_per_class = counts, tracks_per_class
    result.events_per_type = events_per_type
    result.timings = {k: round(v, 3) for k, v in timings.items()}
