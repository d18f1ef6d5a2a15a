"""Keyframe choice shared by the display and embed stages: every N seconds plus scene changes.

A scene change is a large colour-histogram difference (Hellinger/Bhattacharyya distance on a
~96 px subsampled HSV image) between consecutive sampled frames. Stages of one run share
one selector through `is_keyframe(frame, ctx)`, so the display and embed stages use the
same keyframes and the histogram is computed once per frame.

>>> import numpy as np
>>> selector = KeyframeSelector(every_s=2.0)
>>> black, white = np.zeros((36, 64, 3), np.uint8), np.full((36, 64, 3), 255, np.uint8)
>>> [selector.is_keyframe(t, img) for t, img in [(0.0, black), (0.5, black), (1.0, white)]]
[True, False, True]
>>> selector.reasons[-1]
'scene'
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from capstone.core.video import Frame
from capstone.stages.base import Number, RunContext, StageOptions

DEFAULT_EVERY_S = 2.0
DEFAULT_SCENE_THRESHOLD = 0.35  # static cameras stay < 0.16, cuts in bikes.mp4 > 0.44
MIN_GAP_S = 0.25  # no two keyframes closer than this (a cut followed by a flash)


class KeyframeOptions(StageOptions):
    """Keyframes (shared by the display and embed stages): one every `keyframe_every_s`
    seconds, and at scene changes (HSV-histogram distance above `scene_change_threshold`)."""

    keyframe_every_s: Annotated[Number, Field(ge=0.01)] = DEFAULT_EVERY_S
    scene_change_threshold: Annotated[Number, Field(ge=0.0, le=1.0)] = DEFAULT_SCENE_THRESHOLD


class KeyframeSelector:
    """Stateful: call `is_keyframe(timestamp, image)` once per sampled frame, in order."""

    def __init__(
        self,
        every_s: float = DEFAULT_EVERY_S,
        scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    ) -> None:
        self.every_s = every_s
        self.scene_threshold = scene_threshold
        self._last_key_ts: float | None = None
        self._last_hist: np.ndarray | None = None
        self._last_index: int | None = None
        self._last_answer = False
        self.reasons: list[str] = []  # why each keyframe was chosen: first, interval, scene

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> KeyframeSelector:
        """Options `keyframe_every_s` (default 2.0) and `scene_change_threshold` (0..1, 0.35)."""
        opts = KeyframeOptions.pick(options)
        return cls(opts.keyframe_every_s, opts.scene_change_threshold)

    @staticmethod
    def histogram(image: np.ndarray) -> np.ndarray:
        """Normalised 8x4x4 HSV histogram of a ~96 px subsample (0.15 ms for 768x576)."""
        import cv2

        step = max(1, round(max(image.shape[:2]) / 96))
        small = np.ascontiguousarray(image[::step, ::step])
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
        return (hist / max(1.0, float(hist.sum()))).astype(np.float32)

    def is_keyframe(self, timestamp: float, image: np.ndarray, index: int | None = None) -> bool:
        """Whether this frame is a keyframe; asking again for one `index` repeats the answer."""
        import cv2

        if index is not None and index == self._last_index:
            return self._last_answer
        self._last_index, self._last_answer = index, False
        hist = self.histogram(image)
        previous, self._last_hist = self._last_hist, hist
        if self._last_key_ts is None:
            reason = "first"
        elif timestamp - self._last_key_ts >= self.every_s - 1e-6:
            reason = "interval"
        elif (
            previous is not None
            and timestamp - self._last_key_ts >= MIN_GAP_S
            and cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA) > self.scene_threshold
        ):
            reason = "scene"
        else:
            return False
        self._last_key_ts = timestamp
        self._last_answer = True
        self.reasons.append(reason)
        return True


_selectors: dict[int, KeyframeSelector] = {}


def selector_for(ctx: RunContext) -> KeyframeSelector:
    """The one selector of this run (created from `ctx.params.options` on first use)."""
    key = id(ctx)
    selector = _selectors.get(key)
    if selector is None:
        selector = _selectors[key] = KeyframeSelector.from_options(ctx.params.options)
        weakref.finalize(ctx, _selectors.pop, key, None)
    return selector


def is_keyframe(frame: Frame, ctx: RunContext) -> bool:
    """Whether `frame` is a keyframe of this run; every stage gets the same answer."""
    return selector_for(ctx).is_keyframe(frame.timestamp, frame.image, frame.index)
