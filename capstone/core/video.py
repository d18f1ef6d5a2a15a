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
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capstone.errors import BudgetExceededError, InputError

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


def frame_pixel_budget() -> int:
    """`MAX_FRAME_PIXELS` (the `max_frame_pixels` setting)."""
    from capstone.config import get_settings

    return get_settings().max_frame_pixels


def check_frame_size(width: int, height: int, max_pixels: int, *, where: str) -> None:
    """Raise `BudgetExceededError` for a frame of more than `max_pixels` pixels.

    >>> try:
    ...     check_frame_size(16000, 16000, 4096 * 2160, where="clip.avi: the header says")
    ... except BudgetExceededError as exc:
    ...     print(str(exc).replace("; ", ";\\n"))
    clip.avi: the header says 16000x16000 frames (256.0 MP);
    at most 8847360 pixels per frame (MAX_FRAME_PIXELS)
    """
    if width * height > max_pixels:
        raise BudgetExceededError(
            f"{where} {width}x{height} frames ({width * height / 1e6:.1f} MP); at most "
            f"{max_pixels} pixels per frame (MAX_FRAME_PIXELS)"
        )


def check_duration(frame_count: int, fps: float, max_s: float, *, where: str) -> None:
    """Raise `BudgetExceededError` for more than `max_s` seconds of video
    (`MAX_VIDEO_DURATION_S`).

    >>> check_duration(25 * 3600 * 33, 25.0, 86400.0, where="clip.avi: the header says")
    Traceback (most recent call last):
    capstone.errors.BudgetExceededError: clip.avi: the header says 2970000 frames (33.0 h at 25 fps); at most 86400 s of video per analysis (MAX_VIDEO_DURATION_S)
    """  # noqa: E501
    seconds = frame_count / fps
    if seconds > max_s:
        raise BudgetExceededError(
            f"{where} {frame_count} frames ({seconds / 3600:.1f} h at {fps:g} fps); at most "
            f"{max_s:g} s of video per analysis (MAX_VIDEO_DURATION_S)"
        )


def limit_decoder(stream: Any, max_pixels: int) -> None:
    """Have FFmpeg refuse (EINVAL) any frame over `max_pixels` before allocating it: a
    header can claim small frames and a packet then carry a huge one. Its check counts the
    width padded to the SIMD stride, hence the slack; `check_frame_size` is exact."""
    slack = max_pixels // 8 + 64 * MAX_DIMENSION
    stream.codec_context.options = {"max_pixels": str(max_pixels + slack)}


def _refused(path: str | Path, index: int, max_pixels: int) -> BudgetExceededError:
    return BudgetExceededError(
        f"{path}: the decoder refused frame {index}: larger than {max_pixels} pixels per "
        "frame (MAX_FRAME_PIXELS)"
    )


def probe(path: str | Path, *, max_pixels: int | None = None) -> VideoInfo:
    """Container and stream metadata; raises `InputError` for anything that is not a video.

    Args:
        path: a local video file (anything FFmpeg opens: MP4, AVI, MKV, ...).

    Returns:
        `VideoInfo`: duration (s), fps, frame count, width, height, codec, size, SHA-256.

    Raises:
        InputError: missing, empty or unreadable file, a still image, no video stream.
        BudgetExceededError: frames larger than `MAX_FRAME_PIXELS` (from the stream header,
            before any frame is decoded; the decoder refuses larger ones too).

    >>> probe("no/such/clip.mp4")
    Traceback (most recent call last):
    capstone.errors.InputError: no/such/clip.mp4: no such file
    >>> probe("../shared/data/videos/bikes.mp4").frame_count  # doctest: +SKIP
    250
    """
    import av

    max_pixels = max_pixels or frame_pixel_budget()
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
            check_frame_size(width, height, max_pixels, where=f"{path}: the stream header says")
            limit_decoder(stream, max_pixels)
            first = next(container.decode(stream), None)
            if first is not None:
                check_frame_size(first.width, first.height, max_pixels, where=f"{path}: frame 0 is")
    except InputError:
        raise
    except av.error.ArgumentError as exc:  # the decoder refused a frame over max_pixels
        raise _refused(path, 0, max_pixels) from exc
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


@dataclass
class StreamEnd:
    """How a frame stream ended, filled in by `iter_frames` before its last item: `decoded`
    frames came out of the decoder; `complete` when that is the whole video (the decoder
    reached the end of the stream, not `stop_at`, `max_frames`, an error or a close)."""

    decoded: int = 0
    complete: bool = False


class _FrameBuffer:
    """The frames decoded ahead: at most `max_items`, and at most `max_bytes` of them
    unless that is a single frame (so one frame larger than the budget still passes)."""

    def __init__(self, max_items: int, max_bytes: int, stop: threading.Event) -> None:
        self.max_items, self.max_bytes, self.stop = max(1, max_items), max_bytes, stop
        self.items: deque[tuple[Any, int]] = deque()
        self.bytes = 0
        self.ready = threading.Condition()

    def put(self, item: Any, nbytes: int = 0) -> None:
        with self.ready:
            while (
                self.items
                and not self.stop.is_set()
                and (len(self.items) >= self.max_items or self.bytes + nbytes > self.max_bytes)
            ):
                self.ready.wait(0.1)
            self.items.append((item, nbytes))
            self.bytes += nbytes
            self.ready.notify_all()

    def get(self) -> Any:
        with self.ready:
            while not self.items:
                self.ready.wait()
            item, nbytes = self.items.popleft()
            self.bytes -= nbytes
            self.ready.notify_all()
            return item

    def clear(self) -> None:
        with self.ready:
            self.items.clear()
            self.bytes = 0
            self.ready.notify_all()


def iter_frames(
    path: str | Path,
    *,
    stride: int = 1,
    target_fps: float | None = None,
    max_frames: int | None = None,
    prefetch: int = 16,
    prefetch_bytes: int | None = None,
    max_pixels: int | None = None,
    on_error: str = "stop",
    start: int = 0,
    stop_at: int | None = None,
    end: StreamEnd | None = None,
) -> Iterator[Frame]:
    """Yield sampled frames, decoded ahead by a background thread.

    Sampling keeps every `stride`-th frame (frame indices that are multiples of it), or
    (with `target_fps`) about that many frames per second. `start` / `stop_at` bound the
    video frame indices yielded. Frames before `start` are decoded but not converted
    (decoding alone runs at thousands of frames per second): a frame's index is its position
    in decode order, which timestamps do not give reliably (AVI files with dropped frames),
    so seeking by time could shift indices between a chunk and a whole pass.
    A truncated or corrupt file ends the stream cleanly after the last good frame
    (`on_error="stop"`), or raises `DecodeError` (`on_error="raise"`). A frame over the
    pixel budget raises `BudgetExceededError` either way, before any later frame is decoded
    (the decoder refuses to allocate it; the header's size is checked before the first).

    Args:
        path: a local video file (`probe` it first to reject what is not a video).
        stride: keep frames whose index is a multiple of `stride`.
        target_fps: instead of `stride`, keep about this many frames per second.
        max_frames: stop after yielding this many frames.
        prefetch: decoded frames buffered ahead of the consumer, at most.
        prefetch_bytes: bytes of decoded frames buffered ahead, at most (at least one
            frame); default `DECODE_PREFETCH_BYTES`.
        max_pixels: pixels per frame; default `MAX_FRAME_PIXELS`.
        on_error: `"stop"` (end quietly at a decoding error) or `"raise"`.
        start: first frame index to yield.
        stop_at: frame index to stop before.
        end: a `StreamEnd` to fill in (how many frames the video really has).

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
    if max_pixels is None:
        max_pixels = frame_pixel_budget()
    if prefetch_bytes is None:
        from capstone.config import get_settings

        prefetch_bytes = get_settings().decode_prefetch_bytes
    stop = threading.Event()
    q = _FrameBuffer(prefetch, prefetch_bytes, stop)
    end = end if end is not None else StreamEnd()

    def produce() -> None:
        decoded = 0
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                ctx = stream.codec_context
                check_frame_size(
                    int(ctx.width or 0), int(ctx.height or 0), max_pixels,
                    where=f"{path}: the stream header says",
                )  # fmt: skip
                limit_decoder(stream, max_pixels)
                stream.thread_type = "AUTO"
                rate = float(stream.average_rate or stream.base_rate or 25.0)
                step = stride if not target_fps else max(1, round(rate / target_fps))
                kept = 0
                frames = container.decode(stream)
                while True:
                    try:
                        frame = next(frames, None)
                    except av.error.ArgumentError as exc:  # over max_pixels: not allocated
                        raise _refused(path, decoded, max_pixels) from exc
                    if frame is None:
                        end.complete = True
                        break
                    index = decoded
                    decoded = index + 1
                    end.decoded = decoded
                    if stop.is_set():
                        return
                    check_frame_size(
                        frame.width, frame.height, max_pixels, where=f"{path}: frame {index} is"
                    )
                    if stop_at is not None and index >= stop_at:
                        break
                    if index % step or index < start:
                        continue
                    ts = float(frame.time) if frame.time is not None else index / rate
                    image = frame.to_ndarray(format="bgr24")
                    q.put(Frame(index, ts, image), image.nbytes)
                    kept += 1
                    if max_frames is not None and kept >= max_frames:
                        break
        except BudgetExceededError as exc:
            end.complete = False
            q.put(exc)
        except Exception as exc:
            end.complete = False
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
            if isinstance(item, BudgetExceededError):
                raise item
            if isinstance(item, DecodeError):
                if on_error == "raise":
                    raise item
                continue
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            q.clear()
            thread.join(0.05)
