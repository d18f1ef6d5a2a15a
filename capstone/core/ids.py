"""Identifiers derived from what people type: video ids from file names, API key digests.

>>> default_video_id("clips/My Video.mp4")
'my-video'
>>> hash_api_key("s3cret")[:16]
'1ec1c26b50d5d3c5'
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path


def default_video_id(source: str | Path) -> str:
    """A stable id from the file name: `clips/My Video.mp4` -> `my-video`."""
    stem = Path(str(source).rstrip("/")).stem.lower()
    return re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-") or "video"


def hash_api_key(key: str) -> str:
    """The sha256 hex digest to put in `API_KEY_HASHES` for `key`."""
    return hashlib.sha256(key.encode()).hexdigest()
