"""Where videos come from: local paths and `s3://bucket/key` (AWS or the moto emulator)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from capstone.config import get_settings
from capstone.errors import InputError

_SAFE_KEY = re.compile(r"^[\w\-./ +=@,()!']+$")


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
    if not _SAFE_KEY.match(key):
        raise InputError(f"object key {key!r} has unsupported characters")
    return key


def download(bucket: str, key: str, dest_dir: Path | None = None) -> Path:
    """Download s3://bucket/key into the cache; raise `InputError` if it does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    validate_key(key)
    dest_dir = dest_dir or get_settings().home / "downloads" / bucket
    dest = dest_dir / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3_client().download_file(bucket, key, str(dest))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NoSuchBucket", "403"):
            raise InputError(f"s3://{bucket}/{key}: object not found ({code})") from exc
        raise InputError(f"s3://{bucket}/{key}: cannot download ({code})") from exc
    except BotoCoreError as exc:
        raise InputError(f"s3://{bucket}/{key}: cannot download ({exc})") from exc
    return dest


def fetch(source: str | Path) -> tuple[Path, str]:
    """A local path for `source` and the URI to record for it."""
    text = str(source)
    if text.startswith("s3://"):
        bucket, key = parse_s3_uri(text)
        return download(bucket, key), text
    path = Path(text).expanduser()
    return path, str(path.absolute())
