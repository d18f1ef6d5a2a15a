"""The detection memo (`capstone.models.detection_memo`): frames seen before give the
detector's own boxes back without running it; other settings or pixels are detected again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capstone.core.video import iter_frames
from capstone.models.detector import Detector, get_detector
from tests.conftest import VIDEOS, _clear_caches, require


@pytest.fixture
def memo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CAPSTONE_DETECTION_MEMO", str(tmp_path / "memo"))
    _clear_caches()
    yield tmp_path / "memo"
    monkeypatch.undo()
    _clear_caches()


def _frames(n: int, video: str = "bikes.mp4") -> list[np.ndarray]:
    return [f.image for f in iter_frames(require(VIDEOS / video), max_frames=n)]


def _count_model_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, the number of frames of each call that reaches the model."""
    ran: list[int] = []
    models = Detector._stream_models

    def counting(self, items):  # type: ignore[no-untyped-def]
        items = list(items)
        ran.append(len(items))
        return models(self, items)

    monkeypatch.setattr(Detector, "_stream_models", counting)
    return ran


def _same(a, b) -> bool:  # type: ignore[no-untyped-def]
    return (
        np.array_equal(a.xyxy, b.xyxy)
        and np.array_equal(a.confidence, b.confidence)
        and np.array_equal(a.class_id, b.class_id)
        and a.labels == b.labels
    )


def test_seen_frames_are_read_back_equal_and_others_detected(
    memo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = _frames(12)
    detector = get_detector()
    first = detector(frames)  # every frame detected, then saved
    assert len(list(memo_dir.rglob("*.npz"))) == len(frames)
    assert sum(len(d) for d in first) > 0

    ran = _count_model_runs(monkeypatch)
    again = detector(frames)
    assert ran == [] and all(_same(a, b) for a, b in zip(first, again, strict=True))

    # a new frame among seen ones: only it is detected, in order
    flipped = np.ascontiguousarray(frames[3][:, ::-1])
    mixed = detector([frames[0], flipped, frames[1]])
    assert ran == [1]
    assert _same(mixed[0], first[0]) and _same(mixed[2], first[1])

    # other settings are another key: detected again, and with their own result
    strict = detector.using(conf=0.6)
    high = strict(frames[:4])
    assert ran == [1, 4]
    assert all((d.confidence >= 0.6).all() for d in high)

    # a damaged entry is detected again, not trusted
    for path in memo_dir.rglob("*.npz"):
        path.write_bytes(b"not an npz")
    repaired = detector(frames[:2])
    assert ran == [1, 4, 2] and all(_same(a, b) for a, b in zip(first, repaired, strict=False))


def test_a_request_for_some_classes_shares_the_every_class_entry(
    memo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = _frames(8, "highway-cctv.avi")  # cars, trucks, a motorcyclist
    detector = get_detector()
    car = detector.class_ids(["car"])
    cars = detector.using(classes=car)
    direct = [d for _, d in cars._stream_models(frames)]  # the model itself, no memo
    assert sum(len(d) for d in direct) > 0

    every = detector(frames)
    ran = _count_model_runs(monkeypatch)
    from_memo = cars(frames)
    assert ran == []  # read back, not detected
    assert all(_same(a, b) for a, b in zip(direct, from_memo, strict=True))
    assert any(set(d.class_id.tolist()) - set(car) for d in every)  # other classes too

    # the other way round: cars first (the entry holds every class), then every class
    flipped = [np.ascontiguousarray(f[:, ::-1]) for f in frames[:3]]
    cars(flipped)
    assert ran == [3]
    detector(flipped)
    assert ran == [3]

    # a cut all-class list (max_det reached) is not trusted for a subset: a frame whose
    # last car comes after another class, with max_det the boxes before that car
    def last_car_after_another_class(classes: list[int]) -> int:
        last = max((i for i, c in enumerate(classes) if c in car), default=0)
        return last if any(c not in car for c in classes[:last]) else 0

    cut = {k: last_car_after_another_class(d.class_id.tolist()) for k, d in enumerate(every)}
    k = next(k for k, boxes_before in cut.items() if boxes_before)
    few = detector.using(classes=car)
    few.max_det = cut[k]
    expected = next(few._stream_models([frames[k]]))[1]
    got = few([frames[k]])[0]
    assert _same(expected, got)
    assert len(got) == sum(c in car for c in every[k].class_id.tolist())


def test_without_the_setting_every_frame_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPSTONE_DETECTION_MEMO", raising=False)
    _clear_caches()
    try:
        detector = get_detector()
        ran = _count_model_runs(monkeypatch)
        frames = _frames(3)
        detector(frames)
        detector(frames)
        assert ran == [3, 3]
    finally:
        monkeypatch.undo()
        _clear_caches()
