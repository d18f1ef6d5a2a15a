"""Detect: YOLO boxes as `Detections`, with frames kept in flight for throughput.

For an OpenVINO export (the offline default) the detector drives OpenVINO itself: the
THROUGHPUT hint, several asynchronous infer requests in flight, and exactly Ultralytics'
own pre- and post-processing (`LetterBox`, `non_max_suppression`, `scale_boxes`), so the
boxes are those of `YOLO(...).predict()`. Any other model format goes through Ultralytics'
`predict()`.

>>> from capstone.core.video import iter_frames
>>> detector = Detector("yolo11n", conf=0.25)  # doctest: +SKIP
>>> for frame, dets in detector.stream(iter_frames("bikes.mp4", stride=50)):  # doctest: +SKIP
...     print(frame.index, dets.labels)  # frames come back in order
0 []
50 ['car', 'car', 'car']
100 ['bus', 'car']
...
"""

from __future__ import annotations

import copy
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from capstone.core.detections import Detections
from capstone.errors import ModelNotFoundError
from capstone.models import yolo_ops
from capstone.models.detection_memo import DetectionMemo, configured_memo
from capstone.models.inference_requests import outputs, submit
from capstone.models.weights import DEFAULT_DETECTOR, resolve_model

T = TypeVar("T")
MEMO_BATCH = 8  # frames not in the detection memo are detected in runs of at most this many


def _class_name_map(names: dict[int, str] | list[str]) -> dict[int, str]:
    return (
        {int(k): str(v) for k, v in names.items()}
        if isinstance(names, dict)
        else dict(enumerate(names))
    )


def _image_of(item: Any) -> np.ndarray:
    """The BGR image of a `capstone.core.video.Frame` or of a bare array."""
    image = getattr(item, "image", item)
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("detector input must be H x W x 3 BGR images")
    return image


def openvino_xml(path: Path | str) -> Path | None:
    """The IR `.xml` of an OpenVINO export (a `*_openvino_model/` dir or the file), else None."""
    path = Path(path)
    if path.is_file() and path.suffix == ".xml":
        return path
    if path.is_dir():
        return next(iter(sorted(path.glob("*.xml"))), None)
    return None


class _OpenVINOEngine:
    """One compiled OpenVINO model with a pool of asynchronous infer requests.

    Pre-processing is a letterbox (`capstone.models.yolo_ops`, Ultralytics' arithmetic: to
    the model's fixed input size, centred padding of 114) followed by BGR->RGB and /255,
    which OpenVINO's PrePostProcessor folds into the compiled graph so it runs off the
    Python thread; post-processing (suppression, boxes back to the frame) is NumPy.
    """

    def __init__(self, xml: Path, *, requests: int | None = None) -> None:
        import openvino as ov
        import yaml

        self.xml = xml
        metadata_path = xml.parent / "metadata.yaml"
        self.metadata: dict[str, Any] = (
            dict(yaml.safe_load(metadata_path.read_text()) or {}) if metadata_path.exists() else {}
        )
        self.names = _class_name_map(self.metadata.get("names") or {})
        self.stride = int(self.metadata.get("stride", 32))
        self.end2end = bool(self.metadata.get("end2end", False))
        self._ov = ov
        self._core = ov.Core()
        self._requested = requests
        self._imgsz: tuple[int, int] | None = None
        self._compiled: Any = None
        self._lock = threading.Lock()
        model = self._core.read_model(str(xml), str(xml.with_suffix(".bin")))
        shape = model.input().get_partial_shape()
        self.dynamic = shape.is_dynamic
        self.native_imgsz = None if self.dynamic else (shape[2].get_length(), shape[3].get_length())

    def infer_requests(self, imgsz: tuple[int, int]) -> list[Any]:
        """Fresh infer requests of the model compiled for `imgsz` (one set per stream, so
        concurrent streams on one detector never share a request)."""
        with self._lock:
            if self._compiled is None or self._imgsz != imgsz:
                self._compile(imgsz)
            # One more than the device's optimum: a request is always queued, ready for the
            # stream that frees first, while Python post-processes the oldest one.
            n = self._requested or 1 + int(
                self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
            )
            return [self._compiled.create_infer_request() for _ in range(max(1, n))]

    def _compile(self, imgsz: tuple[int, int]) -> None:
        ov = self._ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        model = self._core.read_model(str(self.xml), str(self.xml.with_suffix(".bin")))
        if self.dynamic:
            model.reshape([1, 3, *imgsz])
        ppp = PrePostProcessor(model)
        tensor = ppp.input().tensor()
        tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        tensor.set_color_format(ColorFormat.BGR)
        steps = ppp.input().preprocess()
        steps.convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        model = ppp.build()
        from capstone.config import get_settings

        cache = get_settings().model_cache / "detector"
        cache.mkdir(parents=True, exist_ok=True)
        # the compiled blob is reused by the next process (keyed by model, settings and CPU)
        config = {"PERFORMANCE_HINT": "THROUGHPUT", "CACHE_DIR": str(cache)}
        # CAPSTONE_OV_PRECISION (f32, bf16, f16) pins the precision of the non-quantized
        # layers; unset, OpenVINO picks by CPU (bf16 where the CPU has it).
        if precision := os.environ.get("CAPSTONE_OV_PRECISION"):
            config["INFERENCE_PRECISION_HINT"] = precision
        self._compiled = self._core.compile_model(model, "CPU", config)
        self._imgsz = imgsz


class Detector:
    """A YOLO detector. Call it with a list of BGR images; get one `Detections` per image.

    `stream(frames)` detects an iterable of frames (or images) with several frames in
    flight and yields `(frame, detections)` in input order.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_DETECTOR,
        *,
        conf: float = 0.25,
        iou: float = 0.7,
        imgsz: int = 640,
        classes: Sequence[int] | None = None,
        max_det: int = 300,
        backend: str = "auto",
        requests: int | None = None,
    ) -> None:
        """`backend`: `auto` (OpenVINO async for OpenVINO exports, else Ultralytics),
        `openvino` or `ultralytics`. `requests`: infer requests in flight (OpenVINO;
        default: one more than the device's optimal number)."""
        os.environ.setdefault("YOLO_OFFLINE", "1")
        if backend not in {"auto", "openvino", "ultralytics"}:
            raise ValueError("backend must be auto, openvino or ultralytics")
        self.model_path = resolve_model(model)
        self.conf, self.iou, self.imgsz, self.max_det = conf, iou, imgsz, max_det
        self.classes = list(classes) if classes else None
        xml = openvino_xml(self.model_path) if isinstance(self.model_path, Path) else None
        if backend == "openvino" and xml is None:
            raise ValueError(f"{self.model_path} is not an OpenVINO export")
        self._engine = (
            _OpenVINOEngine(xml, requests=requests) if xml and backend != "ultralytics" else None
        )
        self.backend = "openvino" if self._engine is not None else "ultralytics"
        self.model: Any = None
        if self._engine is None:
            self.model = _load_ultralytics(self.model_path)
        self._names: dict[int, str] | None = None

    def using(
        self,
        *,
        conf: float | None = None,
        imgsz: int | None = None,
        classes: Sequence[int] | None = None,
    ) -> Detector:
        """This detector with other settings, sharing the loaded model; `self` is unchanged,
        so concurrent analyses on one cached detector never see each other's settings.

        >>> person_only = get_detector().using(conf=0.4, classes=[0])  # doctest: +SKIP
        """
        view = copy.copy(self)
        view.conf = self.conf if conf is None else conf
        view.imgsz = self.imgsz if imgsz is None else imgsz
        view.classes = list(classes) if classes else None
        return view

    @property
    def class_names(self) -> dict[int, str]:
        if self._names is None:
            if self._engine is not None and self._engine.names:
                self._names = dict(self._engine.names)
            else:
                self._names = _class_name_map(self._ultralytics().names)
        return self._names

    def class_ids(self, names: Sequence[str]) -> list[int]:
        """Class ids for class names; unknown names raise `ValueError`."""
        lookup = {v: k for k, v in self.class_names.items()}
        unknown = [n for n in names if n not in lookup]
        if unknown:
            raise ValueError(f"unknown class name(s): {', '.join(unknown)}")
        return [lookup[n] for n in names]

    def _ultralytics(self) -> Any:
        if self.model is None:
            self.model = _load_ultralytics(self.model_path)
        return self.model

    def __call__(self, images: Sequence[np.ndarray]) -> list[Detections]:
        if self._engine is None and configured_memo() is None:
            return self._predict_ultralytics(images)
        return [dets for _, dets in self.stream(images)]

    def stream(self, frames: Iterable[T]) -> Iterator[tuple[T, Detections]]:
        """Detect every frame with several in flight; yields `(frame, detections)` in order.

        Items are `capstone.core.video.Frame`s or BGR arrays. The iterable is consumed at most
        one request ahead of what has been yielded (`MEMO_BATCH` frames with the detection
        memo on, `capstone.models.detection_memo`).
        """
        memo = configured_memo()
        if memo is not None:
            yield from self._stream_memo(frames, memo)
            return
        yield from self._stream_models(frames)

    def _stream_models(self, frames: Iterable[T]) -> Iterator[tuple[T, Detections]]:
        if self._engine is None:
            for item in frames:
                yield item, self._predict_ultralytics([_image_of(item)])[0]
            return
        yield from self._stream_openvino(frames)

    def _settings_key(self) -> str:
        """Everything that decides the boxes of a frame, as text (the memo's key; the memo
        keys by the all-class view, `_stream_memo`)."""
        path = Path(str(self.model_path))
        try:
            stat = path.stat()
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            stamp = "-"
        classes = None if self.classes is None else sorted(self.classes)
        precision = os.environ.get("CAPSTONE_OV_PRECISION", "")
        return (
            f"{path}|{stamp}|{self.backend}|{precision}|conf={self.conf}|iou={self.iou}"
            f"|imgsz={self.imgsz}|classes={classes}|max_det={self.max_det}"
        )

    def _stream_memo(
        self, frames: Iterable[T], memo: DetectionMemo
    ) -> Iterator[tuple[T, Detections]]:
        """`stream` reading frames seen before from `memo` and detecting the others (runs of
        up to `MEMO_BATCH` of them, pipelined), then saving theirs.

        The memo holds every class: a request for some classes reads the all-class entry
        and keeps its classes. Suppression is per class and the class filter comes before
        it, so that is exactly what the model gives for those classes, unless `max_det`
        cut the all-class list; then the frame is detected with the classes asked."""
        every = self.using(classes=None)
        settings, names = every._settings_key(), self.class_names
        misses: list[tuple[T, str]] = []

        def detect_misses() -> Iterator[tuple[T, Detections]]:
            if not misses:
                return
            items = [item for item, _ in misses]
            keys = [key for _, key in misses]
            misses.clear()
            for (item, dets), key in zip(every._stream_models(items), keys, strict=True):
                memo.put(key, dets)
                yield item, self._of_my_classes(item, dets)

        for item in frames:
            key = memo.key(_image_of(item), settings)
            hit = memo.get(key, names)
            if hit is None:
                misses.append((item, key))
                if len(misses) >= MEMO_BATCH:
                    yield from detect_misses()
                continue
            yield from detect_misses()
            yield item, self._of_my_classes(item, hit)
        yield from detect_misses()

    def _of_my_classes(self, item: T, every: Detections) -> Detections:
        """The boxes of `self.classes` from a frame's all-class detections."""
        if self.classes is not None and len(every) >= self.max_det:
            return next(self._stream_models([item]))[1]  # the list was cut: not the same boxes
        return every.filter_classes(set(self.classes or ()))

    # -- Ultralytics predict() -------------------------------------------------------------

    def _predict_ultralytics(self, images: Sequence[np.ndarray]) -> list[Detections]:
        results = self._ultralytics().predict(
            [_image_of(x) for x in images],
            conf=self.conf,
            iou=self.iou,
            imgsz=self.imgsz,
            classes=self.classes,
            max_det=self.max_det,
            verbose=False,
        )
        names = self.class_names
        out = []
        for result in results:
            boxes = result.boxes
            out.append(
                Detections(
                    boxes.xyxy.cpu().numpy(),
                    boxes.conf.cpu().numpy(),
                    boxes.cls.cpu().numpy().astype(np.int64),
                    None,
                    names,
                )
            )
        return out

    # -- OpenVINO asynchronous -------------------------------------------------------------

    def _input_size(self) -> tuple[int, int]:
        engine = self._engine
        assert engine is not None
        if engine.native_imgsz is not None:  # a static export runs at its own size, as in
            return engine.native_imgsz  # Ultralytics (which ignores `imgsz` for it)
        return yolo_ops.input_size(self.imgsz, engine.stride)

    def _stream_openvino(self, frames: Iterable[T]) -> Iterator[tuple[T, Detections]]:
        engine = self._engine
        assert engine is not None
        imgsz = self._input_size()
        free = engine.infer_requests(imgsz)
        postprocess = self._postprocessor(imgsz)
        in_flight: deque[tuple[T, np.ndarray, Any]] = deque()
        try:
            for item in frames:
                image = _image_of(item)
                blob = np.ascontiguousarray(yolo_ops.letterbox(image, imgsz))[None]
                if not free:
                    done_item, done_image, request = in_flight.popleft()
                    (output,) = outputs(request)
                    submit(request, {0: blob})  # reuse it at once, then post-process
                    in_flight.append((item, image, request))
                    yield done_item, postprocess(output, done_image.shape)
                    continue
                request = free.pop()
                submit(request, {0: blob})
                in_flight.append((item, image, request))
            while in_flight:
                done_item, done_image, request = in_flight.popleft()
                (output,) = outputs(request)
                yield done_item, postprocess(output, done_image.shape)
        finally:
            for _, _, request in in_flight:  # abandoned mid-stream: leave no request running
                request.wait()

    def _postprocessor(self, imgsz: tuple[int, int]) -> Callable[[np.ndarray, tuple], Detections]:
        engine = self._engine
        assert engine is not None
        names = self.class_names
        conf, iou, classes, max_det = self.conf, self.iou, self.classes, self.max_det

        def postprocess(output: np.ndarray, shape: tuple) -> Detections:
            rows = yolo_ops.postprocess(
                output,
                imgsz,
                shape[:2],
                conf=conf,
                iou=iou,
                classes=classes,
                max_det=max_det,
                end2end=engine.end2end,
            )
            return Detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), None, names)

        return postprocess


def _load_ultralytics(model_path: Path | str) -> Any:
    """`YOLO(model_path)`; a file that is no loadable model is a `ModelNotFoundError`."""
    from ultralytics import YOLO

    try:
        return YOLO(str(model_path), task="detect")
    except Exception as exc:  # Ultralytics raises anything from TypeError to pickle errors
        name = Path(str(model_path)).name
        reason = f"{name!r} is not a loadable model ({type(exc).__name__})"
        raise ModelNotFoundError(reason) from None


_cache: dict[str, Detector] = {}
_cache_lock = threading.Lock()


def get_detector(model: str | Path = DEFAULT_DETECTOR) -> Detector:
    """A process-wide detector per model (loading and compiling a model takes seconds).

    Args:
        model: a model name (`yolo11n`, looked up in `CAPSTONE_MODELS_DIR`, see
            `capstone.models.weights.resolve_model`) or a path to weights / an export.

    Returns:
        The cached `Detector` for that model (created on first use, with the default
        settings; `Detector.using` gives a view with other thresholds or classes).

    Raises:
        ModelNotFoundError: the weights are not there (offline: nothing is downloaded).

    >>> import numpy as np
    >>> detector = get_detector()  # doctest: +SKIP
    >>> detector is get_detector("yolo11n")  # doctest: +SKIP
    True
    >>> dets = detector([np.zeros((480, 640, 3), np.uint8)])[0]  # doctest: +SKIP
    >>> len(dets), dets.labels  # doctest: +SKIP
    (0, [])
    """
    key = str(resolve_model(model))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = Detector(model)
        return _cache[key]
