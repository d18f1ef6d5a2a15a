"""The detector: our OpenVINO async path against Ultralytics' own predict(), on real frames."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from capstone.core.detections import Detections
from capstone.core.video import Frame, iter_frames
from capstone.models.detector import Detector, get_detector, openvino_xml
from tests.conftest import MODELS, VIDEOS, require

MODEL_DIR = MODELS / "yolo11n_int8_openvino_model"


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


@pytest.fixture(scope="module")
def detector() -> Detector:
    require(MODEL_DIR)
    return Detector(MODEL_DIR)


@pytest.fixture(scope="module")
def reference() -> Iterator[Detector]:
    """Ultralytics' own predict() on the same model, CPU and inference precision: with
    CAPSTONE_OV_PRECISION set (ours pins it), Ultralytics' compile gets the same hint."""
    require(MODEL_DIR)
    precision = os.environ.get("CAPSTONE_OV_PRECISION")
    if not precision:
        yield Detector(MODEL_DIR, backend="ultralytics")
        return
    import openvino as ov

    compile_model = ov.Core.compile_model

    def pinned(
        self: Any, model: Any, device_name: Any = None, config: Any = None, **kw: Any
    ) -> Any:
        config = {**(config or {}), "INFERENCE_PRECISION_HINT": precision}
        return compile_model(self, model, device_name, config, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ov.Core, "compile_model", pinned)
        yield Detector(MODEL_DIR, backend="ultralytics")


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    """A few real frames of different sizes and scenes (people, cars, cyclists)."""
    out: list[Frame] = []
    for name, stride in (("pets09-s2l1.avi", 97), ("highway-cctv.avi", 150), ("bikes.mp4", 60)):
        out.extend(iter_frames(require(VIDEOS / name), stride=stride, max_frames=4))
    return out


def _assert_same(ours: Detections, theirs: Detections) -> None:
    assert len(ours) == len(theirs)
    if not len(ours):
        return
    iou = _iou(ours.xyxy, theirs.xyxy)
    match = iou.argmax(axis=1)
    assert len(set(match.tolist())) == len(ours)  # one-to-one
    assert np.all(iou[np.arange(len(ours)), match] > 0.99)
    assert np.array_equal(ours.class_id, theirs.class_id[match])
    np.testing.assert_allclose(ours.confidence, theirs.confidence[match], atol=1e-3)


def test_uses_openvino_async_for_an_openvino_export(detector: Detector) -> None:
    assert detector.backend == "openvino"
    assert openvino_xml(MODEL_DIR) is not None
    assert detector.class_names[0] == "person" and len(detector.class_names) == 80
    assert detector.class_ids(["car", "person"]) == [2, 0]
    with pytest.raises(ValueError, match="unknown class"):
        detector.class_ids(["unicorn"])


def test_boxes_match_ultralytics_predict(
    detector: Detector, reference: Detector, frames: list[Frame]
) -> None:
    images = [f.image for f in frames]
    ours, theirs = detector(images), reference(images)
    assert sum(len(d) for d in theirs) > 20  # real scenes with many objects
    for image, a, b in zip(images, ours, theirs, strict=True):
        _assert_same(a, b)
        h, w = image.shape[:2]
        assert np.all(a.xyxy[:, 2] <= w + 1) and np.all(a.xyxy[:, 3] <= h + 1)


def test_stream_keeps_order_and_matches_one_by_one(detector: Detector, frames: list[Frame]) -> None:
    streamed = list(detector.stream(iter(frames)))
    assert [f.index for f, _ in streamed] == [f.index for f in frames]
    assert all(a is b for (a, _), b in zip(streamed, frames, strict=True))
    for frame, dets in streamed:
        single = detector([frame.image])[0]
        np.testing.assert_array_equal(dets.xyxy, single.xyxy)
        np.testing.assert_array_equal(dets.class_id, single.class_id)


def test_stream_can_be_abandoned_and_reused(detector: Detector, frames: list[Frame]) -> None:
    stream = detector.stream(frames)
    first = next(stream)
    stream.close()  # requests still in flight are waited for, not leaked
    again = detector([frames[0].image])[0]
    np.testing.assert_array_equal(first[1].xyxy, again.xyxy)


def test_classes_filter(frames: list[Frame]) -> None:
    require(MODEL_DIR)
    images = [f.image for f in frames]
    everything = Detector(MODEL_DIR)(images)
    cars = Detector(MODEL_DIR, classes=[2])(images)
    assert sum(len(d) for d in cars) > 0
    for all_dets, car_dets in zip(everything, cars, strict=True):
        assert set(car_dets.class_id.tolist()) <= {2}
        expected = all_dets[all_dets.class_id == 2]
        np.testing.assert_allclose(np.sort(car_dets.confidence), np.sort(expected.confidence))


def test_conf_threshold(detector: Detector, frames: list[Frame]) -> None:
    images = [f.image for f in frames]
    low = Detector(MODEL_DIR, conf=0.25)(images)
    high = Detector(MODEL_DIR, conf=0.6)(images)
    assert sum(len(d) for d in high) < sum(len(d) for d in low)
    for lo, hi in zip(low, high, strict=True):
        assert np.all(hi.confidence >= 0.6)
        # NMS only lets a box be suppressed by a higher-scoring one, so raising the
        # threshold keeps exactly the confident boxes of the lower threshold
        np.testing.assert_allclose(
            np.sort(hi.confidence), np.sort(lo.confidence[lo.confidence >= 0.6])
        )


def test_attributes_set_after_construction_take_effect(frames: list[Frame]) -> None:
    require(MODEL_DIR)
    det = Detector(MODEL_DIR)
    det.conf, det.classes = 0.5, [0]
    out = det([f.image for f in frames])
    assert all(np.all(d.confidence >= 0.5) and set(d.class_id.tolist()) <= {0} for d in out)


def test_bad_input_and_backend(tmp_path: Path) -> None:
    require(MODEL_DIR)
    with pytest.raises(ValueError, match="backend"):
        Detector(MODEL_DIR, backend="tensorrt")
    weights = tmp_path / "yolo.pt"
    weights.write_bytes(b"")
    with pytest.raises(ValueError, match="not an OpenVINO export"):
        Detector(weights, backend="openvino")
    with pytest.raises(ValueError, match="H x W x 3"):
        Detector(MODEL_DIR)([np.zeros((10, 10), dtype=np.uint8)])
    assert get_detector(MODEL_DIR) is get_detector(MODEL_DIR)
