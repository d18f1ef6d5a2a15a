"""Where videos come from: local paths and `s3://bucket/key` (AWS or the moto emulator)."""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from capstone.config import get_settings
from capstone.errors import InputError

_SAFE_KEY = re.compile(r"[\w\-./ +=@,()!']+")  # whole keys only: `fullmatch`


def s3_client() -> Any:
    import boto3

    settings = get_settings()
    return boto3.client(
        "s3", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise InputError(f"{uri}: not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")


def validate_key(key: str) -> str:
    """Reject keys that could escape a directory when used as a path."""
    if not key or key.startswith("/") or ".." in key.split("/") or "\\" in key or "\x00" in key:
        raise InputError(f"invalid object key {key!r}")
    if not _SAFE_KEY.fullmatch(key):
        raise InputError(f"object key {key!r} has unsupported characters")
    return key


def download(bucket: str, key: str, dest_dir: Path | None = None) -> Path:
    """Download s3://bucket/key to a fresh private directory (one per call, never a path a
    client can predict or reuse); raise `InputError` if it does not exist. The caller
    removes it (`discard_download`) when done."""
    from botocore.exceptions import BotoCoreError, ClientError

    validate_key(key)
    dest_dir = dest_dir or get_settings().home / "downloads" / uuid.uuid4().hex
    dest = dest_dir / (Path(key).name or "video")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3_client().download_file(bucket, key, str(dest))
    except ClientError as exc:
        shutil.rmtree(dest_dir, ignore_errors=True)
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NoSuchBucket", "403"):
            raise InputError(f"s3://{bucket}/{key}: object not found ({code})") from exc
        raise InputError(f"s3://{bucket}/{key}: cannot download ({code})") from exc
    except BotoCoreError as exc:
        shutil.rmtree(dest_dir, ignore_errors=True)
        raise InputError(f"s3://{bucket}/{key}: cannot download ({type(exc).__name__})") from exc
    return dest


def discard_download(path: Path) -> None:
    """Remove a file `download` made (and its private directory); anything else is kept."""
    downloads = get_settings().home / "downloads"
    if path.parent.parent == downloads:
        shutil.rmtree(path.parent, ignore_errors=True)


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD request tells about an object."""

    size: int
    metadata: dict[str, str]
    etag: str


def head(bucket: str, key: str) -> ObjectInfo:
    """HEAD s3://bucket/key; `InputError` when it does not exist or cannot be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    validate_key(key)
    try:
        answer = s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise InputError(f"s3://{bucket}/{key}: object not found ({code})") from exc
    except BotoCoreError as exc:
        raise InputError(f"s3://{bucket}/{key}: cannot read ({type(exc).__name__})") from exc
    meta = {k.lower(): str(v) for k, v in (answer.get("Metadata") or {}).items()}
    return ObjectInfo(int(answer.get("ContentLength") or 0), meta, str(answer.get("ETag", "")))


def fetch(source: str | Path) -> tuple[Path, str]:
    """A local path for `source` and the URI to record for it."""
    text = str(source)
    if text.startswith("s3://"):
        bucket, key = parse_s3_uri(text)
        return download(bucket, key), text
    path = Path(text).expanduser()
    return path, str(path.absolute())


VIDEO_ID_METADATA = "video-id"
_VIDEO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")  # whole ids only: `fullmatch`


def validate_video_id(video_id: str) -> str:
    """A video id is 1-128 letters, digits, `_`, `-`, `.`, starting with a letter or digit.

    >>> validate_video_id("test-001")
    'test-001'
    """
    if not _VIDEO_ID.fullmatch(video_id) or ".." in video_id:
        raise InputError(f"invalid video id {video_id!r}: use 1-128 letters, digits, '_', '-', '.'")
    return video_id


def video_key(video_id: str, filename: str, sha256: str | None = None) -> str:
    """The raw-bucket key of an uploaded video: `videos/{video_id}/{sha256[:16]}-{filename}`.

    The content hash in the key makes every distinct upload its own object, so concurrent
    uploads never overwrite (or delete) each other's files.

    >>> video_key("test-001", "clip one.mp4")
    'videos/test-001/clip one.mp4'
    >>> video_key("test-001", "clip.mp4", "ab" * 32)
    'videos/test-001/abababababababab-clip.mp4'
    """
    name = Path(filename.replace("\\", "/")).name or "video"
    if sha256:
        name = f"{sha256[:16]}-{name}"
    return validate_key(f"videos/{validate_video_id(video_id)}/{name}")


SHA256_METADATA = "sha256"
DURATION_METADATA = "duration"  # seconds; the Lambda handler splits long videos by it
MAX_DURATION_S = 7 * 86400.0  # larger values are not believed (metadata is client input)


def parse_duration(value: object) -> float | None:
    """A duration from object metadata, or None unless it is a plain finite number in
    (0, MAX_DURATION_S]: metadata is hostile input (`batch.lambda_handler` reads it alike).

    >>> [parse_duration(v) for v in ("150.000", "nan", "-1", "1e30")]
    [150.0, None, None, None]
    """
    import math

    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text or len(text) > 32:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and 0 < seconds <= MAX_DURATION_S else None


def format_duration(seconds: float | None) -> str | None:
    """The metadata value of a probed duration (None: do not record one).

    >>> format_duration(10.0), format_duration(float("inf")), format_duration(0)
    ('10.000', None, None)
    """
    if seconds is None or parse_duration(f"{float(seconds):.3f}") is None:
        return None
    return f"{float(seconds):.3f}"


def probe_duration(path: str | Path) -> float | None:
    """The container duration of a local video in seconds; None when it cannot be read."""
    try:
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return float(container.duration or 0) / 1e6 or None
    except Exception:  # not a video, unreadable: no duration metadata, single-job analysis
        return None


def upload_video(
    path: str | Path,
    bucket: str | None,
    video_id: str,
    filename: str | None = None,
    sha256: str | None = None,
    duration_s: float | None = None,
) -> str:
    """Upload a local video to `bucket` (default `S3_BUCKET_RAW`) and return its key.

    The key is content-addressed (`video_key`) and the object carries the id, the
    content hash and the duration in seconds in its metadata (`x-amz-meta-video-id`,
    `x-amz-meta-sha256`, `x-amz-meta-duration`): the analysis reads the first two back, the
    Lambda handler splits a long video into an AWS Batch array job by the third.
    `duration_s` is probed from the file when not given (left out when it cannot be read).

    >>> upload_video("clip.mp4", None, "test-001")  # doctest: +SKIP
    'videos/test-001/3f2a...-clip.mp4'
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from capstone.core.video import sha256_file

    path = Path(path)
    bucket = bucket or get_settings().s3_bucket_raw
    sha256 = sha256 or sha256_file(path)
    key = video_key(video_id, filename or path.name, sha256)
    metadata = {VIDEO_ID_METADATA: video_id, SHA256_METADATA: sha256}
    duration = format_duration(probe_duration(path) if duration_s is None else duration_s)
    if duration is not None:
        metadata[DURATION_METADATA] = duration
    try:
        s3_client().upload_file(str(path), bucket, key, ExtraArgs={"Metadata": metadata})
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise InputError(f"cannot upload to s3://{bucket}/{key} ({code})") from exc
    except (BotoCoreError, OSError) as exc:
        raise InputError(f"cannot upload to s3://{bucket}/{key} ({type(exc).__name__})") from exc
    return key


def object_video_id(bucket: str, key: str, info: ObjectInfo | None = None) -> str:
    """The video id of an object: its metadata, else `videos/{id}/...`, else one from the key.

    Raises `InputError` when the object does not exist.
    """
    info = info or head(bucket, key)
    if info.metadata.get(VIDEO_ID_METADATA):
        return validate_video_id(info.metadata[VIDEO_ID_METADATA])
    return video_id_from_key(key)


def video_id_from_key(key: str) -> str:
    """`videos/{id}/{file}` gives `id`; any other key gives a slug plus a short hash.

    >>> video_id_from_key("videos/test-001/a.mp4")
    'test-001'
    >>> video_id_from_key("inbox/My Clip.mp4")
    'my-clip-630d9c6c'
    """
    import hashlib

    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "videos" and _VIDEO_ID.fullmatch(parts[1]):
        return parts[1]
    stem = re.sub(r"[^a-z0-9]+", "-", Path(key).stem.lower()).strip("-")[:40] or "video"
    return f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
