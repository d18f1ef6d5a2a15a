"""Data access for the dashboard: thin wrappers over `capstone.store.queries` and
`capstone.search.query`.

Pages never build SQL; they call these functions, which return plain Python data (and
pandas frames where a table is shown). Writes (upload, analyze, retry) go through
`capstone.io.s3` / `capstone.runtime.pipeline`, the same entry points the CLI and the API use.

>>> from dashboards import data
>>> data.video_rows()  # doctest: +SKIP
[{'video_id': 'bikes', 'status': 'completed', 'progress': 100, ...}]
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from capstone.config import get_settings
from capstone.core.drawing import draw_heat
from capstone.errors import CapstoneError, InputError
from capstone.store import queries

# Stages run by uploads and retries started from the dashboard (everything it can show).
DASHBOARD_STAGES = ("detect", "track", "depth", "events", "display", "embed")


class DashboardError(CapstoneError):
    """Something the dashboard cannot do as asked (shown as one line)."""

    http_status = 422
    retryable = False
    code = "invalid_request"


# --------------------------------------------------------------------------- videos


def video_rows(limit: int = 200) -> list[dict[str, Any]]:
    """Videos, newest first, each with its latest analysis' status, progress, stage and error."""
    rows = []
    for video in queries.list_videos(limit=limit)["items"]:
        detail = queries.get_video(video["video_id"]) or video
        latest = detail.get("latest_analysis") or {}
        rows.append(
            {
                **video,
                "analysis_id": latest.get("id"),
                "analysis_status": latest.get("status"),
                "progress": latest.get("progress"),
                "stage": latest.get("stage"),
                "error": latest.get("error"),
                "frames_processed": latest.get("frames_processed"),
                "chunks_done": latest.get("chunks_done", 0),
                "chunks_total": latest.get("chunks_total", 0),
                "analysis_fps": latest.get("fps"),
                "params": latest.get("params"),
            }
        )
    return rows


def video_ids() -> list[str]:
    """Ids of all videos (for pickers)."""
    return [v["video_id"] for v in queries.list_videos(limit=queries.MAX_PAGE)["items"]]


def get_video(video_id: str) -> dict[str, Any] | None:
    """The video and its latest analysis (with its chunk progress)."""
    return queries.get_video(video_id)


def recent_analyses(limit: int = 50) -> list[dict[str, Any]]:
    """The most recent analyses of all videos, newest first."""
    found: list[dict[str, Any]] = []
    for video_id in video_ids():
        found.extend(queries.list_analyses(video_id))
    found.sort(key=lambda a: (a["created_at"], a["id"]), reverse=True)
    return found[:limit]


def status_counts() -> dict[str, int]:
    return queries.analysis_status_counts()


# --------------------------------------------------------------------------- events and tracks


def events_page(
    video_id: str,
    *,
    event_type: str | None = None,
    class_name: str | None = None,
    track_id: int | None = None,
    t_from: float | None = None,
    t_to: float | None = None,
    page_size: int = 100,
    page: int = 0,
) -> tuple[pd.DataFrame, int]:
    """One page of events as a table, and the total number matching the filters."""
    result = queries.list_events(
        video_id,
        event_type=event_type,
        class_name=class_name,
        track_id=track_id,
        t_from=t_from,
        t_to=t_to,
        limit=page_size,
        offset=page * page_size,
    )
    frame = pd.DataFrame(result["items"])
    if not frame.empty:
        frame.insert(0, "video_id", video_id)
        frame["bbox"] = frame["bbox"].map(lambda b: [round(float(v), 1) for v in b] if b else None)
        frame["attributes"] = frame["attributes"].map(lambda a: "" if not a else str(a))
    return frame, int(result["total"])


def event_facets(video_id: str) -> dict[str, list[Any]]:
    """Distinct event types, classes and track ids of a video (for filter pickers)."""
    types: set[str] = set()
    classes: set[str] = set()
    tracks: set[int] = set()
    offset = 0
    while True:
        page = queries.list_events(video_id, limit=queries.MAX_PAGE, offset=offset)
        for e in page["items"]:
            types.add(e["event_type"])
            if e["class_name"]:
                classes.add(e["class_name"])
            if e["track_id"] is not None:
                tracks.add(int(e["track_id"]))
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
    return {"event_types": sorted(types), "classes": sorted(classes), "tracks": sorted(tracks)}


def semantic_events(video_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Events other than per-frame detections (enter, exit, line_cross, dwell, ...)."""
    out: list[dict[str, Any]] = []
    for etype in event_facets(video_id)["event_types"]:
        if etype == "detection":
            continue
        out.extend(queries.list_events(video_id, event_type=etype, limit=limit)["items"])
    out.sort(key=lambda e: (e["timestamp"] or 0.0, e["id"]))
    return out


def tracks_table(video_id: str) -> pd.DataFrame:
    """Tracks of a video with their duration in seconds."""
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = queries.list_tracks(video_id, limit=queries.MAX_PAGE, offset=offset)
        items.extend(page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
    frame = pd.DataFrame(items)
    if not frame.empty:
        frame["duration_s"] = (frame["last_timestamp"] - frame["first_timestamp"]).round(2)
    return frame


def track_crop(video_id: str, analysis_id: int, track_id: int) -> bytes | None:
    """The JPEG best crop of a track (stored by the embed stage), else None."""
    return queries.track_crop(video_id, analysis_id, track_id)


def thumbnails(video_id: str) -> list[dict[str, Any]]:
    return queries.list_thumbnails(video_id)


def thumbnail(video_id: str, frame_number: int, analysis_id: int | None = None) -> bytes | None:
    return queries.get_thumbnail(video_id, frame_number, analysis_id=analysis_id)


def display(video_id: str, kind: str) -> dict[str, Any] | None:
    """The `data` of one display row (`trails`, `heatmap`, `counts`), or None."""
    rows = queries.get_display_data(video_id, kind)
    return rows[0]["data"] if rows else None


def counts_frame(video_id: str) -> pd.DataFrame:
    """Mean objects per frame per class over time (index: seconds)."""
    counts = display(video_id, "counts")
    if not counts or not counts.get("classes"):
        return pd.DataFrame()
    return pd.DataFrame(counts["mean"], index=pd.Index(counts["t"], name="t (s)"))


def depth_frame(video_id: str, limit: int = 5000) -> pd.DataFrame:
    """Average depth of each tracked object over time (index: frame, one column per track)."""
    items: list[dict[str, Any]] = []
    offset = 0
    while len(items) < limit:
        page = queries.get_depth(video_id, limit=queries.MAX_PAGE, offset=offset)
        items.extend(page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
    rows = [d for d in items if d["track_id"] is not None and d["avg_depth"] is not None]
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    frame["track"] = frame["class_name"].fillna("?") + " #" + frame["track_id"].astype(str)
    return frame.pivot_table(index="frame_number", columns="track", values="avg_depth")


def overlay(video_id: str) -> tuple[bytes, int] | None:
    """The first keyframe with the occupancy heatmap and all track trails drawn over it.

    Returns (PNG bytes, number of trails drawn), or None when the video has no keyframes.
    """
    import cv2

    thumbs = thumbnails(video_id)
    if not thumbs:
        return None
    jpeg = thumbnail(video_id, thumbs[0]["frame_number"])
    if jpeg is None:
        return None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    h, w = image.shape[:2]
    heat = display(video_id, "heatmap")
    if heat and heat.get("max"):
        image = draw_heat(image, heat["counts"])
    trails = display(video_id, "trails") or {}
    drawn = 0
    if trails.get("tracks"):
        sx, sy = w / float(trails["width"]), h / float(trails["height"])
        from capstone.core.drawing import color_of

        for track in trails["tracks"]:
            pts = np.array([[p[0] * sx, p[1] * sy] for p in track["points"]], np.int32)
            if len(pts) >= 2:
                cv2.polylines(image, [pts], False, color_of(track["track_id"]), 2, cv2.LINE_AA)
                drawn += 1
    ok, buf = cv2.imencode(".png", image)
    return (buf.tobytes(), drawn) if ok else None


# --------------------------------------------------------------------------- search


def search(
    *,
    text: str | None = None,
    image: bytes | None = None,
    frame: tuple[str, int] | None = None,
    track: tuple[str, int] | None = None,
    target: str = "frames",
    mode: str | None = None,
    k: int = 12,
    video_ids: list[str] | None = None,
    class_names: list[str] | None = None,
    event_types: list[str] | None = None,
    t_from: float | None = None,
    t_to: float | None = None,
) -> list[dict[str, Any]]:
    """Run a `capstone.search.query` query; hits as dicts (with their `thumbnail` reference)."""
    from capstone.search.query import SearchQuery
    from capstone.search.query import search as run_search

    filters: dict[str, Any] = {
        "video_ids": video_ids or None,
        "class_names": class_names or None,
        "event_types": event_types or None,
        "t_from": t_from,
        "t_to": t_to,
    }
    fields: dict[str, Any] = {
        "text": text or None,
        "image": image,
        "target": target,
        "mode": mode,
        "k": k,
        "filters": {key: v for key, v in filters.items() if v is not None},
    }
    if frame is not None:
        fields["frame"] = {"video_id": frame[0], "frame_number": int(frame[1])}
    if track is not None:
        fields["track"] = {"video_id": track[0], "track_id": int(track[1])}
    query = SearchQuery.parse(**fields)
    return [h.model_dump() for h in run_search(query)]


def ask(question: str, video_id: str | None = None) -> dict[str, Any]:
    """Answer a question (`capstone.search.ask.ask`, as the CLI and `GET /ask` do)."""
    from capstone.search.ask import ask as answer_question

    return answer_question(question, video_id=video_id).model_dump(mode="json")


def answer_heatmap(heatmap: dict[str, Any]) -> bytes | None:
    """A where-answer's heatmap (`capstone.search.heat.Heatmap` as JSON) drawn over the
    video's first keyframe, or over a dark frame of the video's size without keyframes."""
    import cv2

    image = None
    thumbs = thumbnails(heatmap["video_id"])
    if thumbs:
        jpeg = thumbnail(heatmap["video_id"], thumbs[0]["frame_number"])
        if jpeg is not None:
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        w, h = heatmap.get("width") or 640, heatmap.get("height") or 360
        scale = min(1.0, 640 / max(w, h))
        image = np.full((max(1, int(h * scale)), max(1, int(w * scale)), 3), 40, np.uint8)
    ok, buf = cv2.imencode(".png", draw_heat(image, heatmap["counts"]))
    return buf.tobytes() if ok else None


def answer_image(item: dict[str, Any]) -> bytes | None:
    """The picture of an answer's item: a track's best crop, else the nearest keyframe."""
    attrs = item.get("attributes") or {}
    if item.get("source") == "tracks" and item.get("track_id") is not None:
        analysis = attrs.get("analysis_id")
        if analysis is not None:
            crop = track_crop(item["video_id"], int(analysis), int(item["track_id"]))
            if crop is not None:
                return crop
    frame = attrs.get("frame_number") if item.get("source") == "hybrid_search" else None
    if frame is None:
        frame = attrs.get("best_frame")
    if frame is None:
        return None
    near = [t["frame_number"] for t in thumbnails(item["video_id"])]
    if not near:
        return None
    return thumbnail(item["video_id"], min(near, key=lambda f: abs(f - int(frame))))


def hit_image(hit: dict[str, Any]) -> bytes | None:
    """The picture of a search hit: its keyframe thumbnail or its track's best crop."""
    ref = hit.get("thumbnail")
    if not ref:
        return None
    if ref["kind"] == "track_crop" and ref.get("track_id") is not None:
        crop = track_crop(ref["video_id"], ref["analysis_id"], ref["track_id"])
        if crop is not None:
            return crop
        if ref.get("frame_number") is None:
            return None
        near = [t["frame_number"] for t in thumbnails(ref["video_id"])]
        if not near:
            return None
        frame = min(near, key=lambda f: abs(f - ref["frame_number"]))
        return thumbnail(ref["video_id"], frame, ref["analysis_id"])
    if ref.get("frame_number") is None:
        return None
    return thumbnail(ref["video_id"], ref["frame_number"], ref["analysis_id"])


# --------------------------------------------------------------------------- exports


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def to_parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object:
            out[name] = out[name].map(lambda v: None if v is None else str(v))
    out.to_parquet(buf, index=False)
    return buf.getvalue()


# --------------------------------------------------------------------------- queue


def queue_depths() -> dict[str, Any] | None:
    """Messages waiting / in flight on the main queue and its dead-letter queue.

    None when no queue is configured (`SQS_QUEUE_URL`); the DLQ comes from `SQS_DLQ_URL`,
    else from the main queue's redrive policy.
    """
    import json

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    settings = get_settings()
    if not settings.sqs_queue_url:
        return None
    sqs = boto3.client(
        "sqs", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    try:
        main = sqs.get_queue_attributes(
            QueueUrl=settings.sqs_queue_url, AttributeNames=[*names, "RedrivePolicy"]
        )["Attributes"]
        dlq_url = settings.sqs_dlq_url
        if dlq_url is None and "RedrivePolicy" in main:
            arn = json.loads(main["RedrivePolicy"])["deadLetterTargetArn"]
            dlq_url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        dead = (
            sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=names)["Attributes"]
            if dlq_url
            else None
        )
    except (BotoCoreError, ClientError) as exc:
        raise DashboardError(f"queue not reachable ({settings.sqs_queue_url}): {exc}") from exc
    return {
        "queue_url": settings.sqs_queue_url,
        "waiting": int(main["ApproximateNumberOfMessages"]),
        "in_flight": int(main["ApproximateNumberOfMessagesNotVisible"]),
        "dlq_url": dlq_url,
        "dead_letters": int(dead["ApproximateNumberOfMessages"]) if dead else None,
    }


# --------------------------------------------------------------------------- writes


class WriteRefused(DashboardError):
    """A write without the rights to it (no or a wrong token, or writes off)."""

    http_status = 403
    code = "forbidden"


def write_refusal(token: str | None) -> str | None:
    """Why this dashboard user may not change data (upload, retry), or None when they may.

    Writes are off unless `DASHBOARD_ALLOW_WRITES=1`; when on, they need an API token that
    matches `API_KEY_HASHES` (the API's own check, `service.auth.token_matches`), unless
    `CAPSTONE_AUTH_DISABLED=1`. The dashboard never acts with the service's rights for
    someone who merely reaches the page.
    """
    from service.auth import configured_hashes, token_matches

    settings = get_settings()
    if not settings.dashboard_allow_writes:
        return (
            "Uploads and retries are off in this dashboard "
            "(set DASHBOARD_ALLOW_WRITES=1 to allow them, with an API token)."
        )
    if settings.capstone_auth_disabled:
        return None
    hashes = configured_hashes(settings)
    if not hashes:
        return "No API keys are configured (API_KEY_HASHES): uploads and retries are refused."
    if not token:
        return "Enter an API token in the sidebar to upload or retry."
    if not token_matches(token, hashes):
        return "The API token is not valid: uploads and retries are refused."
    return None


def require_write(token: str | None) -> None:
    """Raise `WriteRefused` unless `write_refusal(token)` allows the write."""
    reason = write_refusal(token)
    if reason is not None:
        raise WriteRefused(reason)


# --------------------------------------------------------------------------- upload and analyze


@dataclass
class LocalJob:
    """An analysis the dashboard runs in its bounded pool (`AnalysisPool`)."""

    video_id: str
    source: str
    started: float = field(default_factory=time.time)
    status: str = "queued"  # queued -> running -> completed / failed / ...
    error: str | None = None
    worker: str | None = None  # the pool thread that ran it
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the analysis has finished; False on timeout."""
        return self.done.wait(timeout)


class AnalysisPool:
    """The analyses of this dashboard process: at most `workers` run at once (threads of one
    `ThreadPoolExecutor`), at most `max_queued` more wait; beyond that a new one is refused
    with a message (`DASHBOARD_MAX_ANALYSES`, `DASHBOARD_MAX_QUEUED`)."""

    def __init__(self, workers: int, max_queued: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.workers, self.max_queued = workers, max_queued
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="dashboard-analysis")
        self.lock = threading.Lock()
        self.running = 0
        self.queued = 0
        self.peak_running = 0
        self.threads: set[str] = set()  # names of the threads that ran analyses

    def state(self) -> dict[str, int]:
        with self.lock:
            return {
                "workers": self.workers,
                "max_queued": self.max_queued,
                "running": self.running,
                "queued": self.queued,
                "peak_running": self.peak_running,
                "threads": len(self.threads),
            }

    def submit(self, job: LocalJob, work: Any) -> None:
        """Queue `work()` for `job`, or raise `DashboardError` when the pool is full."""
        with self.lock:
            if self.running + self.queued >= self.workers + self.max_queued:
                raise DashboardError(
                    f"the dashboard already runs {self.running} analyses and {self.queued} "
                    f"wait (DASHBOARD_MAX_ANALYSES={self.workers}, "
                    f"DASHBOARD_MAX_QUEUED={self.max_queued}): try again later"
                )
            self.queued += 1

        def run() -> None:
            name = threading.current_thread().name
            with self.lock:
                self.queued -= 1
                self.running += 1
                self.peak_running = max(self.peak_running, self.running)
                self.threads.add(name)
            job.status, job.worker = "running", name
            try:
                work()
            finally:
                with self.lock:
                    self.running -= 1
                job.done.set()

        self.executor.submit(run)


_jobs: dict[str, LocalJob] = {}
_jobs_lock = threading.Lock()
_pool: AnalysisPool | None = None
_KEEP_FINISHED = 50  # finished jobs remembered for the Videos page


def analysis_pool() -> AnalysisPool:
    """The process-wide pool, sized by the current settings (a settings change, as in tests,
    makes a new pool; the old one finishes what it has)."""
    global _pool
    settings = get_settings()
    size = (settings.dashboard_max_analyses, settings.dashboard_max_queued)
    with _jobs_lock:
        if _pool is None or (_pool.workers, _pool.max_queued) != size:
            if _pool is not None:
                _pool.executor.shutdown(wait=False)
            _pool = AnalysisPool(*size)
        return _pool


def upload_target() -> str:
    """Where an upload goes: 'queue' (raw bucket -> event-driven pipeline) or 'local'."""
    return "queue" if get_settings().sqs_queue_url else "local"


def save_upload(name: str, content: bytes) -> Path:
    """Keep an uploaded file under `$CAPSTONE_HOME/uploads/` and return its path."""
    if not content:
        raise InputError(f"{name}: the uploaded file is empty")
    safe = Path(name.replace("\\", "/")).name or "video"
    folder = get_settings().home / "uploads" / f"{time.time_ns()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    path.write_bytes(content)
    return path


def submit_upload(
    name: str, content: bytes, video_id: str | None = None, *, token: str | None = None
) -> tuple[str, str]:
    """Upload a video: to the raw bucket when a queue is configured, else analyze it here.

    Needs write rights (`require_write(token)`). Returns (video_id, where): an `s3://` URI,
    or the name of the local file being analyzed.
    """
    from capstone.core.ids import default_video_id
    from capstone.io.s3 import upload_video, validate_video_id

    require_write(token)
    video_id = validate_video_id(video_id or default_video_id(name))
    path = save_upload(name, content)
    if upload_target() == "queue":
        bucket = get_settings().s3_bucket_raw
        key = upload_video(path, bucket, video_id, filename=path.name)
        path.unlink(missing_ok=True)
        return video_id, f"s3://{bucket}/{key}"
    try:
        start_local_analysis(str(path), video_id)
    except CapstoneError:
        path.unlink(missing_ok=True)
        raise
    return video_id, path.name


def start_local_analysis(
    source: str, video_id: str, params: dict[str, Any] | None = None
) -> LocalJob:
    """Analyze `source` as `video_id` in the dashboard's bounded pool (one job per video at a
    time; `DashboardError` when the pool is full)."""
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    chosen = dict(params or {})
    chosen.setdefault("stages", DASHBOARD_STAGES)
    analysis_params = AnalysisParams(**chosen)
    pool = analysis_pool()
    with _jobs_lock:
        running = _jobs.get(video_id)
        if running is not None and not running.done.is_set():
            raise DashboardError(f"an analysis of {video_id!r} is already running here")
        job = _jobs[video_id] = LocalJob(video_id=video_id, source=source)

    def work() -> None:
        try:
            result = analyze(source, video_id=video_id, params=analysis_params)
            job.status, job.error = result.status, result.error
        except Exception as exc:  # shown on the Videos page, never raised into a rerun
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"

    try:
        pool.submit(job, work)
    except CapstoneError:
        with _jobs_lock:
            if _jobs.get(video_id) is job:
                del _jobs[video_id]
        raise
    with _jobs_lock:
        finished = [k for k, j in _jobs.items() if j.done.is_set()]
        for key in finished[: max(0, len(_jobs) - _KEEP_FINISHED)]:
            del _jobs[key]
    return job


def retry(video_id: str, *, token: str | None = None) -> LocalJob:
    """Run a failed video's latest analysis again, with the same parameters and source.

    Needs write rights (`require_write(token)`)."""
    require_write(token)
    video = queries.get_video(video_id)
    if video is None:
        raise DashboardError(f"no video {video_id!r}")
    latest = video.get("latest_analysis") or {}
    source = video.get("source_uri")
    if not source:
        raise DashboardError(f"video {video_id!r} has no source to analyze again")
    return start_local_analysis(source, video_id, latest.get("params") or None)


def local_jobs() -> list[LocalJob]:
    with _jobs_lock:
        return list(_jobs.values())


# --------------------------------------------------------------------------- player


def player_media(source: str | None) -> tuple[str | bytes | None, str | None]:
    """What the player plays for a video's `source_uri`: (media, None), or (None, why not).

    Media is the video's bytes, read here (up to `DASHBOARD_MAX_VIDEO_BYTES`) and served by
    the dashboard itself; a presigned S3 URL (valid 1 h) only with
    `DASHBOARD_PRESIGNED_URLS=1`. The reason never names a server path.
    """
    settings = get_settings()
    cap = settings.dashboard_max_video_bytes
    if not source:
        return None, "The video file is not available here (no source)."
    if source.startswith("s3://"):
        from botocore.exceptions import BotoCoreError, ClientError

        from capstone.io.s3 import parse_s3_uri, s3_client

        bucket, key = parse_s3_uri(source)
        client = s3_client()
        if settings.dashboard_presigned_urls:
            url = client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600
            )
            return url, None
        try:
            size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
            if size > cap:
                return None, _too_large(size, cap)
            return _s3_bytes(source, size), None
        except (BotoCoreError, ClientError):
            return None, "The video file is not available here (the bucket cannot be read)."
    path = Path(source)
    if not path.is_file():
        return None, "The video file is not available here."
    size = path.stat().st_size
    if size > cap:
        return None, _too_large(size, cap)
    return str(path), None


def _too_large(size: int, cap: int) -> str:
    return (
        f"The video ({size / 1024**2:.1f} MiB) is larger than the player's limit "
        f"(DASHBOARD_MAX_VIDEO_BYTES={cap}): not played here."
    )


_media_cache: dict[tuple[str, int], bytes] = {}


def _s3_bytes(source: str, size: int) -> bytes:
    """The bytes of an S3 video (the last two read are kept: reruns replay them)."""
    from capstone.io.s3 import parse_s3_uri, s3_client

    with _jobs_lock:
        cached = _media_cache.get((source, size))
    if cached is not None:
        return cached
    bucket, key = parse_s3_uri(source)
    body = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read(size + 1)[:size]
    with _jobs_lock:
        _media_cache[(source, size)] = body
        while len(_media_cache) > 2:
            del _media_cache[next(iter(_media_cache))]
    return body
