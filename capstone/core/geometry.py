"""Image geometry: box overlap (IoU), and counting lines and zones (parsing, segment
crossing, point in polygon).

Coordinates are pixels of the analysed frame, x to the right and y down.

A line is a segment from `p1` to `p2` with two direction names. `directions[0]` names a
crossing towards the left-hand side of p1 -> p2 as seen on screen (for a line drawn left to
right, that is *up* the screen), `directions[1]` the opposite one. Without names, crossings
are called after the screen direction of the motion across the line: northbound (up),
southbound (down), eastbound (right) or westbound (left).

>>> line = Line("A", (0.0, 100.0), (320.0, 100.0))
>>> line.crossing((50.0, 150.0), (60.0, 40.0))  # from below to above: moves up the screen
(0, 0.45454545454545453)
>>> line.direction_name(0)
'northbound'
>>> parse_line_spec("B:0,120,320,120:in,out")["directions"]
['in', 'out']
>>> points_in_polygon([[5, 5], [20, 5]], [[0, 0], [10, 0], [10, 10], [0, 10]]).tolist()
[True, False]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capstone.errors import ConfigError

Point = tuple[float, float]


@dataclass(frozen=True)
class Line:
    """A counting line (segment) with optional names for its two crossing directions."""

    name: str
    p1: Point
    p2: Point
    directions: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.p1 == self.p2:
            raise ConfigError(f"line {self.name!r}: its two points are the same")

    def side(self, point: Point) -> float:
        """Signed side of `point`: > 0 on the left-hand side of p1 -> p2 as seen on screen."""
        dx, dy = self.p2[0] - self.p1[0], self.p2[1] - self.p1[1]
        return dy * (point[0] - self.p1[0]) - dx * (point[1] - self.p1[1])

    def crossing(self, a: Point, b: Point) -> tuple[int, float] | None:
        """Does the path a -> b cross this segment? `(direction index, fraction along a->b)`.

        The sides are half-open (a point exactly on the line counts as the left-hand side),
        so a path that touches the line and goes on is counted once, not twice.
        """
        sa, sb = self.side(a), self.side(b)
        if (sa >= 0) == (sb >= 0):
            return None
        t = sa / (sa - sb)  # where a -> b meets the infinite line
        x = a[0] + t * (b[0] - a[0])
        y = a[1] + t * (b[1] - a[1])
        dx, dy = self.p2[0] - self.p1[0], self.p2[1] - self.p1[1]
        u = ((x - self.p1[0]) * dx + (y - self.p1[1]) * dy) / (dx * dx + dy * dy)
        if not 0.0 <= u <= 1.0:
            return None
        return (0 if sb >= 0 else 1), t

    def direction_name(self, index: int) -> str:
        """The name of a crossing in direction `index` (0: to the left-hand side)."""
        if self.directions:
            return self.directions[index]
        dx, dy = self.p2[0] - self.p1[0], self.p2[1] - self.p1[1]
        nx, ny = (dy, -dx) if index == 0 else (-dy, dx)  # the motion's side of the normal
        if abs(ny) >= abs(nx):
            return "northbound" if ny < 0 else "southbound"
        return "eastbound" if nx > 0 else "westbound"


@dataclass(frozen=True)
class Zone:
    """A polygon; tracks staying inside longer than `dwell_seconds` make `dwell` events."""

    name: str
    polygon: tuple[Point, ...]
    dwell_seconds: float | None = None

    def __post_init__(self) -> None:
        if len(self.polygon) < 3:
            raise ConfigError(f"zone {self.name!r}: a polygon needs at least 3 points")
        if self.dwell_seconds is not None and self.dwell_seconds < 0:
            raise ConfigError(f"zone {self.name!r}: dwell_seconds must be >= 0")

    def contains(self, points: np.ndarray) -> np.ndarray:
        return points_in_polygon(points, self.polygon)


def points_in_polygon(points: Any, polygon: Any) -> np.ndarray:
    """Even-odd rule, vectorized over points: (N, 2) -> (N,) bool."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    hits = straddles & (x < x_cross)
    return (hits.sum(axis=1) % 2) == 1


# -- boxes ----------------------------------------------------------------------------------


def box_iou(a: Any, b: Any) -> np.ndarray:
    """Pairwise IoU of (n, 4) and (m, 4) `xyxy` boxes: an (n, m) array.

    >>> box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10]]).round(2).tolist()
    [[1.0, 0.33]]
    """
    a, b = _boxes(a), _boxes(b)
    return _iou(a[:, None], b[None, :])


def box_iou_pairs(a: Any, b: Any) -> np.ndarray:
    """IoU of each box of (n, 4) `xyxy` boxes `a` with the box in the same row of `b`: (n,).

    >>> box_iou_pairs([[0, 0, 10, 10], [0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10]])
    array([1.        , 0.33333333])
    """
    return _iou(_boxes(a), _boxes(b))


def crop_box(image: np.ndarray, xyxy: Any) -> np.ndarray | None:
    """A copy of the pixels of `image` under box `xyxy`, clipped to the image; None when
    less than 2 x 4 pixels remain.

    >>> crop_box(np.zeros((20, 30, 3), np.uint8), [25.4, 2, 40, 12.6]).shape
    (11, 5, 3)
    """
    h, w = image.shape[:2]
    x1, y1 = max(0, int(xyxy[0])), max(0, int(xyxy[1]))
    x2, y2 = min(w, round(xyxy[2])), min(h, round(xyxy[3]))
    if x2 - x1 < 2 or y2 - y1 < 4:
        return None
    return image[y1:y2, x1:x2].copy()


def _boxes(value: Any) -> np.ndarray:
    return np.asarray(value, np.float64).reshape(-1, 4)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of `xyxy` boxes in the last axis of `a` and `b`, broadcast over the others."""
    x1, y1 = np.maximum(a[..., 0], b[..., 0]), np.maximum(a[..., 1], b[..., 1])
    x2, y2 = np.minimum(a[..., 2], b[..., 2]), np.minimum(a[..., 3], b[..., 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


# -- configuration: dicts (options / YAML / JSON) and short CLI specs -----------------------


def _point(value: Any, where: str) -> Point:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: a point must be [x, y], got {value!r}") from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ConfigError(f"{where}: point {value!r} is not finite")
    return x, y


def _name(spec: dict[str, Any], kind: str, index: int) -> str:
    name = spec.get("name", f"{kind}{index + 1}")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{kind} #{index + 1}: name must be a non-empty string")
    return name.strip()


def line_from_dict(spec: Any, index: int = 0) -> Line:
    """`{"name": "A", "points": [[x1, y1], [x2, y2]], "directions": ["in", "out"]}`."""
    if not isinstance(spec, dict):
        raise ConfigError(f"line #{index + 1}: expected a mapping, got {type(spec).__name__}")
    name = _name(spec, "line", index)
    points = spec.get("points")
    if not isinstance(points, list | tuple) or len(points) != 2:
        raise ConfigError(f"line {name!r}: 'points' must be two [x, y] points")
    directions = spec.get("directions")
    if directions is not None:
        if (
            not isinstance(directions, list | tuple)
            or len(directions) != 2
            or not all(isinstance(d, str) and d for d in directions)
        ):
            raise ConfigError(f"line {name!r}: 'directions' must be two names")
        directions = (directions[0], directions[1])
    p1, p2 = (_point(p, f"line {name!r}") for p in points)
    return Line(name, p1, p2, directions)


def zone_from_dict(spec: Any, index: int = 0, default_dwell: float | None = None) -> Zone:
    """`{"name": "Z", "polygon": [[x, y], ...], "dwell_seconds": 5}`."""
    if not isinstance(spec, dict):
        raise ConfigError(f"zone #{index + 1}: expected a mapping, got {type(spec).__name__}")
    name = _name(spec, "zone", index)
    polygon = spec.get("polygon")
    if not isinstance(polygon, list | tuple):
        raise ConfigError(f"zone {name!r}: 'polygon' must be a list of [x, y] points")
    dwell = spec.get("dwell_seconds", default_dwell)
    if dwell is not None:
        try:
            dwell = float(dwell)
        except (TypeError, ValueError):
            raise ConfigError(f"zone {name!r}: dwell_seconds must be a number") from None
    return Zone(name, tuple(_point(p, f"zone {name!r}") for p in polygon), dwell)


def _numbers(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{what}: expected comma-separated numbers, got {text!r}") from None


def parse_line_spec(text: str) -> dict[str, Any]:
    """`NAME:x1,y1,x2,y2[:dir0,dir1]` (the CLI's `--line`) -> a line dict."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ConfigError(f"--line {text!r}: expected NAME:x1,y1,x2,y2[:dir0,dir1]")
    values = _numbers(parts[1], f"--line {text!r}")
    if len(values) != 4:
        raise ConfigError(f"--line {text!r}: expected 4 coordinates, got {len(values)}")
    spec: dict[str, Any] = {"name": parts[0], "points": [values[:2], values[2:]]}
    if len(parts) == 3:
        spec["directions"] = parts[2].split(",")
    line_from_dict(spec)  # validate now, with the CLI's wording
    return spec


def parse_zone_spec(text: str) -> dict[str, Any]:
    """`NAME:x1,y1,x2,y2,x3,y3[,...][:dwell_seconds]` (the CLI's `--zone`) -> a zone dict."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ConfigError(f"--zone {text!r}: expected NAME:x1,y1,x2,y2,x3,y3[:dwell_seconds]")
    values = _numbers(parts[1], f"--zone {text!r}")
    if len(values) < 6 or len(values) % 2:
        raise ConfigError(f"--zone {text!r}: expected at least 3 x,y pairs")
    spec: dict[str, Any] = {
        "name": parts[0],
        "polygon": [values[i : i + 2] for i in range(0, len(values), 2)],
    }
    if len(parts) == 3:
        spec["dwell_seconds"] = _numbers(parts[2], f"--zone {text!r}")[0]
    zone_from_dict(spec)
    return spec


def load_geometry(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Read lines and zones from a YAML or JSON file.

    The file holds `lines:` and/or `zones:` lists in the dict format above (a bare list is
    read as lines). Returns `{"lines": [...], "zones": [...]}`, validated, ready to go into
    `AnalysisParams.options`.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read geometry file ({exc.strerror})") from None
    import yaml

    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML/JSON ({first})") from None
    if isinstance(data, list):
        data = {"lines": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'lines' and/or 'zones'")
    unknown = set(data) - {"lines", "zones"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    out: dict[str, list[dict[str, Any]]] = {}
    for key, parse in (("lines", line_from_dict), ("zones", zone_from_dict)):
        items = data.get(key) or []
        if not isinstance(items, list):
            raise ConfigError(f"{path}: '{key}' must be a list")
        for i, item in enumerate(items):
            parse(item, i)
        out[key] = items
    return out


def lines_from_options(options: dict[str, Any]) -> list[Line]:
    lines = [line_from_dict(spec, i) for i, spec in enumerate(options.get("lines") or [])]
    names = [line.name for line in lines]
    if len(set(names)) != len(names):
        raise ConfigError("line names must be unique")
    return lines


def zones_from_options(options: dict[str, Any]) -> list[Zone]:
    default = options.get("dwell_seconds")
    zones = [zone_from_dict(spec, i, default) for i, spec in enumerate(options.get("zones") or [])]
    names = [zone.name for zone in zones]
    if len(set(names)) != len(names):
        raise ConfigError("zone names must be unique")
    return zones
