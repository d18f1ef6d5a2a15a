"""Detections of frames already seen, kept on disk: the same pixels with the same detector
settings give the same boxes, so they are read back instead of run again.

Off unless `CAPSTONE_DETECTION_MEMO` (setting `capstone_detection_memo`) names a
directory. The test suite turns it on (many tests analyze the same real clips and differ
only downstream of detection); benchmarks and production leave it off.

A key is the BLAKE2b digest of the frame's pixels and shape plus everything that decides
the boxes (the model file's path, size and modification time, the backend and its
`CAPSTONE_OV_PRECISION`, `conf`, `iou`, `imgsz`, `max_det`); a value is an `.npz` of the
boxes, scores and class ids of every class (read without pickle), written atomically so
processes can share the directory. A detector asked for some classes keeps theirs
(`Detector._stream_memo`): a people-only run and an every-class run of one clip share it.

>>> import numpy as np, tempfile
>>> memo = DetectionMemo(tempfile.mkdtemp())
>>> image = np.zeros((4, 6, 3), np.uint8)
>>> key = memo.key(image, "settings")
>>> memo.get(key, {0: "person"}) is None
True
>>> memo.put(key, Detections([[0, 0, 2, 3]], [0.9], [0], None, {0: "person"}))
>>> memo.get(key, {0: "person"}).xyxy.tolist()
[[0.0, 0.0, 2.0, 3.0]]
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from capstone.core.detections import Detections


class DetectionMemo:
    """A directory of detections keyed by frame pixels and detector settings."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def key(self, image: np.ndarray, settings: str) -> str:
        digest = hashlib.blake2b(digest_size=20)
        digest.update(f"{image.shape}|{image.dtype}|{settings}".encode())
        digest.update(np.ascontiguousarray(image).data)
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key: str, names: dict[int, str]) -> Detections | None:
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                return Detections(data["xyxy"], data["confidence"], data["class_id"], None, names)
        except (OSError, KeyError, ValueError):
            return None  # absent, or cut short by a crash: detect again

    def put(self, key: str, detections: Detections) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(
                    out,
                    xyxy=detections.xyxy,
                    confidence=detections.confidence,
                    class_id=detections.class_id,
                )
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)  # a full disk only costs the saving


def configured_memo() -> DetectionMemo | None:
    """The memo of the `capstone_detection_memo` setting, or None (the default: off)."""
    from capstone.config import get_settings

    directory = get_settings().capstone_detection_memo
    return _memo_in(str(directory)) if directory else None


@lru_cache(maxsize=8)
def _memo_in(directory: str) -> DetectionMemo:
    return DetectionMemo(directory)
