"""Our trackers' Kalman filter: position-velocity noise scaled by the frame interval."""

from __future__ import annotations

import pytest

from capstone.core.detections import Detections
from capstone.tracking.tracker import TUNED, Tracker, velocity_noise_scale


def _speeding_up(tracker: Tracker, steps: tuple[float, ...]) -> list[int | None]:
    """One 40x100 box moving right by each step's pixels a frame; the id it gets per frame."""
    x, ids = 100.0, []
    for step in steps:
        x += step
        out = tracker.update(Detections([[x, 100, x + 40, 200]], [0.9], [0]))
        ids.append(int(out.tracker_id[0]) if len(out) else None)
    return ids


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_a_walker_breaking_into_a_run_keeps_one_track_at_a_low_frame_rate(kind: str) -> None:
    """At 5 fps a box going from 8 to 30 px a frame: with the velocity noise of a 25-30 fps
    filter the prediction lags behind and the track is lost; ours follows it."""
    steps = (8.0,) * 6 + (30.0,) * 8
    ours = _speeding_up(Tracker(kind, frame_rate=5), steps)
    unscaled = _speeding_up(Tracker(kind, frame_rate=5, velocity_noise_exponent=0.0), steps)
    assert ours == [1] * len(steps)
    assert None in unscaled[6:], unscaled


def test_at_25_fps_and_above_the_filter_is_ultralytics_own() -> None:
    steps = (8.0,) * 6 + (30.0,) * 8
    for fps in (25.0, 30.0, 60.0):
        assert velocity_noise_scale(fps, TUNED["botsort"]["velocity_noise_exponent"]) == 1.0
        ours = _speeding_up(Tracker("botsort", frame_rate=fps), steps)
        unscaled = _speeding_up(
            Tracker("botsort", frame_rate=fps, velocity_noise_exponent=0), steps
        )
        assert ours == unscaled


def test_each_tracker_owns_its_filter() -> None:
    """Ultralytics' tracks predict with a filter held by their class, shared by every
    tracker in the process; two analyses at different frame rates must not share one."""
    from ultralytics.trackers.bot_sort import BOTrack
    from ultralytics.trackers.byte_tracker import STrack

    slow, fast = Tracker("botsort", frame_rate=5), Tracker("botsort", frame_rate=25)
    stock = Tracker("botsort", frame_rate=5, stock=True)
    scale = velocity_noise_scale(5, TUNED["botsort"]["velocity_noise_exponent"])
    assert scale > 1
    assert slow._tracker.kalman_filter.velocity_scale == pytest.approx(scale)
    assert fast._tracker.kalman_filter.velocity_scale == 1.0
    assert stock._tracker.kalman_filter.velocity_scale == 1.0
    steps = (8.0,) * 6 + (30.0,) * 8
    _speeding_up(slow, steps)
    _speeding_up(fast, steps)
    for shared in (BOTrack.shared_kalman, STrack.shared_kalman):
        assert getattr(shared, "velocity_scale", 1.0) == 1.0
    # a reset keeps the tracker's own scale
    slow._tracker.reset()
    assert slow._tracker.kalman_filter.velocity_scale == pytest.approx(scale)


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_only_the_position_velocities_get_more_noise(kind: str) -> None:
    """Against Ultralytics' filter, one prediction (single and batched) differs only in the
    variance of the x and y velocities, by the square of the scale; sizes keep theirs."""
    import numpy as np

    ours = Tracker(kind, frame_rate=5)._tracker.kalman_filter
    stock = Tracker(kind, frame_rate=5, stock=True)._tracker.kalman_filter
    shipped = type(ours).__mro__[1]()
    assert type(shipped).__module__.startswith("ultralytics.")
    scale = ours.velocity_scale
    box = np.array([120.0, 150.0, 40.0 if kind == "botsort" else 0.4, 100.0])
    mean, covariance = shipped.initiate(box)
    ours_mean, ours_cov = ours.predict(mean, covariance)
    base_mean, base_cov = shipped.predict(mean, covariance)
    batch_mean, batch_cov = ours.multi_predict(mean[None], covariance[None])
    np.testing.assert_allclose(ours_mean, base_mean)
    np.testing.assert_allclose(stock.predict(mean, covariance)[1], base_cov)
    np.testing.assert_allclose(batch_cov[0], ours_cov)
    np.testing.assert_allclose(batch_mean[0], ours_mean)
    added = ours_cov - base_cov
    std = shipped._std_weight_velocity * (box[[2, 3]] if kind == "botsort" else box[[3, 3]])
    expected = np.zeros((8, 8))
    expected[[4, 5], [4, 5]] = (scale**2 - 1) * std**2
    np.testing.assert_allclose(added, expected, atol=1e-12)
