"""Colour names: pixels to the 11 basic colour terms of Berlin & Kay, and a patch's shares.

The rule works in HSV (OpenCV's 8-bit HSV: hue 0..179 in 2-degree steps, saturation and
value 0..255), on each pixel:

- dark (value < 20 %) -> black, whatever its hue (sensor noise makes dark hues random);
- little saturation (< 20 %, or < 30 % when darker than 40 %) -> achromatic by value:
  black below 35 %, white from 75 %, grey between;
- otherwise the hue bin names it: red (< 15 deg or >= 340), orange (15-40), yellow
  (40-70), green (70-170), blue (170-260, cyan included), purple (260-290),
  pink (290-340 when light, else purple); then brown is dark or greyish orange/yellow
  (orange below 60 % value or 50 % saturation, yellow below 40 % value) and pink is light,
  weakly saturated red (saturation < 50 % and value >= 70 %).

Shadows keep hue and saturation and lower the value, so a shadowed red car stays red until
it is dark enough to be black.

Exposure: footage rarely spans the whole value range (on highway-cctv.avi the brightest 2 %
of a frame sit at 75-80 % value, so a white van read as grey and a red car as black). Values
are first stretched by the frame's own levels (`frame_levels`: its 2nd and 98th value
percentiles go to 0 and 100 %, the gain limited to `MAX_LEVELS_GAIN` so a dark or flat frame
is not blown up into noise). Chosen on hand-labelled tracks of highway-cctv.avi (correct
colour 24 -> 33 of 50) and checked on bikes.mp4 (11 -> 11 of 15; `bench/ask.py`).

A patch's colour (`dominant_color`) is its dominant chromatic term when that term holds at
least `CHROMATIC_MIN_SHARE` of the pixels (cars and clothes have grey glass, tyres,
shadows, and road showing through), else its dominant achromatic term.

>>> import numpy as np
>>> red = np.zeros((8, 8, 3), np.uint8); red[:] = (30, 30, 200)  # BGR
>>> color_shares(red)["red"]
1.0
>>> dominant_color(color_shares(red))
'red'
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

TERMS = (
    "black",
    "white",
    "grey",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
)
ACHROMATIC = ("black", "white", "grey")
CHROMATIC = tuple(t for t in TERMS if t not in ACHROMATIC)
INDEX = {t: i for i, t in enumerate(TERMS)}
# a patch is called by a chromatic term when that term holds this share of its pixels
CHROMATIC_MIN_SHARE = 0.3
LEVELS_PERCENTILES = (2.0, 98.0)  # a frame's value percentiles stretched to 0 and 255
MAX_LEVELS_GAIN = 2.0
# a frame whose darkest pixels are brighter than this has nothing black to anchor on (snow,
# a bright wall), one whose brightest are darker than `LEVELS_MIN_WHITE` nothing white
LEVELS_MAX_BLACK, LEVELS_MIN_WHITE = 64.0, 160.0
LEVELS_WIDTH = 64  # px: frames are shrunk to this width to read their levels


def name_pixels(hsv: np.ndarray) -> np.ndarray:
    """The colour term index (into `TERMS`) of each pixel of an 8-bit OpenCV HSV image.

    >>> import cv2
    >>> bgr = np.array([[[0, 0, 0], [255, 255, 255], [128, 128, 128], [0, 0, 255],
    ...                  [0, 128, 255], [0, 255, 255], [0, 200, 0], [255, 0, 0],
    ...                  [128, 0, 128], [200, 180, 255], [20, 60, 110]]], np.uint8)
    >>> names = [TERMS[i] for i in name_pixels(cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV))[0]]
    >>> names == list(TERMS[:3]) + list(CHROMATIC)
    True
    """
    h = hsv[..., 0].astype(np.float32) * 2.0  # degrees
    s = hsv[..., 1].astype(np.float32) / 255.0
    v = hsv[..., 2].astype(np.float32) / 255.0
    out = np.full(h.shape, INDEX["grey"], np.int64)
    # chromatic by hue
    out = np.where((h < 15) | (h >= 340), INDEX["red"], out)
    out = np.where((h >= 15) & (h < 40), INDEX["orange"], out)
    out = np.where((h >= 40) & (h < 70), INDEX["yellow"], out)
    out = np.where((h >= 70) & (h < 170), INDEX["green"], out)
    out = np.where((h >= 170) & (h < 260), INDEX["blue"], out)
    out = np.where((h >= 260) & (h < 290), INDEX["purple"], out)
    out = np.where((h >= 290) & (h < 340), np.where(v >= 0.6, INDEX["pink"], INDEX["purple"]), out)
    # brown: dark or greyish orange, dark yellow; pink: light, weakly saturated red
    out = np.where((out == INDEX["orange"]) & ((v < 0.6) | (s < 0.5)), INDEX["brown"], out)
    out = np.where((out == INDEX["yellow"]) & (v < 0.4), INDEX["brown"], out)
    out = np.where((out == INDEX["red"]) & (s < 0.5) & (v >= 0.7), INDEX["pink"], out)
    # achromatic: low saturation (more tolerance when dark), or just dark
    grey = (s < 0.2) | ((s < 0.3) & (v < 0.4))
    achromatic = np.where(
        v < 0.35, INDEX["black"], np.where(v >= 0.75, INDEX["white"], INDEX["grey"])
    )
    out = np.where(grey, achromatic, out)
    return np.where(v < 0.2, INDEX["black"], out)


Levels = tuple[float, float]
FULL_RANGE: Levels = (0.0, 255.0)


def frame_levels(bgr: np.ndarray) -> Levels:
    """The (black, white) value levels of a BGR frame: its `LEVELS_PERCENTILES` of value on
    a copy `LEVELS_WIDTH` px wide, black at most `LEVELS_MAX_BLACK` and white at least
    `LEVELS_MIN_WHITE`, widened around their middle when the stretch from them to 0..255
    would exceed `MAX_LEVELS_GAIN`.

    >>> frame = np.full((40, 80, 3), 60, np.uint8); frame[:, 40:] = 190  # dim road, pale car
    >>> frame_levels(frame)
    (60.0, 190.0)
    >>> frame_levels(np.full((40, 80, 3), 220, np.uint8))  # all bright: nothing is black
    (64.0, 220.0)
    >>> frame_levels(np.full((40, 80, 3), 100, np.uint8))  # flat: gain 2 at most
    (48.25, 175.75)
    """
    import cv2

    if bgr.size == 0:
        return FULL_RANGE
    h, w = bgr.shape[:2]
    if w > LEVELS_WIDTH:
        size = (LEVELS_WIDTH, max(1, round(h * LEVELS_WIDTH / w)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    value = np.ascontiguousarray(bgr).max(axis=2)  # HSV value
    lo, hi = (float(p) for p in np.percentile(value, LEVELS_PERCENTILES))
    lo, hi = min(lo, LEVELS_MAX_BLACK), max(hi, LEVELS_MIN_WHITE)
    span = 255.0 / MAX_LEVELS_GAIN
    if hi - lo < span:
        middle = (lo + hi) / 2
        lo, hi = middle - span / 2, middle + span / 2
    return round(lo, 2), round(hi, 2)


def color_counts(bgr: np.ndarray, max_side: int = 32, levels: Levels = FULL_RANGE) -> np.ndarray:
    """(11,) pixel counts per term of a BGR patch, shrunk to at most `max_side` px first;
    values stretched from `levels` (its frame's `frame_levels`) to 0..255.

    >>> patch = np.zeros((4, 4, 3), np.uint8); patch[:, :2] = 255  # half white, half black
    >>> color_counts(patch).tolist()[:3]
    [8, 8, 0]
    >>> pale = np.full((4, 4, 3), 175, np.uint8)  # grey at full range, white in a dim frame
    >>> [TERMS[int(np.argmax(color_counts(pale, levels=lv)))] for lv in [(0, 255), (40, 190)]]
    ['grey', 'white']
    """
    import cv2

    if bgr.size == 0:
        return np.zeros(len(TERMS), np.int64)
    h, w = bgr.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2HSV)
    lo, hi = levels
    if (lo, hi) != FULL_RANGE:
        value = (hsv[..., 2].astype(np.float32) - lo) * (255.0 / max(hi - lo, 1.0))
        hsv[..., 2] = np.clip(np.rint(value), 0, 255).astype(np.uint8)
    return np.bincount(name_pixels(hsv).reshape(-1), minlength=len(TERMS))


def color_shares(bgr: np.ndarray) -> dict[str, float]:
    """Share (0..1, summing to 1) of each term's pixels in a BGR patch; empty: {}.

    >>> patch = np.zeros((4, 4, 3), np.uint8); patch[:, :2] = (200, 60, 20)  # blue | black
    >>> color_shares(patch)
    {'black': 0.5, 'blue': 0.5}
    """
    counts = color_counts(bgr)
    return shares_of(counts)


def shares_of(counts: np.ndarray | list[float]) -> dict[str, float]:
    """Counts per term (in `TERMS` order) -> the non-zero shares, rounded to 4 places.

    >>> shares_of([3, 1] + [0] * 9)
    {'black': 0.75, 'white': 0.25}
    """
    arr = np.asarray(counts, np.float64)
    total = arr.sum()
    if total <= 0:
        return {}
    return {t: round(float(c / total), 4) for t, c in zip(TERMS, arr, strict=True) if c > 0}


def dominant_color(
    shares: Mapping[str, float], min_share: float = CHROMATIC_MIN_SHARE
) -> str | None:
    """The colour of a patch from its shares: its biggest chromatic term when that holds at
    least `min_share`, else its biggest achromatic term; None without pixels.

    >>> dominant_color({"grey": 0.5, "black": 0.2, "red": 0.3})
    'red'
    >>> dominant_color({"grey": 0.5, "black": 0.3, "red": 0.2})
    'grey'
    >>> dominant_color({}) is None
    True
    """
    if not shares:
        return None
    chromatic = max(CHROMATIC, key=lambda t: (shares.get(t, 0.0), -INDEX[t]))
    if shares.get(chromatic, 0.0) >= min_share:
        return chromatic
    return max(ACHROMATIC, key=lambda t: (shares.get(t, 0.0), -INDEX[t]))
