"""The query language: a compact filter syntax over tracks, parsed into a typed `Query`.

One string says what to find; `parse` turns it into a frozen `Query` and `Query.canonical()`
prints it back (`parse(q.canonical()) == q`). The CLI, the API, the dashboard and
`capstone.search.ask` all build a `Query` and run it with `capstone.search.tracks.find_tracks`.

Tokens (separated by spaces; a value with spaces goes in double quotes, `line:"gate A"`):

- a class name, its plural or a synonym: `car`, `cars`, `people` (person), `cyclists`
  (bicycle), `vehicles` (car, truck, bus, motorcycle); several classes mean any of them.
  Two-word COCO classes take an underscore: `traffic_light`.
- `color:red` (the 11 basic colour terms; `gray` is `grey`), `dir:left` (left right up down
  toward away static), `type:minivan` (fine type, an ImageNet label), `line:A` (crossed
  line), `zone:door` (zone dwelt in), `video:ID`: comma-separated values mean any of them
  (`color:red,white`).
- comparisons on `speed` (px/s), `speed_m_s` (m/s, with a ground calibration), `pace`
  (speed in the object's own heights per second: a walker is about 0.5-1, `pace>=1.3`
  runs; an anchor is not ranked by it), `conf`
  (mean detector confidence 0..1), `dur` (seconds in view; `dur>=2s`, `dur<1m`), `size`
  (box area / frame area 0..1), `pause` (the longest time it stood still while moving at
  other times, seconds: `pause>=2s`), `still` (the longest time it stood still, its whole
  time in view when it never moved: `still>=2s` is waiting or standing; an anchor is not
  ranked by it), `start` and `end` (the object's first and last moment
  in view, seconds of video: `start>=0:30` came after 0:30, `end<1m` had left before the
  first minute was over; with a minus, before each video's end: `end>=-0:20` left in the
  last 20 seconds), with `>`, `>=`, `<`, `<=` or `=`: `speed>40 conf>=0.5`.
- `t:FROM..TO` the time window (either side may be left out: `t:0:10..`, `t:..30s`);
  times are seconds (`10`, `10.5`, `10s`), `m:ss`/`h:mm:ss`, or `2m`, `1h`, `1m30s`. A
  time with a minus counts back from the end of each video: `t:-0:10..` is the last ten
  seconds, `t:..-1m` all but the last minute (a window counts from the start or from the
  end, not both). Percentages are shares of each video's length: `t:0%..50%` is the first
  half of each video, `t:90%..` its last tenth (a window is in times or in shares, not both).
- `during:bus` objects in view at some moment an object of the anchor (a class, a type,
  colours or directions; several words in quotes, `during:"car color:white"`) was;
  `after:bus` objects still in view after it left; `before:bus` objects in view before it
  came; `at_exit:bus` / `at_entry:bus` objects in view at the moment it left / came.
  Another plausible track must match in the same video. With `pause>=2s` in the anchor
  (`during:"bus pause>=2s"`) the times are those of its longest pause: while it stood;
  with `sort:` (`at_exit:"car sort:-speed"`) only the first object of each video in that
  order counts: when the fastest car left.
- `sort:speed` orders the tracks by a value, smallest first; `sort:-speed` largest first
  (`speed`, `speed_m_s`, `conf`, `dur`, `size`, `pause`, `start`, `end`: the first / last time in
  view); plausible tracks still come first. With `limit:1`: "the fastest car" is
  `car sort:-speed limit:1`.
- a minus before a class or a `key:value` filter excludes it: `vehicles -bus`, `car
  -color:white`, `person -dir:left`, `-line:A` (for `color`, `dir`, `type`: tracks
  whose value is unknown are kept; for `line`, `zone`: an object is left out when any
  of its tracks crossed / dwelt there).
- `all:true` also returns tracks that are not plausible (see `capstone.stages.attributes`);
  `limit:20` caps the number of tracks.
- any other word is a free text term (matched by the hybrid text/vector search).

>>> q = parse("cars color:red dir:left speed>40 t:0:10..0:30 line:A conf>=0.5 limit:20")
>>> q.classes, q.colors, q.directions, q.t_from, q.t_to
(('car',), ('red',), ('left',), 10.0, 30.0)
>>> q.canonical()
'car color:red dir:left speed>40 conf>=0.5 t:0:10..0:30 line:A limit:20'
>>> parse(q.canonical()) == q
True
>>> parse("vehicles").classes
('bus', 'car', 'motorcycle', 'truck')
>>> parse("speed>>4")
Traceback (most recent call last):
...
capstone.search.ql.QueryError: bad token 'speed>>4': speed needs a number after '>', got '>4'
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from capstone.errors import InputError

# The detector's classes (COCO 80, in their id order), as the default YOLO model names them.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip
COLORS: tuple[str, ...] = (
    "black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink",
    "brown",
)  # fmt: skip
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down", "toward", "away", "static")
NUMERIC_FIELDS: tuple[str, ...] = (
    "speed", "speed_m_s", "pace", "conf", "dur", "size", "pause", "still", "start", "end",
)  # fmt: skip
SORT_FIELDS: tuple[str, ...] = NUMERIC_FIELDS
# what an anchor's object is ranked by (`at_exit:"car sort:-speed"`): stored values only
RANK_FIELDS: tuple[str, ...] = tuple(f for f in NUMERIC_FIELDS if f not in ("pace", "still"))
# comparisons whose value is a time (`dur>=2s`, `start>=0:30`)
TIME_FIELDS: tuple[str, ...] = ("dur", "pause", "still", "start", "end")
OPS: tuple[str, ...] = (">=", "<=", ">", "<", "=")
# Times relative to another object (an anchor): in view while it was, after it left, before
# it came, at the moment it left, at the moment it came.
RELATIONS: tuple[str, ...] = ("during", "after", "before", "at_exit", "at_entry")
_SORT_PATTERN = r"^-?(" + "|".join(SORT_FIELDS) + r")$"
_RANK_PATTERN = r"^-?(" + "|".join(RANK_FIELDS) + r")$"
Relation = Literal["during", "after", "before", "at_exit", "at_entry"]
MAX_LIMIT = 1000

VEHICLES: tuple[str, ...] = ("bus", "car", "motorcycle", "truck")
# Words (lower case, singular or plural) naming one or several classes.
CLASS_WORDS: dict[str, tuple[str, ...]] = {
    "people": ("person",),
    "persons": ("person",),
    "pedestrian": ("person",),
    "pedestrians": ("person",),
    "human": ("person",),
    "humans": ("person",),
    "man": ("person",),
    "men": ("person",),
    "woman": ("person",),
    "women": ("person",),
    "child": ("person",),
    "children": ("person",),
    "kid": ("person",),
    "kids": ("person",),
    "walker": ("person",),
    "walkers": ("person",),
    "individuals": ("person",),
    "passersby": ("person",),
    "passers-by": ("person",),
    "visitors": ("person",),
    "commuters": ("person",),
    "shoppers": ("person",),
    "tourists": ("person",),
    "students": ("person",),
    "vehicle": VEHICLES,
    "vehicles": VEHICLES,
    "bike": ("bicycle",),
    "bikes": ("bicycle",),
    "cyclist": ("bicycle",),
    "cyclists": ("bicycle",),
    "motorbike": ("motorcycle",),
    "motorbikes": ("motorcycle",),
    "motorcyclist": ("motorcycle",),
    "motorcyclists": ("motorcycle",),
    "lorry": ("truck",),
    "lorries": ("truck",),
    "automobile": ("car",),
    "automobiles": ("car",),
    "plane": ("airplane",),
    "planes": ("airplane",),
    "aeroplane": ("airplane",),
    "aeroplanes": ("airplane",),
    "sofa": ("couch",),
    "sofas": ("couch",),
    "phone": ("cell phone",),
    "phones": ("cell phone",),
    "television": ("tv",),
    "televisions": ("tv",),
    "tvs": ("tv",),
    "mice": ("mouse",),
    "knives": ("knife",),
    "skis": ("skis",),
    "scissors": ("scissors",),
    "sheep": ("sheep",),
    "buses": ("bus",),
    "busses": ("bus",),
    "coaches": ("bus",),
    "coach": ("bus",),
}
COLOR_WORDS: dict[str, str] = {c: c for c in COLORS} | {"gray": "grey", "violet": "purple"}
DIRECTION_WORDS: dict[str, str] = {d: d for d in DIRECTIONS} | {
    "towards": "toward",
    "approaching": "toward",
    "receding": "away",
    "still": "static",
    "stationary": "static",
}
_KEYS = {
    "class": "classes",
    "color": "colors",
    "colour": "colors",
    "dir": "directions",
    "direction": "directions",
    "type": "types",
    "line": "lines",
    "zone": "zones",
    "video": "videos",
}
_CMP = re.compile(r"^([a-z_]+)(>=|<=|>|<|=)(.*)$")
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_WORD = re.compile(r"^[^\W_][\w'\-]*$")
_NUMBER = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")
_MAX_VALUE = 128

Op = Literal[">", ">=", "<", "<=", "="]
NumericField = Literal[
    "speed", "speed_m_s", "pace", "conf", "dur", "size", "pause", "still", "start", "end"
]


class QueryError(InputError):
    """A query string that does not parse: its message names the bad token."""


class Condition(BaseModel):
    """One numeric comparison, e.g. `speed > 40`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: NumericField
    op: Op
    value: float = Field(allow_inf_nan=False)

    def canonical(self) -> str:
        value = _clock(self.value) if self.field in ("start", "end") else _num(self.value)
        return f"{self.field}{self.op}{value}"


class Values(BaseModel):
    """The values of the list filters (any of them matches; empty: no filter), normalised:
    sorted and de-duplicated, so equal filters compare equal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    classes: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()

    def model_post_init(self, _context: object) -> None:
        for name in LIST_FIELDS:
            values = getattr(self, name)
            for v in values:
                if not v or v != v.strip() or '"' in v or "," in v:
                    raise ValueError(f"{name}: {v!r} is empty, padded or has a quote or comma")
            object.__setattr__(self, name, tuple(sorted(set(values))))

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in LIST_FIELDS)

    def tokens(self, prefix: str = "") -> dict[str, list[str]]:
        """Per field, its tokens in the query language (`prefix` before each: `-`)."""
        out = {"classes": [prefix + c.replace(" ", "_") for c in self.classes]}
        for name, key in _LIST_KEYS.items():
            values = getattr(self, name)
            out[name] = [f"{prefix}{key}:{','.join(_quote(v) for v in values)}"] if values else []
        return out


LIST_FIELDS: tuple[str, ...] = tuple(Values.model_fields)
ANCHOR_FIELDS: tuple[str, ...] = ("classes", "types", "colors", "directions")


class Anchor(BaseModel):
    """Another object a query's times are relative to: `during:bus` is `Anchor("during",
    Values(classes=("bus",)))`. With `stopped` (`during:"bus pause>=2s"`), an object that
    paused that long, and its times are those of its pause: while it was stopped, after it
    moved on, before / when it stopped. With `rank` (`at_exit:"car sort:-speed"`), only
    the first object of each video in that order: when the fastest car left."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    relation: Relation
    of: Values
    stopped: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    rank: str | None = Field(default=None, pattern=_RANK_PATTERN)

    def model_post_init(self, _context: object) -> None:
        if self.of.is_empty() or any(
            getattr(self.of, name) for name in LIST_FIELDS if name not in ANCHOR_FIELDS
        ):
            raise ValueError(
                f"{self.relation}: takes a class, type, colour or direction of another object"
            )

    def canonical(self) -> str:
        tokens = self.of.tokens()
        words = [t for name in ANCHOR_FIELDS for t in tokens[name]]
        if self.stopped is not None:
            words.append(Condition(field="pause", op=">=", value=self.stopped).canonical())
        if self.rank is not None:
            words.append(f"sort:{self.rank}")
        return f"{self.relation}:{_quote(' '.join(words))}"


_LIST_KEYS = {
    "types": "type",
    "colors": "color",
    "directions": "dir",
    "lines": "line",
    "zones": "zone",
    "videos": "video",
}


class Query(Values):
    """What to find: filters on tracks (classes, attributes, time, lines, zones, videos),
    the values to exclude (`without`) and free text. Empty fields do not filter. Build it
    with `parse`, or directly (then it is normalised: values sorted and de-duplicated, so
    equal queries compare equal).

    >>> Query(classes=("person",), colors=("white", "red")).canonical()
    'person color:red,white'
    >>> Query(classes=("car",), without=Values(colors=("white",))).canonical()
    'car -color:white'
    """

    without: Values = Values()
    conditions: tuple[Condition, ...] = ()
    t_from: float | None = Field(
        default=None, allow_inf_nan=False, description="seconds; negative: before the end"
    )
    t_to: float | None = Field(
        default=None, allow_inf_nan=False, description="seconds; negative: before the end"
    )
    t_share: bool = Field(
        default=False,
        description="`t_from` / `t_to` are percentages of each video's length (0..100)",
    )
    text: tuple[str, ...] = ()
    sort: str | None = Field(
        default=None,
        pattern=_SORT_PATTERN,
        description="a `SORT_FIELDS` name, smallest first; with a leading `-`, largest first",
    )
    anchors: tuple[Anchor, ...] = Field(
        default=(), description="times relative to other objects (`during:bus`)"
    )
    all: bool = False
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT)

    def model_post_init(self, _context: object) -> None:
        anchors = sorted(
            set(self.anchors), key=lambda x: (RELATIONS.index(x.relation), x.canonical())
        )
        object.__setattr__(self, "anchors", tuple(anchors))
        lo, hi = self.t_from, self.t_to
        if self.t_share:
            if lo is None and hi is None:
                object.__setattr__(self, "t_share", False)
            elif any(v is not None and not 0 <= v <= 100 for v in (lo, hi)):
                raise ValueError("a share of the video is a percentage from 0 to 100")
        if lo is not None and hi is not None:
            if (lo < 0) != (hi < 0):
                raise ValueError("a time window counts from the start or from the end, not both")
            if lo > hi:
                unit = "%" if self.t_share else " s"
                raise ValueError(f"bad time window: {lo:g}{unit} is after {hi:g}{unit}")
        super().model_post_init(_context)
        order = {f: i for i, f in enumerate(NUMERIC_FIELDS)}
        conds = sorted(
            set(self.conditions), key=lambda c: (order[c.field], OPS.index(c.op), c.value)
        )
        object.__setattr__(self, "conditions", tuple(conds))
        object.__setattr__(self, "text", tuple(dict.fromkeys(t.lower() for t in self.text)))

    def canonical(self) -> str:
        """The query as a string `parse` reads back to an equal `Query`."""
        given, excluded = self.tokens(), self.without.tokens("-")
        parts: list[str] = []
        for name in ("classes", "types", "colors", "directions"):
            parts += given[name] + excluded[name]
        parts += [c.canonical() for c in self.conditions]
        if self.t_from is not None or self.t_to is not None:
            time = (lambda v: _num(v) + "%") if self.t_share else _clock
            lo = time(self.t_from) if self.t_from is not None else ""
            hi = time(self.t_to) if self.t_to is not None else ""
            parts.append(f"t:{lo}..{hi}")
        parts += [anchor.canonical() for anchor in self.anchors]
        for name in ("lines", "zones", "videos"):
            parts += given[name] + excluded[name]
        parts += [_quote(t) for t in self.text]
        if self.sort is not None:
            parts.append(f"sort:{self.sort}")
        if self.all:
            parts.append("all:true")
        if self.limit is not None:
            parts.append(f"limit:{self.limit}")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.canonical()

    def is_empty(self) -> bool:
        """True when nothing filters and no text is given (every track matches)."""
        return self == Query(all=self.all, limit=self.limit, sort=self.sort)

    def filters_only(self) -> Query:
        """The same query without its free text terms."""
        return self.model_copy(update={"text": ()})


def _num(value: float) -> str:
    """A number as the shortest text that reads back to the same float."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _clock(seconds: float) -> str:
    """Whole seconds as m:ss or h:mm:ss, others as plain seconds (both parse back);
    negative ones (before the end) with a minus."""
    if seconds < 0:
        return "-" + _clock(-seconds)
    if seconds != int(seconds) or seconds >= 10**7:
        return _num(seconds)
    s = int(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _quote(value: str) -> str:
    if _PLAIN_VALUE.match(value) and value.lower() not in ("all", "limit"):
        return value
    return '"' + value + '"'


def parse_time(text: str) -> float:
    """Seconds from `10`, `10.5`, `10s`, `2m`, `1m30s`, `1h`, `0:10` or `1:02:03`.

    >>> [parse_time(t) for t in ("10", "0:10", "1:02:03", "10s", "2m", "1m30s", "1.5h")]
    [10.0, 10.0, 3723.0, 10.0, 120.0, 90.0, 5400.0]
    """
    t = text.strip().lower()
    if _NUMBER.match(t):
        value = float(t)
    elif ":" in t:
        parts = t.split(":")
        if len(parts) > 3 or not all(re.fullmatch(r"\d+(\.\d+)?", p) for p in parts):
            raise ValueError(f"not a time: {text!r}")
        value = 0.0
        for p in parts:
            value = value * 60 + float(p)
        if any(float(p) >= 60 for p in parts[1:]):
            raise ValueError(f"not a time: {text!r} (minutes and seconds go up to 59)")
    else:
        m = _DURATION.match(t)
        if not t or m is None or not any(m.groups()):
            raise ValueError(f"not a time: {text!r} (try 10, 10s, 2m, 0:10 or 1:02:03)")
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        value = h * 3600 + mi * 60 + s
    if not math.isfinite(value) or value > 10**9:
        raise ValueError(f"not a time: {text!r}")
    return value


def _window_time(text: str) -> float:
    """A time of `t:` in seconds; with a leading minus, counted back from the video's end;
    with a trailing `%`, a percentage of the video's length.

    >>> _window_time("0:10"), _window_time("-1m"), _window_time("50%")
    (10.0, -60.0, 50.0)
    """
    if text.endswith("%"):
        if not _NUMBER.match(text[:-1]) or not 0 <= float(text[:-1]) <= 100:
            raise ValueError(f"not a share of the video: {text!r} (0% to 100%)")
        return float(text[:-1])
    if text.startswith("-"):
        value = parse_time(text[1:])
        if value == 0:
            raise ValueError("-0 is not a time before the end; leave that side out")
        return -value
    return parse_time(text)


def class_of_word(word: str) -> tuple[str, ...] | None:
    """The classes a (lower-case) word names, singular or plural, or None.

    >>> class_of_word("buses"), class_of_word("people"), class_of_word("trains")
    (('bus',), ('person',), ('train',))
    >>> class_of_word("cyclists"), class_of_word("traffic_lights"), class_of_word("street")
    (('bicycle',), ('traffic light',), None)
    """
    w = word.lower().replace("_", " ")
    if w in CLASS_WORDS:
        return CLASS_WORDS[w]
    if w in _COCO_SET:
        return (w,)
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) > len(suffix) + 1:
            stem = w[: -len(suffix)] + repl
            if stem in _COCO_SET:
                return (stem,)
            if stem in CLASS_WORDS:
                return CLASS_WORDS[stem]
    return None


_COCO_SET = frozenset(COCO_CLASSES)


def tokenize(text: str) -> list[str]:
    """Split on whitespace; double quotes keep spaces inside a token (and are removed).

    >>> tokenize('car line:"gate A"  t:0:10..')
    ['car', 'line:gate A', 't:0:10..']
    """
    tokens: list[str] = []
    cur: list[str] = []
    quoted = False
    started = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            started = True
        elif ch.isspace() and not quoted:
            if started:
                tokens.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if quoted:
        raise QueryError(f"unbalanced double quote in {text[-40:]!r}")
    if started:
        tokens.append("".join(cur))
    return tokens


def parse(text: str, *, max_chars: int | None = None) -> Query:
    """Parse a query string (see the module docstring) into a `Query`.

    Raises `QueryError` (an `InputError`: HTTP 422, CLI exit code 4) naming the first bad
    token; a string over `max_chars` (default: the `MAX_QUERY_CHARS` setting) is refused.

    >>> parse("people t:..30s all:true").canonical()
    'person t:..0:30 all:true'
    """
    if max_chars is None:
        from capstone.config import get_settings

        max_chars = get_settings().max_query_chars
    if len(text) > max_chars:
        raise QueryError(
            f"the query has {len(text)} characters, above the limit of {max_chars} "
            "(MAX_QUERY_CHARS)"
        )
    if any(ord(c) < 32 and not c.isspace() for c in text):
        raise QueryError("the query contains control characters")
    fields: dict[str, object] = {}
    lists: dict[str, list[str]] = {k: [] for k in LIST_FIELDS}
    excluded: dict[str, list[str]] = {k: [] for k in LIST_FIELDS}
    conditions: list[Condition] = []
    words: list[str] = []
    anchors: list[Anchor] = []
    fields["anchors"] = anchors
    tokens = tokenize(text)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        try:
            # two-word class names written as two words ("traffic light")
            if i < len(tokens) and ":" not in token and ":" not in tokens[i]:
                pair = class_of_word(f"{token} {tokens[i]}")
                if pair is not None and " " in pair[0]:
                    lists["classes"] += pair
                    i += 1
                    continue
            if token.startswith("-") and token[1:2].isalpha():
                _parse_exclusion(token[1:], excluded)
            else:
                _parse_token(token, fields, lists, conditions, words)
        except QueryError:
            raise
        except ValueError as exc:
            raise QueryError(f"bad token {token!r}: {_reason(exc)}") from None
    lo, hi = fields.get("t_from"), fields.get("t_to")
    if isinstance(lo, float) and isinstance(hi, float) and lo > hi:
        unit = "%" if fields.get("t_share") else " s"
        raise QueryError(f"bad time window: {lo:g}{unit} is after {hi:g}{unit}")
    try:
        return Query(
            **fields,  # type: ignore[arg-type]
            **lists,
            without=Values(**excluded),  # type: ignore[arg-type]
            conditions=tuple(conditions),
            text=tuple(words),
        )
    except ValueError as exc:
        raise QueryError(f"bad query: {_reason(exc)}") from None


def _reason(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg")).removeprefix("Value error, ")
        return f"{where}: {msg}" if where else msg
    return str(exc)


def _values(token: str, raw: str) -> list[str]:
    values = [v.strip() for v in raw.split(",")]
    if not raw or any(not v for v in values):
        raise ValueError("expected a value after ':' (several: comma-separated)")
    for v in values:
        if len(v) > _MAX_VALUE:
            raise ValueError(f"a value is longer than {_MAX_VALUE} characters")
    return values


def _parse_token(
    token: str,
    fields: dict[str, object],
    lists: dict[str, list[str]],
    conditions: list[Condition],
    words: list[str],
) -> None:
    lower = token.lower()
    cmp = _CMP.match(lower)
    if cmp and cmp.group(1) in NUMERIC_FIELDS:
        name, op, raw = cmp.groups()
        if name in TIME_FIELDS:
            back = name in ("start", "end") and raw.startswith("-")  # before the video's end
            try:
                value = -parse_time(raw[1:]) if back else parse_time(raw)
            except ValueError:
                raise ValueError(f"{name} needs a time after {op!r}, got {raw!r}") from None
            if back and value == 0:
                raise ValueError(f"{name}: count back a time from the end, e.g. {name}>=-0:10")
        else:
            if not _NUMBER.match(raw):
                raise ValueError(f"{name} needs a number after {op!r}, got {raw!r}")
            value = float(raw)
            if name in ("conf", "size") and value > 1:
                raise ValueError(f"{name} is a fraction between 0 and 1, got {raw}")
        conditions.append(Condition(field=name, op=op, value=value))  # type: ignore[arg-type]
        return
    if cmp and ":" not in lower.split(cmp.group(2))[0]:
        raise ValueError(
            f"unknown field {cmp.group(1)!r} (comparisons: {', '.join(NUMERIC_FIELDS)})"
        )
    key, sep, raw = token.partition(":")
    if sep:
        key = key.lower()
        if key in _KEYS:
            values = _values(token, raw)
            target = _KEYS[key]
            for v in values:
                lists[target] += _normalise(target, v)
        elif key == "t":
            lo, dots, hi = raw.partition("..")
            if not dots:
                raise ValueError("expected t:FROM..TO (either side may be empty)")
            if not lo and not hi:
                raise ValueError("t: needs a start or an end")
            shares = {side.endswith("%") for side in (lo, hi) if side}
            if len(shares) > 1:
                raise ValueError("a window is in times or in shares of the video (%), not both")
            fields["t_share"] = shares == {True}
            fields.pop("t_from", None), fields.pop("t_to", None)  # the last window holds
            if lo:
                fields["t_from"] = _window_time(lo)
            if hi:
                fields["t_to"] = _window_time(hi)
        elif key in RELATIONS:
            anchors = fields["anchors"]
            assert isinstance(anchors, list)
            anchors.append(_anchor(key, raw))
        elif key == "limit":
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
                raise ValueError(f"limit is a whole number from 1 to {MAX_LIMIT}")
            fields["limit"] = int(raw)
        elif key == "sort":
            if raw.lower().removeprefix("-") not in SORT_FIELDS:
                raise ValueError(
                    f"sort: takes {', '.join(SORT_FIELDS)} (largest first: a leading '-')"
                )
            fields["sort"] = raw.lower()
        elif key == "all":
            if raw.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError("all: takes true or false")
            fields["all"] = raw.lower() in ("true", "yes", "1")
        else:
            raise ValueError(
                f"unknown key {key!r} (keys: class, color, dir, type, line, zone, video, t, "
                f"{', '.join(RELATIONS)}, sort, all, limit; comparisons: "
                f"{', '.join(NUMERIC_FIELDS)})"
            )
        return
    classes = class_of_word(lower)
    if classes is not None:
        lists["classes"] += classes
        return
    if not _WORD.match(token) or len(token) > _MAX_VALUE:
        raise ValueError("not a word, a class, key:value or a comparison")
    words.append(lower)


def _anchor(relation: str, raw: str) -> Anchor:
    """An anchor's value (`during:`, `after:`, ... `RELATIONS`): classes, types, colours,
    directions, and `pause>=SECONDS` and `sort:FIELD`.

    >>> _anchor("after", "white type:minivan,pickup").canonical()
    'after:"type:minivan,pickup color:white"'
    """
    if not raw.strip():
        raise ValueError(f"{relation}: needs another object, e.g. {relation}:bus")
    lists: dict[str, list[str]] = {k: [] for k in LIST_FIELDS}
    stopped: float | None = None
    rank: str | None = None
    for word in tokenize(raw):
        key, sep, value = word.partition(":")
        if sep and key.lower() == "sort":
            if value.lower().removeprefix("-") not in RANK_FIELDS:
                raise ValueError(f"{relation}: sort: takes {', '.join(RANK_FIELDS)}")
            rank = value.lower()
        elif word.lower().startswith("pause>="):
            try:
                stopped = parse_time(word[len("pause>=") :])
            except ValueError:
                raise ValueError(f"{relation}: pause>= needs a time, got {word!r}") from None
            if stopped <= 0:
                raise ValueError(f"{relation}: pause>= needs a time above 0")
        elif sep and key.lower() in _KEYS and _KEYS[key.lower()] in ANCHOR_FIELDS:
            target = _KEYS[key.lower()]
            for v in _values(word, value):
                lists[target] += _normalise(target, v)
        elif not sep and (classes := class_of_word(word)) is not None:  # "orange": fruit
            lists["classes"] += classes
        elif not sep and word.lower() in COLOR_WORDS:
            lists["colors"].append(COLOR_WORDS[word.lower()])
        else:
            raise ValueError(
                f"{relation}: takes a class, type, colour or direction of another object "
                f"(and pause>=SECONDS, sort:FIELD), not {word!r}"
            )
    of = Values(**lists)  # type: ignore[arg-type]
    return Anchor(relation=relation, of=of, stopped=stopped, rank=rank)  # type: ignore[arg-type]


def _parse_exclusion(token: str, excluded: dict[str, list[str]]) -> None:
    """`token` without its minus: a class or a list filter's `key:values` to exclude."""
    key, sep, raw = token.partition(":")
    if sep and key.lower() in _KEYS:
        target = _KEYS[key.lower()]
        for v in _values(token, raw):
            excluded[target] += _normalise(target, v)
        return
    classes = class_of_word(token.lower()) if not sep else None
    if classes is None:
        raise ValueError(
            "a minus excludes a class or a class, color, dir, type, line, zone or video "
            "filter (`-truck`, `-color:red`)"
        )
    excluded["classes"] += classes


def _normalise(target: str, value: str) -> list[str]:
    v = value.lower()
    if target == "classes":
        classes = class_of_word(v)
        if classes is None:
            raise ValueError(f"{value!r} is not a detector class")
        return list(classes)
    if target == "colors":
        if v not in COLOR_WORDS:
            raise ValueError(f"{value!r} is not a colour ({', '.join(COLORS)})")
        return [COLOR_WORDS[v]]
    if target == "directions":
        if v not in DIRECTION_WORDS:
            raise ValueError(f"{value!r} is not a direction ({', '.join(DIRECTIONS)})")
        return [DIRECTION_WORDS[v]]
    if target == "types":
        if not re.fullmatch(r"[a-z][a-z0-9_\-']*", v.replace(" ", "_")):
            raise ValueError(f"{value!r} is not a type name (an ImageNet label like minivan)")
        return [v.replace(" ", "_")]
    if any(ord(c) < 32 for c in value):
        raise ValueError("control characters in a value")
    return [value]
