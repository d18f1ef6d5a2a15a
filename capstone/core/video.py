"""Probe and decode: video metadata, and frames streamed by a decoder thread.

>>> info = probe("../shared/data/videos/bikes.mp4")  # doctest: +SKIP
>>> info.frame_count, info.fps, (info.width, info.height)  # doctest: +SKIP
(250, 25.0, (640, 272))
>>> frames = iter_frames(info.path, stride=5, max_frames=3)  # doctest: +SKIP
>>> [(f.index, f.timestamp) for f in frames]  # doctest: +SKIP
[(0, 0.0), (5, 0.2), (10, 0.4)]
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capstone.errors import InputError

MAX_DIMENSION = 16384
_IMAGE_FORMATS = {"image2", "gif", "webp", "apng", "tiff", "bmp"}


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    duration: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str
    file_size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


@dataclass(frozen=True)
class Frame:
    index: int
    timestamp: float
    image: np.ndarray  # H x W x 3, BGR (the convention of OpenCV and Ultralytics)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def probe(path: str | Path) -> VideoInfo:
    """Container and stream metadata; raises `InputError` for anything that is not a video.

    Args:
        path: a local video file (anything FFmpeg opens: MP4, AVI, MKV, ...).

    Returns:
        `VideoInfo`: duration (s), fps, frame count, width, height, codec, size, SHA-256.

    Raises:
        InputError: missing, empty or unreadable file, a still image, no video stream.

    >>> probe("no/such/clip.mp4")
    Traceback (most recent call last):
    capstone.errors.InputError: no/such/clip.mp4: no such file
    >>> probe("../shared/data/videos/bikes.mp4").frame_count  # doctest: +SKIP
    250
    """
    import av

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            width, height = int(ctx.width or 0), int(ctx.height or 0)
            rate = stream.average_rate or stream.base_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = float(container.duration or 0) / 1e6
            frame_count = int(stream.frames or 0) or round(duration * fps)
            codec = ctx.name
            still = container.format.name in _IMAGE_FORMATS or container.format.name.endswith(
                "_pipe"
            )
            first = next(container.decode(stream), None)
    except InputError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, StopIteration) as exc:
        raise InputError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from exc
    if first is None:
        raise InputError(f"{path}: no decodable frames")
    if still:
        raise InputError(f"{path}: a still image ({codec}), not a video")
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION) or fps <= 0:
        raise InputError(f"{path}: implausible video stream ({width}x{height} at {fps} fps)")
    return VideoInfo(
        path=path,
        duration=duration,
        fps=fps,
        frame_count=frame_count,
        width=width,
        height=height,
        codec=codec,
        file_size=size,
        sha256=sha256_file(path),
    )


class DecodeError(InputError):
    """Decoding stopped early; `frames_decoded` frames came out before it did."""

    def __init__(self, message: str, frames_decoded: int) -> None:
        super().__init__(message)
        self.frames_decoded = frames_decoded


_END = object()


def iter_frames(
    path: str | Path,
    *,
    stride: int = 1,
    target_fps: float | None = None,
    max_frames: int | None = None,
    prefetch: int = 16,
    on_error: str = "stop",
    start: int = 0,
    stop_at: int | None = None,
) -> Iterator[Frame]:
    """Yield sampled frames, decoded ahead by a background thread.

    Sampling keeps every `stride`-th frame (frame indices that are multiples of it), or
    (with `target_fps`) about that many frames per second. `start` / `stop_at` bound the
    video frame indices yielded. Frames before `start` are decoded but not converted
    (decoding alone runs at thousands of frames per second): a frame's index is its position
    in decode order, which timestamps do not give reliably (AVI files with dropped frames),
    so seeking by time could shift indices between a chunk and a whole pass.
    A truncated or corrupt file ends the stream cleanly after the last good frame
    (`on_error="stop"`), or raises `DecodeError` (`on_error="raise"`).

    Args:
        path: a local video file (`probe` it first to reject what is not a video).
        stride: keep frames whose index is a multiple of `stride`.
        target_fps: instead of `stride`, keep about this many frames per second.
        max_frames: stop after yielding this many frames.
        prefetch: decoded frames buffered ahead of the consumer.
        on_error: `"stop"` (end quietly at a decoding error) or `"raise"`.
        start: first frame index to yield.
        stop_at: frame index to stop before.

    Returns:
        An iterator of `Frame` (`index` in decode order, `timestamp` in seconds, `image`
        an H x W x 3 BGR array). Closing it early stops the decoder thread.

    >>> frames = iter_frames("bikes.mp4", stride=5, max_frames=2)  # doctest: +SKIP
    >>> [(f.index, f.timestamp, f.image.shape) for f in frames]  # doctest: +SKIP
    [(0, 0.0, (272, 640, 3)), (5, 0.2, (272, 640, 3))]
    """
    import av

    if stride < 1:
        raise ValueError("stride must be >= 1")
    q: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def produce() -> None:
        decoded = 0
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                rate = float(stream.average_rate or stream.base_rate or 25.0)
                step = stride if not target_fps else max(1, round(rate / target_fps))
                kept = 0
                for index, frame in enumerate(container.decode(stream)):
                    decoded = index + 1
                    if stop.is_set():
                        return
                    if stop_at is not None and index >= stop_at:
                        break
                    if index % step or index < start:
                        continue
                    ts = float(frame.time) if frame.time is not None else index / rate
                    q.put(Frame(index, ts, frame.to_ndarray(format="bgr24")))
                    kept += 1
                    if max_frames is not None and kept >= max_frames:
                        break
        except Exception as exc:
            q.put(DecodeError(f"{path}: decoding stopped after {decoded} frames: {exc}", decoded))
        finally:
            q.put(_END)

    thread = threading.Thread(target=produce, name="capstone-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                break
            if isinstance(item, DecodeError):
                if on_error == "raise":
                    raise item
                continue
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)
