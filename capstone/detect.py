"""Detect: Ultralytics YOLO boxes as `Detections`.

>>> detector = Detector("yolo11n", conf=0.25)  # doctest: +SKIP
>>> detections = detector([frame.image])[0]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from capstone.detections import Detections
from capstone.models import DEFAULT_DETECTOR, resolve_model


def _class_name_map(names: dict[int, str] | list[str]) -> dict[int, str]:
    return dict(names) if isinstance(names, dict) else dict(enumerate(names))


class Detector:
    """A YOLO detector. Call it with a list of BGR images; get one `Detections` per image."""

    def __init__(
        self,
        model: str | Path = DEFAULT_DETECTOR,
        *,
        conf: float = 0.25,
        iou: float = 0.7,
        imgsz: int = 640,
        classes: Sequence[int] | None = None,
    ) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from ultralytics import YOLO

        self.model_path = resolve_model(model)
        self.model = YOLO(str(self.model_path), task="detect")
        self.conf, self.iou, self.imgsz = conf, iou, imgsz
        self.classes = list(classes) if classes else None
        self._names: dict[int, str] | None = None

    @property
    def class_names(self) -> dict[int, str]:
        if self._names is None:
            self._names = _class_name_map(self.model.names)
        return self._names

    def class_ids(self, names: Sequence[str]) -> list[int]:
        """Class ids for class names; unknown names raise `ValueError`."""
        lookup = {v: k for k, v in self.class_names.items()}
        unknown = [n for n in names if n not in lookup]
        if unknown:
            raise ValueError(f"unknown class name(s): {', '.join(unknown)}")
        return [lookup[n] for n in names]

    def __call__(self, images: Sequence[np.ndarray]) -> list[Detections]:
        results = self.model.predict(
            list(images),
            conf=self.conf,
            iou=self.iou,
            imgsz=self.imgsz,
            classes=self.classes,
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


_cache: dict[str, Detector] = {}


def get_detector(model: str | Path = DEFAULT_DETECTOR) -> Detector:
    """A process-wide detector per model (loading and compiling a model takes seconds)."""
    key = str(resolve_model(model))
    if key not in _cache:
        _cache[key] = Detector(model)
    return _cache[key]
