"""English questions mapped onto the query language: `understand("how many people walked
left between 0:10 and 0:30?")` -> `Understood(kind="count", query=person dir:left t:0:10..0:30)`.

Deterministic: the same words give the same query. The kind from the first words (*how many
/ count / number of* -> count, *when / what time* -> when, *where* -> where, anything else ->
which), numbers and times in digits or words (*ten*, *the first 30 seconds*, *between 0:10
and 0:30*, *after 1 minute*, *before 20s*, *the last 10 seconds*: `t:-0:10..`), colour
words, direction words (*left*, *from left to right*, *towards the camera*, *away*), class
names with plurals and synonyms (*people*, *pedestrians*, *vehicles*, *cyclists*; a
question starting with *who* is about people), fine types (*minivan*, *pickup*, *police
van*), *line A*, *zone door*, *faster than 40*, *for more than 5 seconds*, superlatives
(*the fastest car*: `car sort:-speed limit:1`; *the last person to leave*: `person
sort:-end limit:1`), and several objects joined by *and* (`Understood.parts`). Words it
cannot map are kept as free text (`Understood.unmapped`).

*not*, *except*, *other than* (also *didn't*, *never*, *neither ... nor*) exclude the class,
colour, direction, type, line or zone right after them (*people who did not walk left*:
`person -dir:left`; *vehicles except buses*: `car motorcycle truck`). A question opening
with *is / are / was / were / did / does / has* and asking nothing else (*were there any
trucks?*, *did anyone walk left after 1:00?*) is counted and answered yes or no
(`Understood.yes_no`); about the one object a superlative finds (*was the fastest car
red?*), what is said after its noun is checked on it (`Understood.check`). *By colour*, *in
each direction*, *the most common type*, *which way did most people go* count the objects
per value (`Understood.by`); *more ... or / than ...* compares two values
(`Understood.compare`).

The steps: `_kind` (from the first words), `_form` (how it asks: at once, per period, by a
value, a value per object or averaged), `_filters` (what it is about: one pass over the
words, where negations are handled and each `_READERS` function reads one kind of phrase:
windows, rankings, a moment, amounts, places, directions, kinds and colours), then
`_compared` and `_yes_no`.

Forms beside the query: *how many ... at once* (*at the same time*, *the maximum number
of*; also *when were the most people in view*, *the busiest moment*) asks for the most in
view at one moment (`Understood.at_once`); *how fast / how long / how big* and *what
colour / which direction* for that value of each object (`Understood.measure`); *per
minute / every 10 seconds* for a count per period (`Understood.per`); *the average speed*,
*how long on average* for that value over the objects (`Understood.average`); *on average,
how many ... in view*, *how busy / crowded* for how many at a time, averaged over the window
(`Understood.occupancy`); *how long is the video* for its length (`Understood.length`).
Coming and going with a window (*arrived after 0:30*, *left in the last 20 seconds*) bound
when the objects came or went (`start`, `end`), not when they were in view (`_arrivals`).
`capstone.search.ask` answers the result.

>>> u = understand("How many people walked left between 0:10 and 0:30?")
>>> u.kind, u.query.canonical()
('count', 'person dir:left t:0:10..0:30')
>>> understand("show me every red car going towards the camera").query.canonical()
'car color:red dir:toward'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

from capstone.search.ql import (
    COLOR_WORDS,
    DIRECTION_WORDS,
    MAX_LIMIT,
    Anchor,
    Condition,
    Query,
    Values,
    class_of_word,
    parse,
    parse_time,
)

Kind = Literal["count", "when", "which", "where"]
Measure = Literal["speed", "dur", "size", "color", "direction", "pause"]
Breakdown = Literal["class", "color", "direction", "video"]
Moving = Literal["came", "went"]


def _words(text: str) -> list[str]:
    return text.split()


NUMBER_WORDS: dict[str, float] = {
    w: float(i)
    for i, w in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
} | {
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "a": 1,
    "an": 1,
    "half": 0.5,
    "quarter": 0.25,
}
_TENS = frozenset(_words("twenty thirty forty fourty fifty sixty seventy eighty ninety"))
UNITS: dict[str, float] = {
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
}
ORDINALS: dict[str, int] = {
    w: i + 2
    for i, w in enumerate(_words("second third fourth fifth sixth seventh eighth ninth tenth"))
}
# shares of a video's length, in percent: "the first half", "the last quarter"
SHARES: dict[str, float] = {
    "half": 50.0, "third": 33.33, "quarter": 25.0, "fifth": 20.0, "tenth": 10.0,
}  # fmt: skip
_SHARE_PLURALS = {"halves": 50.0, "thirds": 33.33, "quarters": 25.0, "fifths": 20.0, "tenths": 10.0}
# "at the beginning / end of the video", "in the middle of the video": these shares
PARTS_OF_VIDEO: dict[str, tuple[float, float | None]] = {
    "beginning": (0.0, 10.0), "start": (0.0, 10.0), "end": (90.0, None), "middle": (40.0, 60.0),
}  # fmt: skip
_OF_THE_VIDEO = (("of", "the"), ("video", "clip", "footage", "recording", "film"))
EXTRA_COLORS = {"silver": "grey", "golden": "yellow", "gold": "yellow", "violet": "purple"}
# Fine types: ImageNet labels (lower case, spaces as underscores) that refine a class.
TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "minivan": ("minivan",),
    "minivans": ("minivan",),
    "van": ("minivan", "moving_van", "police_van"),
    "vans": ("minivan", "moving_van", "police_van"),
    "pickup": ("pickup",),
    "pickups": ("pickup",),
    "pick-up": ("pickup",),
    "ambulance": ("ambulance",),
    "ambulances": ("ambulance",),
    "police van": ("police_van",),
    "police vans": ("police_van",),
    "moving van": ("moving_van",),
    "taxi": ("cab",),
    "taxis": ("cab",),
    "cab": ("cab",),
    "cabs": ("cab",),
    "jeep": ("jeep",),
    "jeeps": ("jeep",),
    "limousine": ("limousine",),
    "limo": ("limousine",),
    "convertible": ("convertible",),
    "convertibles": ("convertible",),
    "sports car": ("sports_car",),
    "sports cars": ("sports_car",),
    "race car": ("racer",),
    "racing car": ("racer",),
    "station wagon": ("beach_wagon",),
    "estate car": ("beach_wagon",),
    "school bus": ("school_bus",),
    "minibus": ("minibus",),
    "minibuses": ("minibus",),
    "forklift": ("forklift",),
    "forklifts": ("forklift",),
    "tractor": ("tractor",),
    "tractors": ("tractor",),
    "trolleybus": ("trolleybus",),
    "tram": ("streetcar",),
    "trams": ("streetcar",),
    "streetcar": ("streetcar",),
    "tow truck": ("tow_truck",),
    "garbage truck": ("garbage_truck",),
    "fire engine": ("fire_engine",),
    "fire truck": ("fire_engine",),
    "semi": ("trailer_truck",),
    "trailer truck": ("trailer_truck",),
    "mountain bike": ("mountain_bike",),
    "mountain bikes": ("mountain_bike",),
    "moped": ("moped",),
    "mopeds": ("moped",),
    "scooter": ("moped", "motor_scooter"),
    "scooters": ("moped", "motor_scooter"),
    "tricycle": ("tricycle",),
    "go-kart": ("go-kart",),
    "golf cart": ("golfcart",),
}
IGNORED = frozenset(
    _words("""a an the of in on at to into onto from by for with within during as than and or but
    is are was were be been being do does did done has have had having can could will would
    should may might must shall there here it its this that these those they them their he she
    his her we us our you your i me my mine who whom whose which what when where why how
    please tell give show list find display get look see seen saw visible appear appears
    appeared appearing many much number count total overall amount any some all every each
    only just also ever still same other others different one ones thing things object objects
    something anything anyone anybody someone somebody everyone everything video videos footage
    clip scene frame frames camera image screen picture moment moments time times while whole
    walk walks walked walking move moves moved moving go goes going went gone head heads headed
    heading travel travels travelled traveled travelling traveling drive drives drove driving
    ride rides rode riding run runs ran running pass passes passed passing cross crosses
    crossed crossing come comes came coming leave leaves leaving exit exits exited enter
    enters entered entering arrive arrives arrived arriving approach side direction way
    stay stays stayed staying remain remains remained remaining linger lingers lingered
    toward towards away view sight present happen happens happened happening occur occurs
    occurred distinct unique individual separate spend spends spent across past
    road roads street streets square area place highway intersection junction sidewalk
    pavement plaza""")
)
# words that exclude the next class, colour, direction, type, line or zone ("people who did
# not walk left": `person -dir:left`); "other than", "apart from" and "but not" end in them
NEGATIONS = frozenset(
    _words("""not neither except excluding without never isn't aren't wasn't weren't don't doesn't
    didn't hasn't haven't nor""")
)
_NEGATION_PAIRS = frozenset({("other", "than"), ("apart", "from"), ("rather", "than")})
_NEGATION_REACH = 4  # tokens after the negation in which its object must start
_MOVE_WORDS = frozenset(_words("move moves moved moving"))
_DIRECTION_WORDS = frozenset(
    _words("""left right leftward leftwards rightward rightwards up upward upwards down
    downward downwards toward towards away approaching receding""")
)
# "by colour", "in each direction", "the most common type", "which way did most go"
BY_WORDS: dict[str, Breakdown] = {
    "colour": "color", "colours": "color", "color": "color", "colors": "color",
    "direction": "direction", "directions": "direction", "way": "direction", "ways": "direction",
    "class": "class", "classes": "class", "kind": "class", "kinds": "class",
    "type": "class", "types": "class", "video": "video", "videos": "video",
}  # fmt: skip
_TIME_UNITS = frozenset(_words("seconds secs minutes mins hours"))
_COMMON = frozenset(_words("common commonest frequent usual popular"))
_PLURAL_BY_WORDS = frozenset(_words("colours colors directions classes kinds types videos"))
# "sorted by speed": largest first for values, earliest first for times
SORT_BY: dict[str, str] = {
    "speed": "-speed", "size": "-size", "duration": "-dur", "length": "-dur",
    "confidence": "-conf", "score": "-conf", "time": "start", "start": "start", "end": "end",
}  # fmt: skip
_SORT_VERBS = frozenset(_words("sort sorted order ordered rank ranked"))
# "did anyone walk left?": about people
_PEOPLE = frozenset(_words("anyone anybody someone somebody everyone everybody nobody"))
# a question opening with one of these and asking nothing else is answered yes or no
YES_NO_OPENERS = frozenset(
    _words("""is are was were did does do has have had can could isn't aren't wasn't
    weren't didn't doesn't don't""")
)
# "how many people at once": the most in view at the same moment, not everyone over time
_AT_ONCE = re.compile(
    r"\b(at once|at the same time(?! (?:as|that) )|simultaneously|concurrently|at one time|"
    r"at any one time|at a time|maximum|max|peak|busiest|at most(?=\s*\??\s*$))\b"
)
_BUSIEST = re.compile(r"\b(the most|busiest|the maximum|the max|the peak)\b")
_AT_ONCE_WORDS = frozenset(
    _words("once same simultaneously concurrently maximum max peak busiest")
)  # (and "at most" at the end: "how many people were there at most?")
_ASKED_VALUES: dict[str, Measure] = {
    "colour": "color", "color": "color", "direction": "direction", "way": "direction",
    "speed": "speed", "size": "size",
}  # fmt: skip
_AVERAGE_WORDS = frozenset(_words("average averages mean median typical typically"))
_AVERAGED: dict[str, Measure] = {
    "speed": "speed", "fast": "speed", "time": "dur", "duration": "dur", "long": "dur",
    "size": "size", "big": "size",
}  # fmt: skip
# "how fast / how long / how big": the value asked for, reported for each object cited
MEASURES: dict[str, Measure] = {
    "fast": "speed", "quickly": "speed", "quick": "speed", "slow": "speed", "slowly": "speed",
    "long": "dur", "big": "size", "large": "size", "small": "size", "tall": "size",
}  # fmt: skip
END_VERBS = frozenset(_words("leave leaves left leaving exit exits exited disappear disappeared"))
# "how many people arrived after 0:30?": the window is when they came (`start`), not when
# they were in view; "left before 0:30": when they went (`end`). Not "appear": "how many
# people appear between 0:20 and 0:40?" is as often "are seen" as "show up".
ARRIVE_VERBS = frozenset(
    _words("""arrive arrives arrived arriving came come comes coming enter enters entered
    entering""")
)
DEPART_VERBS = frozenset(
    _words("""leave leaves leaving exit exits exited exiting disappear disappears disappeared
    disappearing depart departs departed departing""")
)
# verbs of moving before "right" that make it a direction ("walked right after 0:30");
# without one it is "just" ("how many people right after 0:30?")
_GOING = frozenset(
    _words("""walk walks walked walking move moves moved moving go goes going went head heads
    headed heading travel travels travelled traveled travelling traveling drive drives drove
    driving ride rides rode riding run runs ran running turn turns turned turning""")
)
_RIGHT_AS_JUST = frozenset(_words("after before at when as then now away there here"))
# verbs whose "up" / "down" is not a direction ("sat down", "stood up", "slowed down")
_PHRASAL = frozenset(
    _words("""sat sit sits sitting lay lie lies lying knelt kneel kneeling bent bend bending
    stood stand stands standing got get gets getting slowed slow slows slowing sped speed
    speeds speeding broke break breaks calmed showed show shows turned picked pick
    looked look gave give""")
)
# class words a person asks about that the detector cannot tell apart from other people
_PERSON_KINDS = frozenset(_words("man men woman women child children kid kids"))
AROUND_S = 5.0  # "around 0:45": that moment give or take this many seconds
# "who was there the whole time?": came within this long of the start and left within this
# long of the end (`start<=0:01 end>=-0:01`)
WHOLE_TIME_S = 1.0
_WHOLE_TIME = (
    ("the", "whole", "time"), ("the", "entire", "time"), ("all", "the", "time"), ("all", "along"),
    ("from", "start", "to", "finish"), ("from", "beginning", "to", "end"),
    ("from", "the", "start", "to", "the", "end"), ("from", "the", "beginning", "to", "the", "end"),
    ("throughout", "the", "video"), ("throughout",), ("the", "whole", "video"),
)  # fmt: skip
_AROUND = frozenset(_words("around about approximately roughly circa"))
# "dark cars": black; "light / pale cars": white; "dark blue": blue
_SHADES = {"dark": "black", "light": "white", "pale": "white"}
# superlatives -> `sort:` ("the fastest car": `car sort:-speed limit:1`); first / last are
# about leaving in a question about leaving ("the last person to leave": `sort:-end`)
SUPERLATIVES: dict[str, str] = {
    "fastest": "-speed", "quickest": "-speed", "slowest": "speed",
    "longest": "-dur", "shortest": "dur",
    "biggest": "-size", "largest": "-size", "smallest": "size",
    "first": "start", "earliest": "start", "last": "-start", "latest": "-start",
}  # fmt: skip
_IRREGULAR_PLURALS = frozenset(_words("people men women children persons"))
_TOKEN = re.compile(
    r"\d+:\d{1,2}(?::\d{1,2})?(?:\.\d+)?"  # clock times 0:10, 1:02:03
    r"|(?:\d+(?:\.\d+)?[hms])+(?![a-z])"  # 10s, 2m, 1m30s
    r"|\d+(?:\.\d+)?"
    r"|[a-z][a-z0-9_]*(?:[-'.][a-z0-9_]+)*"
    r"|>=|<=|[<>=]"
    r"|\S",
    re.IGNORECASE,
)


@dataclass
class Understood:
    """A question mapped onto the query language (see `understand`)."""

    kind: Kind
    query: Query
    unmapped: list[str] = field(default_factory=list)
    ends: bool = False  # the question asks when something left (report track ends)
    notes: list[str] = field(default_factory=list)
    parts: list[Query] = field(default_factory=list)  # "red cars and white trucks": one each
    at_once: bool = False  # how many at the same moment ("how many people at once")
    measure: Measure | None = None  # "how fast was ...": the value to report per object
    per: float | None = None  # "how many cars per minute": a count per this many seconds
    peak: bool = False  # "what was the busiest minute?": the period of `per` with the most
    average: bool = False  # "the average speed of the cars": `measure` over the objects
    yes_no: bool = False  # "were there any trucks?": counted, answered yes or no
    by: Breakdown | None = None  # "the most common colour of the cars": counted per value
    compare: bool = False  # "were more people walking left or right?": `by`, the top one;
    # with `parts` (windows): "more cars in the first half than in the second half?"
    fewer: bool = False  # the comparison asks which has fewer
    focus: str | None = None  # with `by`: the value asked about ("what percentage of the
    # cars were white?": white; "did more people walk left than right?": left, said first)
    fraction: bool = False  # "what percentage / share of ...": `focus` over all of them
    distinct: bool = False  # "how many different colours of cars?": the values of `by`
    check: Query | None = None  # "was the fastest car red?": the one found has these?
    relative: tuple[Measure, str] | None = None  # "faster than the average": speed > mean
    threshold: tuple[str, float] | None = None  # "were there more than 5 people?": > 5
    length: bool = False  # "how long is the video?": its duration, not its objects'
    occupancy: bool = False  # "on average, how many people were in view?": over time
    moving: Moving | None = None  # "how many people arrived per minute?": by when they came


class _Words:
    """The question's tokens (lower case, and as written) with a cursor-free lookahead."""

    def __init__(self, question: str) -> None:
        self.raw = [t for t in _TOKEN.findall(question.replace("\u2013", "-"))]
        self.low = [t.lower() for t in self.raw]
        self.used = [False] * len(self.raw)

    def __len__(self) -> int:
        return len(self.low)

    def at(self, i: int) -> str:
        return self.low[i] if 0 <= i < len(self.low) else ""

    def take(self, *indexes: int) -> None:
        for i in indexes:
            if 0 <= i < len(self.used):
                self.used[i] = True


def _number(w: _Words, i: int) -> tuple[float, int] | None:
    """A number in digits or words at token i: (value, tokens used)."""
    tok = w.at(i)
    if re.fullmatch(r"\d+(?:\.\d+)?", tok):
        return float(tok), 1
    tens, dash, unit = tok.partition("-")  # "thirty-five"
    if dash and tens in _TENS and unit in NUMBER_WORDS and 1 <= NUMBER_WORDS[unit] <= 9:
        return NUMBER_WORDS[tens] + NUMBER_WORDS[unit], 1
    if tok in NUMBER_WORDS:
        value = NUMBER_WORDS[tok]
        used = 1
        if tok in _TENS:
            nxt = w.at(i + 1)
            if nxt == "-":
                nxt, extra = w.at(i + 2), 2
            else:
                extra = 1
            if nxt in NUMBER_WORDS and 1 <= NUMBER_WORDS[nxt] <= 9 and nxt not in ("a", "an"):
                value += NUMBER_WORDS[nxt]
                used += extra
        elif tok == "half" and w.at(i + 1) in ("a", "an"):
            used = 2
        return value, used
    return None


def _time(w: _Words, i: int) -> tuple[float, int, bool] | None:
    """A time at token i: (seconds, tokens used, whether a unit was written)."""
    tok = w.at(i)
    if ":" in tok or re.fullmatch(r"(?:\d+(?:\.\d+)?[hms])+", tok):
        try:
            return parse_time(tok), 1, True
        except ValueError:
            return None
    found = _number(w, i)
    if found is None:
        if tok in UNITS:  # "the first minute"
            return UNITS[tok], 1, True
        return None
    value, used = found
    unit = w.at(i + used)
    if unit in UNITS:
        return value * UNITS[unit], used + 1, True
    if w.at(i) in ("a", "an", "half", "quarter"):  # "a", "half" alone are not times
        return None
    return value, used, False


def _plural_follows(w: _Words, i: int) -> bool:
    """Whether the first class word within three tokens from i is a plural ("the fastest
    red cars": a ranking, not one car)."""
    for k in range(i, min(i + 3, len(w))):
        word = w.at(k)
        if class_of_word(word) is not None:
            return word in _IRREGULAR_PLURALS or (
                word.endswith("s") and any(class_of_word(word[:-n]) for n in (1, 2))
            )
    return False


def _per(w: _Words) -> float | None:
    """The period of "per minute", "each 10 seconds", "every hour" (seconds; tokens taken).

    >>> _per(_Words("how many cars per minute")), _per(_Words("people every 10 s"))
    (60.0, 10.0)
    """
    for k in range(len(w)):
        if w.low[k] not in ("per", "each", "every") or w.used[k]:
            continue
        period = _time(w, k + 1)
        if period is not None and period[2] and period[0] > 0:
            w.take(*range(k, k + 1 + period[1]))
            return period[0]
    return None


_STAY_WORDS = frozenset(
    _words("stand stands stood standing stay stays stayed staying remain remained sat sitting")
)
_STATIC_WORDS = frozenset(_words("static stationary parked motionless still"))
# "did anyone stop?", "cars that stopped for more than 5 s": a pause (`pause>=STOP_MIN_S`)
STOP_WORDS = frozenset(
    _words("stop stops stopped stopping pause pauses paused pausing halt halted")
)
STOP_MIN_S = 2.0  # seconds of standing still that make a stop, when no time is said
# "how many people were waiting / standing?": stood still `STOP_MIN_S` or more, paused or
# never moved at all (`still`); "stood still" alone stays `dir:static` (still all along)
STILL_WORDS = frozenset(
    _words("""stand stands stood standing wait waits waited waiting idle idled idling loiter
    loiters loitered loitering linger lingers lingered lingering""")
)
# "did anyone run?": a pace (speed in the object's own heights per second) of at least this.
# People walking on PETS09-S2L1 and TUD-Campus: median 0.6-0.7, at most 1.0 (`bench/ask.py`,
# "pace"); a brisk walk of 1.4 m/s is about 0.8 heights a second, the walk-to-run transition
# (about 2 m/s) 1.1-1.2, a jog (2.5 m/s and up) 1.4 and more.
RUN_PACE = 1.3
# "stayed around 10 seconds", "for about a minute": a duration, not a moment
_NOT_A_MOMENT = (
    frozenset(_words("for than last first spent lasted took"))
    | _STAY_WORDS
    | STOP_WORDS
    | STILL_WORDS
)
RUN_WORDS = frozenset(
    _words("""run runs ran running jog jogs jogged jogging sprint sprints sprinted sprinting
    rush rushed rushing hurry hurried hurrying dash dashed dashing""")
)


# words that start a comparison ("faster than 40", "for more than 5 s", "at least 2 s")
_COMPARING = frozenset(
    _words("faster slower quicker longer shorter bigger larger smaller more less over under least")
)
_RELATIVE_PRONOUNS = frozenset(_words("that who which whose"))


def _predicate(w: _Words, query: Query) -> Query | None:
    """The colours, directions and comparisons said after the noun of a question about one
    ranked object ("was the fastest car red?": `red`; "was the fastest red car going
    left?": `left`; "was the fastest car faster than 40?": `speed>40`), or None when there
    are none. Comparisons are checked only when all of them come after the noun and not in
    a clause of their own ("the fastest car that stayed more than 5 s": a filter).

    >>> u = understand("was the fastest red car going left?")
    >>> u.query.canonical(), u.check.colors, u.check.directions
    ('car color:red sort:-speed limit:1', (), ('left',))
    >>> understand("was the longest visible car faster than 40?").check.canonical()
    'speed>40'
    """
    nouns = [
        k
        for k in range(len(w))
        if w.used[k] and (class_of_word(w.low[k]) is not None or w.low[k] in TYPE_WORDS)
    ]
    ranked = [k for k in range(len(w)) if w.low[k] in SUPERLATIVES and w.used[k]]
    after = (nouns or ranked or [len(w)])[0]
    colors = {
        COLOR_WORDS.get(w.low[k]) or EXTRA_COLORS[w.low[k]]
        for k in range(after + 1, len(w))
        if w.used[k] and (w.low[k] in COLOR_WORDS or w.low[k] in EXTRA_COLORS)
    }
    moving = any(
        w.used[k] and w.low[k] in _DIRECTION_WORDS | _STATIC_WORDS for k in range(after + 1, len(w))
    )
    directions = query.directions if moving else ()
    comparing = [k for k in range(len(w)) if w.used[k] and w.low[k] in _COMPARING]
    checked = (
        bool(comparing)
        and comparing[0] > after
        and not _RELATIVE_PRONOUNS & set(w.low[after + 1 : comparing[0]])
    )
    conditions = query.conditions if checked else ()
    if not colors and not directions and not conditions:
        return None
    return Query(
        colors=tuple(c for c in query.colors if c in colors),
        directions=directions,
        conditions=conditions,
    )


def _distinct_asked(w: _Words, k: int) -> bool:
    """Whether "how many (different / distinct)" comes right before token k."""
    before = [t for t in w.low[max(0, k - 3) : k] if t not in ("different", "distinct")]
    return before[-2:] == ["how", "many"]


def _breakdown(w: _Words) -> Breakdown | None:
    """The attribute to count per value: "by colour", "in each direction", "per type",
    "the most common colour", "which way did most people go" (tokens taken).

    >>> _breakdown(_Words("count the cars by colour")), _breakdown(_Words("which cars"))
    ('color', None)
    >>> _breakdown(_Words("which direction did most people walk"))
    'direction'
    """
    for k, tok in enumerate(w.low):
        if tok not in BY_WORDS or w.used[k]:
            continue
        before = w.low[max(0, k - 3) : k]
        if before and before[-1] in ("by", "per", "each", "every"):
            w.take(k - 1, k)
        elif _COMMON & set(before):
            w.take(*(j for j in range(max(0, k - 3), k) if w.low[j] in _COMMON | {"most"}), k)
        elif before and before[-1] in ("what", "which") and "most" in w.low[k + 1 :]:
            w.take(k, k + 1 + w.low[k + 1 :].index("most"))
        elif before and before[-1] in ("what", "which") and tok in _PLURAL_BY_WORDS:
            w.take(k)  # "what colours were the trucks?", "which videos had people?"
        elif tok in _PLURAL_BY_WORDS and _distinct_asked(w, k):
            w.take(*range(k - 3, k + 1))  # "how many different colours of cars?"
        else:
            continue
        return BY_WORDS[tok]
    return None


def _kind(w: _Words) -> tuple[Kind, bool]:
    text = " ".join(w.low)
    ends = any(t in END_VERBS for t in w.low) and not re.search(
        r"\b(walk|walks|walked|walking|mov\w+|go|goes|going|went|head\w*|travel\w*|driv\w+|"
        r"drove|rid\w+|rode|run\w*|ran|turn\w*|to|towards?|from|than|or)\s+(the\s+)?left\b",
        text,
    )
    if re.search(r"\bhow (many|much) (seconds|secs|minutes|mins|hours|time)\b", text):
        return "which", ends  # "how many seconds was the car in view?": a time per object
    if re.search(r"\b(how many|how much|number of|count|counts|counting|total)\b", text):
        return "count", ends
    if re.search(r"\b(when|what time|at what time|what times|which time|which times)\b", text):
        return "when", ends
    if re.search(r"^\s*where\b|\bwhere (is|are|was|were|did|do|does)\b", text):
        return "where", ends
    return "which", ends


def understand(question: str, video_id: str | None = None) -> Understood:
    """Map an English question (or a query-language string) onto a `Query`.

    Deterministic: the same words give the same query. Raises `QueryError` only for a
    query-language string with a bad token.

    >>> understand("how many cars between ten and thirty seconds").query.canonical()
    'car t:0:10..0:30'
    >>> understand("when did the white van leave?").query.canonical()
    'type:minivan,moving_van,police_van color:white'
    >>> u = understand("which pedestrians wore hats")
    >>> u.query.canonical(), u.unmapped
    ('person wore hats', ['wore', 'hats'])
    """
    w = _Words(question)
    kind, ends = _kind(w)
    if _VIDEO_LENGTH.search(" ".join(w.low)):
        query = _filters(_Words(""), False, video_id)[0]
        return Understood(kind="which", query=query, length=True)
    if _looks_like_ql(question):
        q = parse(_strip_kind_words(question))
        if video_id is not None and not q.videos:
            q = Query(**{**q.model_dump(), "videos": (video_id,)})
        return Understood(kind=kind, query=q)

    form = _form(w, kind)
    busy = _BUSY.search(" ".join(w.low))
    if busy:  # "how busy was it?": how many at a time on average, and the most at once
        kind, form.occupancy = "count", True
        w.take(*(k for k in range(len(w)) if w.low[k] in _BUSY_WORDS))
    query, notes, moving = _filters(w, ends, video_id)
    if form.per is not None and moving is not None:  # "how many people arrived per minute?"
        query = _came_or_went(query, moving)
    if busy and busy.group(1).startswith("crowd") and not (query.classes or query.types):
        query = query.model_copy(update={"classes": ("person",)})  # crowded: with people
    by, compare = form.by, False
    # "cars and trucks by colour": one breakdown of them all, not one answer per object
    parts = _object_parts(w, query, video_id) if by is None else []
    fewer = False
    if by is None and not parts:  # "more cars in the first half than in the second half?"
        parts, fewer, query = _windows_compared(w, query, video_id)
        compare = bool(parts)
    if by is None and not parts:  # "in which half of the video were there more cars?"
        parts, fewer, query = _which_part(w, query)
        compare = bool(parts)
    if by is None and not compare:
        by, query = _compared(w, query)
        compare = by is not None
    focus = _said_first(w, by) if compare and by is not None else None
    if compare and by is not None:
        fewer = "fewer" in w.low or "less" in w.low
    fraction = False
    if by is None and not parts:  # "what percentage of the cars were white?"
        by, focus, query = _fraction(w, query)
        fraction = by is not None
    yes_no, check, query = _yes_no(w, kind, query, by)
    if compare and focus is not None and w.at(0) in YES_NO_OPENERS and "than" in w.low:
        yes_no = True  # "did more people walk left than right?": yes if left has more
    if (yes_no and check is None) or form.peak:
        kind = "count"
    unmapped = list(query.text)
    return Understood(
        kind=kind,
        query=query,
        unmapped=unmapped,
        ends=ends,
        notes=notes,
        parts=parts,
        at_once=form.at_once,
        measure=form.measure,
        per=form.per,
        peak=form.peak,
        average=form.average,
        relative=form.relative,
        threshold=form.threshold if yes_no else None,
        yes_no=yes_no,
        by=by,
        compare=compare,
        fewer=fewer,
        focus=focus,
        fraction=fraction,
        distinct=form.distinct,
        check=check,
        occupancy=form.occupancy and by is None and not parts,
        moving=moving,
    )


# "how long is the video?", "what is the length of the clip?", "video duration"
_VIDEO_LENGTH = re.compile(
    r"\bhow long (?:is|was|does|did) (?:the|this|that) (?:video|clip|footage|recording|film)"
    r"(?: last)?\s*\??$"
    r"|\b(?:length|duration|running time) of (?:the|this|that) "
    r"(?:video|clip|footage|recording|film)\b"
    r"|^(?:what is |what's )?(?:the )?(?:video|clip) (?:length|duration)\b"
)

# "how busy was the road?", "was it crowded?", "how crowded was the square after 1:00?"
_BUSY = re.compile(r"\b(?:how|was it|is it|was the \w+|is the \w+) (busy|crowded)\b")
_BUSY_WORDS = frozenset(_words("busy crowded"))

_MORE_WORDS = {"more": False, "fewer": True, "less": True}  # word -> asks for fewer


_MOST_WORDS = frozenset(_words("more most fewer fewest less least"))


def _per_window(
    query: Query, windows: list[tuple[float | None, float | None, bool]]
) -> list[Query]:
    """`query` (without its free text) once per window (`t_from`, `t_to`, `t_share`)."""
    shared = query.model_dump()
    return [
        Query(**{**shared, "t_from": lo, "t_to": hi, "t_share": share, "text": ()})
        for lo, hi, share in windows
    ]


def _which_part(w: _Words, query: Query) -> tuple[list[Query], bool, Query]:
    """ "in which half of the video were there more cars?", "which quarter had the fewest
    people?": one part per half / quarter / ... of each video, whether it asks for fewer,
    and the query without those words.

    >>> parts, fewer, _ = _which_part(_Words("which half had the most cars"), parse("car most"))
    >>> [p.canonical() for p in parts], fewer
    (['car t:0%..50%', 'car t:50%..'], False)
    """
    for k in range(len(w) - 1):
        if w.low[k] not in ("which", "what") or w.low[k + 1] not in SHARES:
            continue
        most = [j for j in range(k + 2, len(w)) if w.low[j] in _MOST_WORDS]
        if not most or w.used[most[0]]:
            continue
        share = SHARES[w.low[k + 1]]
        n = round(100 / share)
        bounds = [round(i * share, 2) for i in range(n)] + [100.0]
        parts = _per_window(
            query, [(lo, hi if hi < 100 else None, True) for lo, hi in pairwise(bounds)]
        )
        w.take(k, k + 1, most[0])
        end = _of_the_video(w, k + 2)
        w.take(*range(k + 2, end))
        asked = {"which", "what", w.low[k + 1], w.low[most[0]], "of", "the", "video", "clip"}
        text = tuple(t for t in query.text if t not in asked)
        fewer = w.low[most[0]] in ("fewer", "fewest", "less", "least")
        return parts, fewer, query.model_copy(update={"text": text, "sort": None, "limit": None})
    return [], False, query


def _windows_compared(
    w: _Words, query: Query, video_id: str | None
) -> tuple[list[Query], bool, Query]:
    """ "were there more cars in the first half than in the second half?", "fewer people
    before 1:00 or after?": one part per window (cut at *than* / *or*), whether it asks for
    fewer, and the query without *more*; no parts when it compares no windows.

    >>> parts, fewer, _ = _windows_compared(
    ...     _Words("more cars before 0:10 than after 0:20"), parse("car t:0:20.. more"), None)
    >>> [p.canonical() for p in parts], fewer
    (['car t:..0:10', 'car t:0:20..'], False)
    """
    more = [k for k in range(len(w)) if w.low[k] in _MORE_WORDS and not w.used[k]]
    cuts = [k for k in range(len(w)) if w.low[k] in ("than", "or") and not w.used[k]]
    against = [  # "in the first half compared to / with the second", "versus", "vs"
        k
        for k in range(len(w))
        if w.low[k] in ("versus", "vs")
        or (w.low[k] == "compared" and w.at(k + 1) in ("to", "with"))
    ]
    if against and not more:
        k = against[0]
        more, cuts = [k], [k + (1 if w.low[k] == "compared" else 0)]
    if not more or len(cuts) != 1 or cuts[0] < more[0]:
        return [], False, query
    segments = [" ".join(w.raw[: cuts[0]]), " ".join(w.raw[cuts[0] + 1 :])]
    own = [understand(text, video_id).query for text in segments]
    windows = [(q.t_from, q.t_to, q.t_share) for q in own]
    if any(lo is None and hi is None for lo, hi, _ in windows) or windows[0] == windows[1]:
        return [], False, query
    if sum(bool(q.classes or q.types) for q in own) > 1:
        return [], False, query  # "more cars in the morning than trucks": objects, not windows
    w.take(more[0], cuts[0])
    asked = set(_MORE_WORDS) | {"compared", "versus", "vs"}
    text = tuple(t for t in query.text if t not in asked)
    parts = _per_window(query, windows)
    fewer = _MORE_WORDS.get(w.low[more[0]], False)
    return parts, fewer, query.model_copy(update={"text": text})


_FRACTION_WORDS = frozenset(_words("percentage percent proportion share fraction"))


def _value_of(word: str, by: Breakdown) -> str | None:
    """The value of attribute `by` a word names ("lorries" -> truck, "leftwards" -> left)."""
    if by == "color":
        return COLOR_WORDS.get(word) or EXTRA_COLORS.get(word)
    if by == "direction":
        if word.startswith(("left", "right")):
            return "left" if word.startswith("left") else "right"
        return DIRECTION_WORDS.get(word)
    if by == "class":
        classes = class_of_word(word)
        return classes[0] if classes and len(classes) == 1 else None
    return None


def _said_first(w: _Words, by: Breakdown) -> str | None:
    """The first value of `by` the question names ("more people walking *left* or right")."""
    return next((v for v in (_value_of(t, by) for t in w.low) if v is not None), None)


def _fraction(w: _Words, query: Query) -> tuple[Breakdown | None, str | None, Query]:
    """ "what percentage of the cars were white?", "what share of the vehicles were trucks?":
    the attribute (colour, direction or class), the value asked about and the query without
    it (all the cars, all the vehicles); (None, None, query) else.

    >>> words = _Words("what share of the cars were white")
    >>> by, focus, q = _fraction(words, parse("car color:white share"))
    >>> by, focus, q.canonical()
    ('color', 'white', 'car')
    """
    asked = [k for k in range(len(w)) if w.low[k] in _FRACTION_WORDS and not w.used[k]]
    if not asked or w.at(asked[0] + 1) != "of":
        return None, None, query
    verb = next((k for k in range(asked[0], len(w)) if w.low[k] in ("were", "was", "are", "is")), 0)
    after = [class_of_word(t) for t in w.low[verb + 1 :]] if verb else []
    named = [c for c in after if c is not None]
    if len(named) == 1 and len(named[0]) == 1:  # "what share of the vehicles were trucks?"
        before = {c for t in w.low[:verb] for c in (class_of_word(t) or ())}
        if before and named[0][0] in before:
            w.take(asked[0])
            text = tuple(t for t in query.text if t not in _FRACTION_WORDS)
            update = {"classes": tuple(sorted(before)), "text": text}
            return "class", named[0][0], query.model_copy(update=update)
    values = {"color": query.colors, "direction": query.directions}
    one = [(name, vals[0]) for name, vals in values.items() if len(vals) == 1]
    if len(one) != 1:
        return None, None, query
    by, focus = one[0]
    w.take(asked[0])
    text = tuple(t for t in query.text if t not in _FRACTION_WORDS)
    field = "colors" if by == "color" else "directions"
    return by, focus, query.model_copy(update={field: (), "text": text})  # type: ignore[return-value]


def _compared(w: _Words, query: Query) -> tuple[Breakdown | None, Query]:
    """ "were more people walking left or right?", "more cars than trucks?": the attribute
    with two or more values asked for, to compare them (*more* / *fewer* taken), or None.

    >>> by, q = _compared(_Words("more cars than trucks"), parse("car truck more"))
    >>> by, q.canonical()
    ('class', 'car truck')
    """
    asked = {"direction": query.directions, "color": query.colors, "class": query.classes}
    several = [name for name, values in asked.items() if len(values) >= 2]
    more = [k for k in range(len(w)) if w.low[k] in ("more", "fewer") and not w.used[k]]
    if not (more and several and ({"or", "than"} & set(w.low))):
        return None, query
    w.take(*more)
    text = tuple(t for t in query.text if t not in ("more", "fewer"))
    return several[0], query.model_copy(update={"text": text})  # type: ignore[return-value]


def _yes_no(
    w: _Words, kind: Kind, query: Query, by: Breakdown | None
) -> tuple[bool, Query | None, Query]:
    """Whether the question asks yes or no ("were there any trucks?", "did anyone walk
    left after 1:00?"), and for one ranked object what to check of it ("was the fastest
    car red?": `red`, taken out of the query). Not when some words could not be mapped, nor
    for a ranked object with nothing said about it: those stay a list.

    >>> _yes_no(_Words("were there any trucks"), "which", parse("truck"), None)[:2]
    (True, None)
    """
    yes_no = kind == "which" and w.at(0) in YES_NO_OPENERS and not query.text and by is None
    if not yes_no or not query.sort:
        return yes_no, None, query
    check = _predicate(w, query) if query.limit == 1 else None
    if check is None:
        return False, None, query
    kept = query.model_copy(
        update={
            "colors": tuple(c for c in query.colors if c not in check.colors),
            "directions": tuple(d for d in query.directions if d not in check.directions),
            "conditions": tuple(c for c in query.conditions if c not in check.conditions),
        }
    )
    return True, check, kept


@dataclass
class _Form:
    """How a question asks, read before its filters: the most at once, a count per period,
    counted per value of an attribute, a value per object or averaged over them."""

    at_once: bool = False
    per: float | None = None
    by: Breakdown | None = None
    measure: Measure | None = None
    average: bool = False
    relative: tuple[Measure, str] | None = None
    threshold: tuple[str, float] | None = None
    peak: bool = False
    distinct: bool = False
    occupancy: bool = False


# "faster than the average": (the value, the comparison) against its mean over the objects
_RELATIVE: dict[str, tuple[Measure, str]] = {
    "faster": ("speed", ">"), "quicker": ("speed", ">"), "slower": ("speed", "<"),
    "longer": ("dur", ">"), "shorter": ("dur", "<"),
    "bigger": ("size", ">"), "larger": ("size", ">"), "smaller": ("size", "<"),
}  # fmt: skip
_NORMAL = frozenset(_words("average mean usual typical normal median"))
# "people who walked slowly", "cars that drove fast": against the average too
_MANNER: dict[str, tuple[Measure, str]] = {
    "slowly": ("speed", "<"), "slow": ("speed", "<"),
    "quickly": ("speed", ">"), "fast": ("speed", ">"), "rapidly": ("speed", ">"),
    "big": ("size", ">"), "large": ("size", ">"), "huge": ("size", ">"),
    "small": ("size", "<"), "tiny": ("size", "<"),
}  # fmt: skip
_NOT_MANNER = frozenset(_words("how as so too very"))  # "how fast", "as fast as"


def _relative(w: _Words) -> tuple[Measure, str] | None:
    """ "faster than the average", "longer than usual": the value and the comparison
    (tokens taken), or None.

    >>> _relative(_Words("cars faster than the average")), _relative(_Words("faster than 40"))
    (('speed', '>'), None)
    >>> _relative(_Words("people who walked slowly")), _relative(_Words("how fast"))
    (('speed', '<'), None)
    """
    for k in range(len(w) - 2):
        if w.low[k] in _RELATIVE and w.low[k + 1] == "than":
            j = k + 3 if w.low[k + 2] in ("the", "an", "a") else k + 2
            if w.at(j) in _NORMAL:
                end = j + 2 if w.at(j + 1) in ("one", "ones", "speed", "size", "time") else j + 1
                w.take(*range(k, end))
                return _RELATIVE[w.low[k]]
    for k in range(len(w)):
        if w.low[k] in _MANNER and w.at(k - 1) not in _NOT_MANNER and w.at(k + 1) != "as":
            w.take(k)
            return _MANNER[w.low[k]]
    return None


_MORE_THAN = {"more": ">", "over": ">", "fewer": "<", "less": "<", "under": "<"}


def _threshold(w: _Words) -> tuple[str, float] | None:
    """ "were there more than 5 people?", "at least 3 cars", "fewer than 10 trucks": the
    comparison a count is asked about (tokens taken); not a time ("more than 5 seconds").

    >>> _threshold(_Words("were there more than 5 people")), _threshold(_Words("at least 3"))
    (('>', 5.0), ('>=', 3.0))
    >>> _threshold(_Words("for more than 5 seconds")) is None
    True
    """
    for k in range(len(w)):
        tok, nxt = w.low[k], w.at(k + 1)
        if tok in _MORE_THAN:
            op, j = _MORE_THAN[tok], k + 2 if nxt == "than" else k + 1
        elif tok == "at" and nxt in ("least", "most"):
            op, j = (">=" if nxt == "least" else "<="), k + 2
        elif tok == "no" and nxt == "more" and w.at(k + 2) == "than":
            op, j = "<=", k + 3
        else:
            continue
        found = _number(w, j)
        if found is None or w.at(j) in ("a", "an") or w.at(j + found[1]) in UNITS:
            continue
        w.take(*range(k, j + found[1]))
        return op, found[0]
    return None


def _peak(w: _Words) -> float | None:
    """The period of "the busiest minute", "which 10 seconds had the most people?" (seconds;
    tokens taken), or None.

    >>> _peak(_Words("what was the busiest minute")), _peak(_Words("which hour had the most cars"))
    (60.0, 3600.0)
    >>> _peak(_Words("when was it busiest")), _peak(_Words("which car was the fastest"))
    (None, None)
    """
    for k in range(len(w)):
        if w.low[k] == "busiest" or (w.low[k] in ("which", "what") and "most" in w.low[k:]):
            period = _time(w, k + 1)
            if period is None or not period[2] or period[0] <= 0:
                continue
            w.take(*range(k, k + 1 + period[1]))
            w.take(*(j for j in range(len(w)) if w.low[j] in ("most", "busiest")))
            return period[0]
    return None


def _form(w: _Words, kind: Kind) -> _Form:
    """The question's form (`_Form`; its words are taken).

    >>> _form(_Words("how many people per minute"), "count").per
    60.0
    >>> _form(_Words("what was the average speed of the cars"), "which").measure
    'speed'
    """
    relative = _relative(w)
    threshold = _threshold(w) if w.at(0) in YES_NO_OPENERS else None
    peak = _peak(w)
    text = " ".join(w.low)
    at_once = peak is None and (
        (kind == "count" and _AT_ONCE.search(text) is not None)
        # "when were the most people in view?", "what was the busiest moment?"
        or (_BUSIEST.search(text) is not None and (kind == "when" or "busiest" in w.low))
    )
    if at_once:
        w.take(*(k for k in range(len(w)) if w.low[k] in _AT_ONCE_WORDS | {"most"}))
    per = peak if peak is not None else _per(w) if kind == "count" else None
    unused = {t for k, t in enumerate(w.low) if not w.used[k]}
    distinct = any(
        t in _PLURAL_BY_WORDS and t in BY_WORDS and _distinct_asked(w, k)
        for k, t in enumerate(w.low)
    )
    by = None if _AVERAGE_WORDS & unused else _breakdown(w)
    measure: Measure | None = None
    for k in range(len(w) - 1 if by is None else 0):
        if w.low[k] == "how" and w.low[k + 1] in MEASURES:
            measure = MEASURES[w.low[k + 1]]
        elif w.low[k : k + 2] == ["how", "many"] and w.at(k + 2) in _TIME_UNITS | {"time"}:
            measure = "dur"  # "how many seconds was the black car visible?"
            w.take(k + 2)
        elif w.low[k : k + 2] == ["how", "much"] and w.at(k + 2) == "time":
            measure = "dur"
            w.take(k + 2)
        elif w.low[k] in ("what", "which") and w.low[k + 1] in _ASKED_VALUES:
            measure = _ASKED_VALUES[w.low[k + 1]]  # "what colour was the fastest car?"
        elif (
            w.low[k] == "what"
            and w.low[k + 1] in ("was", "is", "were", "are")
            and w.at(k + 2) == "the"
            and w.at(k + 3) in _ASKED_VALUES
            and w.at(k + 4) == "of"
        ):  # "what was the speed of the fastest truck?"
            measure = _ASKED_VALUES[w.low[k + 3]]
            w.take(k + 2, k + 3, k + 4)
        else:
            continue
        w.take(k, k + 1)
        break
    if measure == "dur" and STOP_WORDS & set(w.low):
        measure = "pause"  # "how long did the red car stop?"
    average = by is None and any(t in _AVERAGE_WORDS and not w.used[k] for k, t in enumerate(w.low))
    said_average = average  # (not the words of "faster than the average": taken)
    if average:
        w.take(*(k for k in range(len(w)) if w.low[k] in _AVERAGE_WORDS))
        for k in range(len(w)):
            if measure is None and w.low[k] in _AVERAGED:  # "the average speed"
                measure = _AVERAGED[w.low[k]]
                w.take(k)
        if measure == "dur" and STOP_WORDS & set(w.low):
            measure = "pause"  # "how long did people stop on average?"
        average = measure in ("speed", "dur", "size", "pause")
    # "on average, how many people were in view?": how many at a time, averaged over time
    occupancy = (
        kind == "count"
        and measure is None
        and relative is None
        and not at_once
        and per is None
        and said_average
    )
    return _Form(
        at_once=at_once,
        per=per,
        peak=peak is not None,
        distinct=distinct and by is not None,
        by=by,
        measure=measure,
        average=average,
        relative=relative,
        threshold=threshold,
        occupancy=occupancy,
    )


@dataclass
class _Got:
    """What a question's words have said so far (`_filters` and its readers fill it)."""

    ends: bool = False  # the question asks when something left
    fields: dict[str, Any] = field(default_factory=dict)  # t_from, t_to, sort, limit
    classes: list[str] = field(default_factory=list)
    colors: list[str] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    conds: list[Condition] = field(default_factory=list)
    stop: bool = False  # "stopped": durations said are the pause's
    still: bool = False  # "waited", "standing": durations said are the stillness's
    left: bool = False  # "left" read as leaving ("how many people left before 0:30?")
    moving: Moving | None = None  # a verb of coming ("arrived") or going ("left") was said
    ran: str | None = None  # "did anyone run?": ">=" `RUN_PACE`; "who did not run?": "<"
    anchors: list[Anchor] = field(default_factory=list)  # "while the bus was there"


def _filters(w: _Words, ends: bool, video_id: str | None) -> tuple[Query, list[str], Moving | None]:
    """The filters a question states (classes, attributes, exclusions, windows, durations,
    speeds, lines, zones, superlatives) as a `Query`, its other words as free text, notes
    on what was left out, and whether it asks when they came or went (`Understood.moving`).

    >>> _filters(_Words("red cars that did not go left after 0:10"), False, None)[0].canonical()
    'car color:red -dir:left t:0:10..'
    """
    got = _Got(ends=ends, videos=[video_id] if video_id else [])
    notes: list[str] = []
    n = len(w)
    i = 0
    found = {
        "classes": got.classes,
        "colors": got.colors,
        "directions": got.directions,
        "types": got.types,
        "lines": got.lines,
        "zones": got.zones,
    }
    excluded: dict[str, list[str]] = {name: [] for name in found}
    negation: tuple[int, dict[str, int]] | None = None  # (where, list lengths then)
    while True:
        if negation is not None:
            at, sizes = negation
            grown = {name: values[sizes[name] :] for name, values in found.items() if sizes}
            if any(grown.values()):  # what was found since the negation is excluded
                for name, values in grown.items():
                    excluded[name] += values
                    del found[name][sizes[name] :]
                negation = None
                if w.at(i) in ("or", "nor", ","):  # "not white or black": neither
                    negation = (i, {name: len(values) for name, values in found.items()})
                    w.take(i)
                    i += 1
            elif not sizes or i > at + _NEGATION_REACH or i >= n:
                notes.append(
                    f"'{w.raw[at]}' is applied to a class, colour, direction, type, line or "
                    "zone right after it; here there was none, so it was left out."
                )
                negation = None
        if i >= n:
            break
        tok = w.at(i)
        nxt = w.at(i + 1)
        # ---- negations ("did not walk left", "vehicles other than buses")
        if tok in NEGATIONS or (tok, nxt) in _NEGATION_PAIRS:
            span = 1 if tok in NEGATIONS else 2
            after = w.at(i + span)
            if after in _MOVE_WORDS and w.at(i + span + 1) not in _DIRECTION_WORDS:
                got.directions.append("static")  # "not moving", "did not move"
                w.take(*range(i, i + span + 1))
                i += span + 1
                continue
            if after in RUN_WORDS:
                got.ran = "<"  # "people who did not run"
                w.take(*range(i, i + span + 1))
                i += span + 1
                continue
            if negation is None:
                negation = (i, {name: len(values) for name, values in found.items()})
            w.take(*range(i, i + span))
            i += span
            continue
        for read in _READERS:
            j = read(w, i, got)
            if j is not None:
                i = j
                break
        else:
            if negation is not None and tok not in IGNORED and tok.isalpha():
                negation = (negation[0], {})  # "not wearing hats": not about what follows
            i += 1

    if (
        not got.classes
        and not got.types
        and (w.at(0) in ("who", "whom", "whose") or _PEOPLE & set(w.low))
    ):
        got.classes.append("person")  # "who stayed the longest?": people, not parked cars
    if got.ran and set(got.classes) <= {"person"}:  # a car "running" is just moving
        got.conds.append(Condition(field="pace", op=got.ran, value=RUN_PACE))  # type: ignore[arg-type]
    if set(w.low) & _PERSON_KINDS and "person" in got.classes:
        notes.append(
            "Every person is counted: the detector does not tell men, women and children apart."
        )
    _arrivals(w, got, notes)
    if got.stop:  # "stopped for more than 5 seconds": the pause, not the time in view
        _durations_are(got, "pause")
    elif got.still:  # "waited for more than 5 seconds": stood still that long
        _durations_are(got, "still")
    if got.ran == ">=" and got.fields.get("sort", "").removeprefix("-") == "speed":
        got.fields["sort"] = got.fields["sort"].replace("speed", "pace")  # "ran the fastest"
    without = _excluded(found, excluded)
    unmapped = [
        w.low[k]
        for k in range(n)
        if not w.used[k] and w.low[k] not in IGNORED and re.fullmatch(r"[a-z][a-z'\-]*", w.low[k])
    ]
    lo, hi = got.fields.get("t_from"), got.fields.get("t_to")
    if lo is not None and lo < 0 and hi is not None:  # "the last 10 s before 1:00": the last
        del got.fields["t_to"]
        hi = None
    if lo is not None and hi is not None and hi < 0 <= lo:  # "after 0:20, before the last 10 s"
        del got.fields["t_to"]
        notes.append(
            "A window counts from the start or from the end of the video, not both: "
            f"it starts at {lo:g} s and goes to the end."
        )
        hi = None
    if lo is not None and hi is not None and lo > hi:
        got.fields["t_from"], got.fields["t_to"] = got.fields["t_to"], got.fields["t_from"]
    query = Query(
        classes=tuple(got.classes),
        colors=tuple(got.colors),
        directions=tuple(got.directions),
        types=tuple(got.types),
        lines=tuple(got.lines),
        zones=tuple(got.zones),
        videos=tuple(got.videos),
        without=without,
        conditions=tuple(got.conds),
        text=tuple(unmapped),
        anchors=tuple(got.anchors),
        **got.fields,
    )
    return query, notes, got.moving


def _durations_are(got: _Got, field: str) -> None:
    """The durations said are `field`'s (`pause`, `still`), not the time in view, and it is
    `STOP_MIN_S` at least when none is said; "the longest" ranks by it."""
    got.conds = [c.model_copy(update={"field": field}) if c.field == "dur" else c
                 for c in got.conds]  # fmt: skip
    if not any(c.field == field for c in got.conds):
        got.conds.append(Condition(field=field, op=">=", value=STOP_MIN_S))  # type: ignore[arg-type]
    if got.fields.get("sort", "").removeprefix("-") == "dur":  # "stopped / waited the longest"
        got.fields["sort"] = got.fields["sort"].replace("dur", field)


def _came_or_went(query: Query, moving: Moving) -> Query:
    """`query` without the objects there from the first second (they did not come in the
    video) or still there in the last (they did not leave), unless it bounds that already.

    >>> _came_or_went(parse("person"), "came").canonical()
    'person start>=0:01'
    """
    field, op, value = ("start", ">=", WHOLE_TIME_S) if moving == "came" else (
        "end", "<=", -WHOLE_TIME_S)  # fmt: skip
    if any(c.field == field for c in query.conditions):
        return query
    bound = Condition(field=field, op=op, value=value)  # type: ignore[arg-type]
    return Query(**{**query.model_dump(), "conditions": (*query.conditions, bound)})


def _arrivals(w: _Words, got: _Got, notes: list[str]) -> None:
    """A window said with a verb of coming or going ("arrived after 0:30", "left before
    1:00", "came and went between 0:10 and 0:20", "left in the last 20 seconds": `end>=-0:20`)
    bounds when the object came (`start`) or went (`end`), not when it was in view. A window
    in shares of the video or at one moment stays a window; so do lines and zones (they
    have their own times).

    >>> got = _Got(fields={"t_from": 30.0})
    >>> _arrivals(_Words("people who arrived after 0:30"), got, [])
    >>> [c.canonical() for c in got.conds], got.fields
    (['start>=0:30'], {})
    """
    unused = {w.low[k] for k in range(len(w)) if not w.used[k]}
    new = [k for k in range(len(w) - 1) if w.low[k] == "new" and class_of_word(w.low[k + 1])]
    w.take(*new)  # "how many new people after 0:30?": people who came then
    came = bool(unused & ARRIVE_VERBS) or bool(new)
    went = got.left or bool(unused & DEPART_VERBS)
    got.moving = "came" if came else "went" if went else None
    lo, hi = got.fields.get("t_from"), got.fields.get("t_to")
    if not (came or went) or got.lines or got.zones or (lo is None and hi is None):
        return
    if got.fields.get("t_share") or lo == hi:
        verb = "came" if came else "went"
        notes.append(
            f"When they {verb} is read between two times, not at one moment: this counts the "
            "objects in view then."
            if lo == hi
            else f"When they {verb} is bounded by times of the video, not shares of it: this "
            "window counts the objects in view during it."
        )
        return
    bounds = [("start" if came else "end", ">=", lo), ("end" if went else "start", "<=", hi)]
    # in view at the first / last second is not coming / going in the video: "arrived in
    # the first 10 seconds" leaves out who was there from the start, "left in the last 20
    # seconds" who was still there at the end
    if came and lo == 0:
        bounds[0] = ("start", ">=", WHOLE_TIME_S)
    if went and lo is not None and lo < 0 and hi is None:
        bounds[1] = ("end", "<=", -WHOLE_TIME_S)
    for name, op, value in bounds:
        if value is not None:
            got.conds.append(Condition(field=name, op=op, value=value))  # type: ignore[arg-type]
    got.fields.pop("t_from", None), got.fields.pop("t_to", None)


_Span = tuple[float, float | None, bool, int]  # from, to (None: the end), share?, next index


def _of_the_video(w: _Words, i: int) -> int:
    """The index after "of the video" (or "of the clip", ...) at i, else i."""
    if (w.at(i), w.at(i + 1)) == _OF_THE_VIDEO[0] and w.at(i + 2) in _OF_THE_VIDEO[1]:
        return i + 3
    return i


def _span(w: _Words, i: int) -> _Span | None:
    """A part of the video named at i: "first minute", "last 10 seconds", "second minute"
    (seconds; the last ones counted back from the end), "first half", "last quarter",
    "third quarter", "first 10%" (percent of the video's length), "beginning / middle /
    end of the video". None when i names none."""
    tok, nxt = w.at(i), w.at(i + 1)
    if tok == "first" and nxt == "frame":  # "in the first frame": the video's first moment
        return 0.0, 0.0, False, i + 2
    if tok in ("first", "last", "final") and nxt in SHARES and w.at(i + 2) == "of":
        unit = UNITS.get(w.at(i + 4), 0.0) if w.at(i + 3) in ("a", "an") else 0.0
        if unit > 1:  # "the last quarter of an hour": a time, not a share of the video
            seconds = SHARES[nxt] / 100 * unit
            span = (0.0, seconds) if tok == "first" else (-seconds, None)
            return *span, False, i + 5
    if tok in ("first", "last", "final") or tok in ORDINALS:
        if nxt in SHARES and w.at(i + 2) not in UNITS and w.at(i + 2) not in ("a", "an"):
            share = SHARES[nxt]  # not "the last half minute", "the first quarter of an hour"
            if tok == "first":
                lo, hi = 0.0, share
            elif tok in ("last", "final"):
                lo, hi = 100.0 - share, None
            else:
                lo, hi = (ORDINALS[tok] - 1) * share, ORDINALS[tok] * share
                if hi > 100.5:
                    return None
                hi = None if hi >= 99.9 else hi
            return lo, hi, True, _of_the_video(w, i + 2)
        a = _number(w, i + 1)
        if tok in ("first", "last", "final") and a is not None:
            unit = w.at(i + 1 + a[1])
            if unit in _SHARE_PLURALS and 0 < a[0] * _SHARE_PLURALS[unit] <= 100.5:
                share = min(round(a[0] * _SHARE_PLURALS[unit], 2), 100.0)  # "two thirds"
                end = _of_the_video(w, i + 2 + a[1])
                return (0.0, share, True, end) if tok == "first" else (100 - share, None, True, end)
            if unit in ("%", "percent") and 0 < a[0] <= 100:
                first = tok == "first"
                end = _of_the_video(w, i + 2 + a[1])
                return (0.0, a[0], True, end) if first else (100.0 - a[0], None, True, end)
        t = _time(w, i + 1)
        if t is not None and _objects_counted(w, i + 1, t):
            t = None  # "the first 5 people": a ranking, not a window
        if tok == "first" and t is not None:
            return 0.0, t[0], False, i + 1 + t[1]
        if tok in ("last", "final") and t is not None and t[0] > 0:
            return -t[0], None, False, i + 1 + t[1]
        if tok in ORDINALS and nxt in UNITS and UNITS[nxt] > 1:
            unit = UNITS[nxt]  # "the second minute": from the end of the first to the second
            return (ORDINALS[tok] - 1) * unit, ORDINALS[tok] * unit, False, i + 2
    if tok in PARTS_OF_VIDEO:
        end = _of_the_video(w, i + 1)
        near = w.at(i - 2) in ("at", "near", "towards", "toward")  # "near the end"
        if end > i + 1 or (tok != "middle" and w.at(i - 1) == "the" and near):
            lo, hi = PARTS_OF_VIDEO[tok]  # "at the end" alone too; "the middle" of what?
            return lo, hi, True, end
    return None


def _shares_between(w: _Words, i: int) -> tuple[float, float, int] | None:
    """ "between 10% and 50% (of the video)" at i: the two percentages and the index after."""
    a = _number(w, i + 1)
    if a is None or w.at(i + 1 + a[1]) not in ("%", "percent"):
        return None
    j = i + 2 + a[1]
    if w.at(j) not in ("and", "to", "-"):
        return None
    b = _number(w, j + 1)
    if b is None or w.at(j + 1 + b[1]) not in ("%", "percent"):
        return None
    lo, hi = sorted((a[0], b[0]))
    if hi > 100:
        return None
    return lo, hi, _of_the_video(w, j + 2 + b[1])


def _seconds(got: _Got, **bounds: float) -> None:
    """Set window bounds in seconds; a window in shares of the video said before is left
    (a window is in one or the other)."""
    if got.fields.pop("t_share", False):
        got.fields.pop("t_from", None), got.fields.pop("t_to", None)
    got.fields.update(bounds)


def _window_follows(w: _Words, i: int) -> bool:
    """Whether a time that is not a count of objects starts at i ("last 10 seconds")."""
    time = _time(w, i)
    return time is not None and not _objects_counted(w, i, time)


def _objects_counted(w: _Words, i: int, time: tuple[float, int, bool]) -> bool:
    """Whether the number at i (read as `time`) counts objects: "the first 5 people"."""
    after = w.at(i + time[1])
    return not time[2] and (class_of_word(after) is not None or after in TYPE_WORDS)


def _set_window(got: _Got, lo: float | None, hi: float | None, share: bool) -> None:
    for name, value in (("t_from", lo), ("t_to", hi)):
        if value is None:
            got.fields.pop(name, None)
        else:
            got.fields[name] = value
    got.fields["t_share"] = share


def _read_window(w: _Words, i: int, got: _Got) -> int | None:
    """Windows: "between 0:10 and 0:30", "from 10 s", "after / before / until 1:00",
    "in the last 10 seconds", "the first minute", "the first half", "after the first
    minute", "at the end of the video"; also "from the left" (moving right).
    Returns the index after what it read, or None."""
    tok, nxt = w.at(i), w.at(i + 1)
    start = i + (2 if nxt == "the" else 1)
    whole = next((p for p in _WHOLE_TIME if tuple(w.at(i + k) for k in range(len(p))) == p), None)
    if whole is not None:  # "the whole time": there from the first second to the last
        got.conds.append(Condition(field="start", op="<=", value=WHOLE_TIME_S))
        got.conds.append(Condition(field="end", op=">=", value=-WHOLE_TIME_S))
        w.take(*range(i, i + len(whole)))
        return i + len(whole)
    if tok == "the" and nxt == "very" and w.at(i + 2) in PARTS_OF_VIDEO:
        edge = w.at(i + 2)  # "at the very beginning / end": its first / last second
        if edge in ("beginning", "start"):
            _seconds(got, t_from=0.0, t_to=WHOLE_TIME_S)
        elif edge == "end":
            _seconds(got, t_from=-WHOLE_TIME_S)
        else:
            return None
        w.take(*range(i, i + 3))
        return i + 3
    soon = tok == "before" and w.at(i - 1) in ("just", "right", "shortly")
    if (tok in ("until", "till") or soon) and nxt == "the" and w.at(i + 2) == "end":
        lo, hi = PARTS_OF_VIDEO["end"]  # "stayed until the end", "just before the end"
        _set_window(got, lo, hi, True)
        end = _of_the_video(w, i + 3)
        w.take(*range(i, end))
        return end
    if tok in ("at", "near", "towards", "toward") and nxt == "the":
        span = _span(w, i + 2)  # "near the end", "towards the end of the video"
        if span is not None and w.at(i + 2) in PARTS_OF_VIDEO:
            _set_window(got, span[0], span[1], span[2])
            w.take(*range(i, span[3]))
            return span[3]
    shares = _shares_between(w, i) if tok in ("between", "from") else None
    if shares is not None:  # "between 10% and 50% of the video"
        lo, hi, end = shares
        _set_window(got, lo, hi if hi < 100 else None, True)
        w.take(*range(i, end))
        return end
    if tok in ("after", "since", "past", "before", "until", "till"):
        span = _span(w, start)  # "after the first minute", "before the last quarter"
        if span is not None:
            lo, hi, share, end = span
            if tok in ("after", "since", "past") and hi is not None:
                _set_window(got, hi, None, share)
            elif tok in ("before", "until", "till") and lo != 0:
                _set_window(got, None, lo, share)
            else:
                return None
            w.take(*range(i, end))
            return end
    span = _span(w, i)  # "the first minute", "the last 10 seconds", "the first half"
    if span is not None:
        lo, hi, share, end = span
        _set_window(got, lo, hi, share)
        w.take(*range(i, end))
        return end
    if ":" in tok and w.at(i + 1) in ("-", "to") and ":" in w.at(i + 2):
        a, b = _time(w, i), _time(w, i + 2)  # "0:20-0:40" alone
        if a is not None and b is not None:
            _seconds(got, t_from=min(a[0], b[0]), t_to=max(a[0], b[0]))
            w.take(i, i + 1, i + 2)
            return i + 3
    ranged = tok in ("during", "in", "within", "over") and _time(w, i + 1) is not None
    if tok == "between" or ranged or (tok == "from" and _time(w, i + 1) is not None):
        a = _time(w, i + 1)
        if a is not None:
            j = i + 1 + a[1]
            if w.at(j) in ("and", "to", "until", "till", "-"):
                b = _time(w, j + 1)
                if b is not None:
                    lo, hi = a[0], b[0]
                    if not a[2] and b[2]:  # "between 10 and 30 seconds": one unit for both
                        unit = UNITS.get(w.at(j + b[1]), 1.0)
                        lo = a[0] * unit
                    _seconds(got, t_from=min(lo, hi), t_to=max(lo, hi))
                    w.take(*range(i, j + 1 + b[1]))
                    return j + 1 + b[1]
            if tok == "from":
                _seconds(got, t_from=a[0])
                w.take(*range(i, j))
                return j
    if (
        tok == "from"
        and nxt in ("left", "right", "the")
        and (nxt != "the" or w.at(i + 2) in ("left", "right"))
    ):
        side = nxt if nxt != "the" else w.at(i + 2)
        got.directions.append("right" if side == "left" else "left")  # "from the left"
        end = i + (2 if nxt != "the" else 3)
        w.take(*range(i, end))
        return end
    if tok in ("after", "since", "past"):
        a = _time(w, i + 1)
        if a is not None:
            _seconds(got, t_from=a[0])
            w.take(*range(i, i + 1 + a[1]))
            return i + 1 + a[1]
    if tok in ("before", "until", "till", "by") or (tok == "up" and nxt == "to"):
        start = i + (2 if tok == "up" else 1)
        a = _time(w, start)
        if a is not None:
            _seconds(got, t_to=a[0])
            w.take(*range(i, start + a[1]))
            return start + a[1]
    return None


def _read_ranking(w: _Words, i: int, got: _Got) -> int | None:
    """ "sorted by speed", and superlatives ("the fastest car": `sort:-speed limit:1`,
    "the 3 slowest trucks", "the fastest cars": all of them, ranked).
    Returns the index after what it read, or None."""
    tok, nxt = w.at(i), w.at(i + 1)
    if tok in _SORT_VERBS and nxt == "by" and w.at(i + 2) in SORT_BY:
        sort = SORT_BY[w.at(i + 2)]
        end = i + 3
        if w.at(end) in ("ascending", "descending"):  # "sorted by speed ascending"
            sort = sort.removeprefix("-")
            sort = ("-" + sort) if w.at(end) == "descending" else sort
            end += 1
        got.fields["sort"] = sort
        w.take(*range(i, end))
        return end
    if (
        tok in SUPERLATIVES
        and "sort" not in got.fields  # "the fastest cars, latest first": the first one
        and not (tok == "last" and _window_follows(w, i + 1))
    ):
        sort = SUPERLATIVES[tok]
        if got.ends and sort.endswith("start"):
            sort = sort.replace("start", "end")
        got.fields["sort"] = sort
        taken = [i]
        counted = _number(w, i - 1) if i > 0 and not w.used[i - 1] else None
        after = _number(w, i + 1)
        if counted is not None and counted[0] >= 1 and w.at(i - 1) not in ("a", "an"):
            got.fields["limit"] = min(int(counted[0]), MAX_LIMIT)  # "the 3 fastest cars"
            taken.append(i - 1)
        elif (
            after is not None
            and after[0] >= 1
            and w.at(i + 1) not in ("a", "an")
            and _objects_counted(w, i + 1, (after[0], after[1], False))
        ):
            got.fields["limit"] = min(int(after[0]), MAX_LIMIT)  # "the first 5 people"
            taken.append(i + 1)
        elif not _plural_follows(w, i + 1):
            got.fields["limit"] = 1  # "the fastest car", "who left last"
        w.take(*taken)
        return i + 1
    return None


def _read_clock(w: _Words, i: int, got: _Got) -> int | None:
    """ "at 0:30", "at the 30 second mark": that moment as the window; "around 0:45": that
    moment give or take `AROUND_S`.
    Returns the index after what it read, or None."""
    tok, nxt = w.at(i), w.at(i + 1)
    if tok == "at" and (":" in nxt or _number(w, i + 1) is not None):
        a = _time(w, i + 1)  # "at 0:30", "at 5 seconds", not "at 5" (a count?)
        if a is not None and a[2]:
            _seconds(got, t_from=a[0], t_to=a[0])
            w.take(*range(i, i + 1 + a[1]))
            return i + 1 + a[1]
    if tok in _AROUND and w.at(i - 1) not in _NOT_A_MOMENT:
        a = _time(w, i + 1)  # "around 0:45", "at about 30 seconds": give or take
        if a is not None and a[2]:
            _seconds(got, t_from=max(a[0] - AROUND_S, 0.0), t_to=a[0] + AROUND_S)
            w.take(*range(i, i + 1 + a[1]))
            return i + 1 + a[1]
    a = _time(w, i) if w.at(i - 1) == "the" else None
    if a is not None and a[2] and w.at(i + a[1]) == "mark":  # "at the 30 second mark"
        _seconds(got, t_from=a[0], t_to=a[0])
        w.take(*range(i, i + a[1] + 1))
        return i + a[1] + 1
    return None


def _read_amount(w: _Words, i: int, got: _Got) -> int | None:
    """Durations ("for more than 5 seconds", "longer than 2 s", "at least 5 s"), sizes
    ("larger than 20% of the frame") and speeds ("faster than 40", "slower than 3 m/s").
    Returns the index after what it read, or None."""
    tok, nxt = w.at(i), w.at(i + 1)
    if (tok in ("longer", "shorter") and nxt == "than") or (
        tok == "for" and nxt in ("more", "over", "at", "less", "under")
    ):
        j = i + 1
        op = ">" if tok == "longer" else "<"
        if tok == "for":
            phrase = (nxt, w.at(i + 2))
            j = i + 2
            if phrase == ("at", "least"):
                op, j = ">=", i + 3
            elif phrase == ("at", "most"):
                op, j = "<=", i + 3
            elif nxt in ("more", "less"):
                op = ">" if nxt == "more" else "<"
                j = i + 3 if w.at(i + 2) == "than" else i + 2
            else:
                op = ">" if nxt == "over" else "<"
        else:
            j = i + 2
        a = _time(w, j)
        if a is not None:
            got.conds.append(Condition(field="dur", op=op, value=a[0]))  # type: ignore[arg-type]
            w.take(*range(i, j + a[1]))
            return j + a[1]
    if tok in ("more", "less", "over", "under") or (tok == "at" and nxt in ("least", "most")):
        # "people who stayed more than 10 seconds", "at least 5 s": with a unit only
        j = i + 2 if tok == "at" or nxt == "than" else i + 1
        a = _time(w, j)
        if a is not None and a[2]:
            op = {"more": ">", "over": ">", "less": "<", "under": "<"}.get(tok)
            op = op or (">=" if nxt == "least" else "<=")
            got.conds.append(Condition(field="dur", op=op, value=a[0]))  # type: ignore[arg-type]
            w.take(*range(i, j + a[1]))
            return j + a[1]
    if tok in ("bigger", "larger", "smaller") and nxt == "than":
        a = _number(w, i + 2)
        unit = w.at(i + 2 + a[1]) if a is not None else ""
        if a is not None and unit in ("%", "percent") and 0 <= a[0] <= 100:
            # "larger than 20% of the frame": the box's share of the frame
            op = "<" if tok == "smaller" else ">"
            got.conds.append(Condition(field="size", op=op, value=a[0] / 100))  # type: ignore[arg-type]
            end = i + 3 + a[1]
            if w.low[end : end + 3] == ["of", "the", "frame"]:
                end += 3
            w.take(*range(i, end))
            return end
    if tok in ("faster", "slower", "quicker") and nxt == "than":
        a = _number(w, i + 2)
        if a is not None:
            j = i + 2 + a[1]
            unit_m_s = w.at(j) == "m" and w.at(j + 1) == "/" and w.at(j + 2) == "s"
            name = "speed_m_s" if unit_m_s else "speed"
            got.conds.append(
                Condition(field=name, op=">" if tok != "slower" else "<", value=a[0])  # type: ignore[arg-type]
            )
            end = j + 3 if unit_m_s or (w.at(j) == "px" and w.at(j + 1) == "/") else j
            if w.at(j) in ("px", "pixels", "pixel") and w.at(j + 1) == "per":
                end = j + 3  # "20 pixels per second"
            w.take(*range(i, end))
            return end
    return None


def _read_place(w: _Words, i: int, got: _Got) -> int | None:
    """Lines, zones and videos by name, as written ("line A", "the door zone",
    "video cam-1").
    Returns the index after what it read, or None."""
    tok, nxt = w.at(i), w.at(i + 1)
    if tok in ("line", "zone", "video") and i + 1 < len(w) and _is_name(w.raw[i + 1]):
        name = w.raw[i + 1]
        {"line": got.lines, "zone": got.zones, "video": got.videos}[tok].append(name)
        w.take(i, i + 1)
        return i + 2
    if (
        nxt in ("line", "zone")
        and (tok not in IGNORED or w.raw[i] != tok)
        and _is_name(w.raw[i])
        and not _is_known(tok)
    ):
        # "the door zone", "crossed the A line"
        {"line": got.lines, "zone": got.zones}[nxt].append(w.raw[i])
        w.take(i, i + 1)
        return i + 2
    return None


def _read_stop(w: _Words, i: int, got: _Got) -> int | None:
    """ "stop", "stopped for 5 seconds", "paused": a pause (not "the bus stop", "a stop");
    "waiting", "standing", "loitered": stood still (`still`), paused or never moved.
    Returns the index after what it read, or None."""
    tok = w.at(i)
    if tok in STILL_WORDS and w.at(i + 1) not in ("still", "up"):
        got.still = True  # "how many people were waiting?" (not "stood still", "stood up")
        around = w.at(i + 1) in ("around", "about") and _number(w, i + 2) is None
        end = i + 2 if around else i + 1  # "stood around", not "waited about 10 seconds"
        w.take(*range(i, end))
        return end
    if tok not in STOP_WORDS or w.at(i - 1) in ("bus", "the", "a", "each", "every"):
        return None
    got.stop = True
    w.take(i)
    if w.at(i + 1) == "for":  # "stopped for 5 seconds": at least that long
        a = _time(w, i + 2)
        if a is not None and a[2]:
            got.conds.append(Condition(field="pause", op=">=", value=a[0]))
            w.take(*range(i + 1, i + 2 + a[1]))
            return i + 2 + a[1]
    return i + 1


def _read_pace(w: _Words, i: int, got: _Got) -> int | None:
    """ "ran", "running", "jogged", "hurried": moving at `RUN_PACE` or more (people only;
    `_filters` adds it).
    Returns the index after what it read, or None."""
    if w.at(i) not in RUN_WORDS:
        return None
    got.ran = got.ran or ">="
    w.take(i)
    return i + 1


def _read_direction(w: _Words, i: int, got: _Got) -> int | None:
    """Directions ("left", "from left to right", "towards the camera", "away", "up",
    "parked"); "left" in a question about leaving is the leaving.
    Returns the index after what it read, or None."""
    tok, nxt = w.at(i), w.at(i + 1)
    if tok in ("left", "right") and nxt == "to" and w.at(i + 2) in ("left", "right"):
        got.directions.append(w.at(i + 2))  # "from left to right": moving right
        w.take(i, i + 1, i + 2)
        return i + 3
    if tok in ("left-to-right", "right-to-left"):
        got.directions.append(tok.rsplit("-", 1)[1])
        w.take(i)
        return i + 1
    if tok in ("towards", "toward", "approaching", "closer", "nearer"):
        got.directions.append("toward")
        end = i + 1
        if nxt == "the" and w.at(i + 2) in ("camera", "viewer", "us"):
            end = i + 3
        elif nxt in ("camera", "us", "me"):
            end = i + 2
        w.take(*range(i, end))
        return end
    if tok in ("away", "receding"):
        got.directions.append("away")
        w.take(i)
        return i + 1
    if tok == "left" and got.ends:
        got.left = True  # "when did the van leave/left": the end of the track, not a direction
        w.take(i)
        return i + 1
    if tok == "right" and nxt in _RIGHT_AS_JUST and w.at(i - 1) not in _GOING:
        w.take(i)  # "right after 0:30": just after, not moving right
        return i + 1
    if tok in ("left", "leftward", "leftwards", "right", "rightward", "rightwards"):
        got.directions.append("left" if tok.startswith("left") else "right")
        w.take(i)
        return i + 1
    if tok in ("up", "down") and w.at(i - 1) in _PHRASAL:
        w.take(i)  # "sat down", "stood up", "slowed down": no direction
        return i + 1
    if tok in ("up", "upward", "upwards", "down", "downward", "downwards") and nxt not in ("to",):
        got.directions.append("up" if tok.startswith("up") else "down")
        w.take(i)
        return i + 1
    if tok in ("static", "stationary", "parked", "motionless") or (
        tok in _STAY_WORDS and nxt == "still"
    ):
        got.directions.append("static")  # "parked", "stood still", "stayed still"
        end = i + 2 if tok in _STAY_WORDS else i + 1
        w.take(*range(i, end))
        return end
    return None


def _read_kind(w: _Words, i: int, got: _Got) -> int | None:
    """Fine types (two words first: "police van"), colours and classes (two-word
    ones first: "traffic light").
    Returns the index after what it read, or None."""
    tok, nxt = w.at(i), w.at(i + 1)
    pair = f"{tok} {nxt}"
    if pair in TYPE_WORDS:
        got.types += TYPE_WORDS[pair]
        w.take(i, i + 1)
        return i + 2
    if tok in TYPE_WORDS:
        got.types += TYPE_WORDS[tok]
        w.take(i)
        return i + 1
    if tok in _SHADES and (nxt in COLOR_WORDS or nxt in EXTRA_COLORS):
        w.take(i)  # "dark blue": blue
        return i + 1
    if tok in _SHADES and (nxt in ("coloured", "colored") or class_of_word(nxt) is not None):
        got.colors.append(_SHADES[tok])  # "dark cars", "light coloured vans"
        w.take(*range(i, i + (2 if nxt in ("coloured", "colored") else 1)))
        return i + (2 if nxt in ("coloured", "colored") else 1)
    if tok in COLOR_WORDS or tok in EXTRA_COLORS:
        got.colors.append(COLOR_WORDS.get(tok) or EXTRA_COLORS[tok])
        w.take(i)
        return i + 1
    two = class_of_word(pair) if nxt and nxt.isalpha() else None
    if two is not None and " " in two[0]:
        got.classes += two
        w.take(i, i + 1)
        return i + 2
    one = class_of_word(tok) if tok.isalpha() and tok not in IGNORED else None
    if one is not None:
        got.classes += one
        w.take(i)
        return i + 1
    return None


_ANCHOR_OPENERS: dict[tuple[str, ...], str] = {
    ("while",): "during",
    ("during",): "during",
    ("when",): "during",  # or the moment it left / came: by the verb
    ("at", "the", "moment"): "during",
    ("the", "moment"): "during",
    ("as", "soon", "as"): "during",
    ("at", "the", "same", "time", "as"): "during",
    ("together", "with"): "during",
    ("after",): "after",
    ("once",): "after",
    ("before",): "before",
    ("until",): "before",
}
_ARTICLES = frozenset(_words("the a an any some that this"))
_BE = frozenset(_words("was were is are had has have been being got"))
_PRESENT = frozenset(
    _words("there here visible present around about in view on screen passing passed by "
           "stopped stopping parked waiting standing seen still shown")
)  # fmt: skip
_LEFT = frozenset(_words("left gone exited disappeared departed out off away"))
_CAME = frozenset(_words("arrived came appeared entered showed up turned into"))
_PREDICATE = {"during": _PRESENT, "after": _LEFT | _PRESENT, "before": _CAME | _PRESENT}
_NEEDS = {"after": _LEFT, "before": _CAME}  # "after the bus left", not "after the bus"
_MOMENTS = frozenset({("when",), ("at", "the", "moment"), ("the", "moment"), ("as", "soon", "as")})


def _read_anchor(w: _Words, i: int, got: _Got) -> int | None:
    """Another object the question's times are relative to: "while the bus was there",
    "at the same time as the red car", "after the white van left", "before the truck
    arrived", "when the van left", "when the bus came" (`during:bus`, `after:...`,
    `before:...`, `at_exit:...`, `at_entry:...`); "while the bus was stopped" and "when the
    bus stopped" are about its pause (`during:"bus pause>=2"`, `at_entry:...`); "when the
    fastest car left" about one object (`at_exit:"car sort:-speed"`). "When" opens one
    only inside a question ("how many people were there when the bus was?"), never as its
    first word.
    Returns the index after what it read, or None."""
    opener = next(
        (o for o in _ANCHOR_OPENERS if tuple(w.at(i + k) for k in range(len(o))) == o), None
    )
    if opener is None:
        return None
    relation = _ANCHOR_OPENERS[opener]
    moment = opener in _MOMENTS
    if moment and (i == 0 or not (got.classes or got.types)):
        return None  # "when did the bus leave?", "show me when the bus came": a time asked
    j = i + len(opener)
    while w.at(j) in _ARTICLES:
        j += 1
    thing = _Got()
    k = j
    while (nxt := _read_kind(w, k, thing) or _read_ranking(w, k, thing)) is not None:
        k = nxt  # "the fastest red car", "the first person"
    rank = thing.fields.get("sort") if thing.fields.get("limit") == 1 else None
    if not (thing.classes or thing.types) or (thing.fields and rank is None):
        w.used[j:k] = [False] * (k - j)  # not an anchor: let the other readers look again
        return None
    end = k
    said = _PREDICATE[relation] | (_LEFT | _CAME if moment else frozenset())
    if relation == "during":
        said |= STOP_WORDS
    while w.at(end) in _BE or w.at(end) in said:
        end += 1
    verbs = set(w.low[k:end])
    stopped = bool(verbs & STOP_WORDS)  # "while the bus was stopped": during its pause
    if moment and stopped and not verbs & _BE:  # "when the bus stopped": as its pause began
        relation = "at_entry"
    elif moment:  # "when the van left": at that moment; "when the bus was there": during
        relation = "at_exit" if verbs & _LEFT else "at_entry" if verbs & _CAME else relation
    # the verbs an anchor needs: "after the bus" alone is not one, nor "when the bus did"
    needs: frozenset[str] | None = None
    if relation in _NEEDS:
        needs = _NEEDS[relation]
    elif relation == "during" and opener == ("when",):
        needs = _PRESENT | STOP_WORDS
    if needs is not None and not needs & verbs:
        w.used[j:k] = [False] * (k - j)
        return None
    if rank in ("start", "-start") and relation in ("after", "at_exit"):
        rank = rank.replace("start", "end")  # "after the first person left": left first
    of = Values(classes=tuple(thing.classes), types=tuple(thing.types), colors=tuple(thing.colors))
    pause = STOP_MIN_S if stopped else None
    anchor = Anchor(relation=relation, of=of, stopped=pause, rank=rank)  # type: ignore[arg-type]
    got.anchors.append(anchor)
    w.take(*range(i, end))
    return end


# each reads one kind of phrase at a word; the first that reads something wins
_READERS = (
    _read_anchor,
    _read_window,
    _read_ranking,
    _read_clock,
    _read_amount,
    _read_place,
    _read_stop,
    _read_pace,
    _read_direction,
    _read_kind,
)


def _excluded(found: dict[str, list[str]], excluded: dict[str, list[str]]) -> Values:
    """The exclusions of a question. A track has one class, colour, direction and type, so
    where those are also asked for, excluding is taking away ("vehicles except buses":
    `car motorcycle truck`); what would take away everything asked stays an exclusion."""
    without: dict[str, list[str]] = {}
    for name, values in excluded.items():
        kept = [v for v in found[name] if v not in values]
        if name in ("classes", "colors", "directions", "types") and kept:
            found[name][:] = kept
        elif values:
            without[name] = values
    return Values(**without)  # type: ignore[arg-type]


def _object_parts(w: _Words, query: Query, video_id: str | None) -> list[Query]:
    """The objects of a question joined by "and", each with its own class and attributes
    ("red cars and white trucks": `car color:red`, `truck color:white`; the window, lines,
    zones and conditions are shared). [] for one object, and when attributes are given to
    only some of the nouns ("red cars and trucks": the colour applies to both, one query).

    >>> [p.canonical() for p in understand("how many red cars and white trucks?").parts]
    ['car color:red', 'truck color:white']
    >>> understand("how many red cars and trucks between 0:10 and 0:30?").parts
    []

    Windows joined by "and", each in its own part, are asked one by one too:

    >>> [p.canonical() for p in understand("how many cars before 0:10 and after 1:00?").parts]
    ['car t:..0:10', 'car t:1:00..']
    """
    # "cars, bikes and people": a comma in a list cuts as "and" does
    cuts = [k for k in range(len(w)) if w.low[k] in ("and", ",") and not w.used[k]]
    if not cuts:
        return []
    bounds = [-1, *cuts, len(w)]
    segments = [" ".join(w.raw[a + 1 : b]) for a, b in pairwise(bounds)]
    own = [understand(text, video_id).query for text in segments if text.strip()]
    objects = [q for q in own if q.classes or q.types]
    windows = [
        (q.t_from, q.t_to, q.t_share) for q in own if q.t_from is not None or q.t_to is not None
    ]
    if len(objects) < 2 and len(windows) == len(own) and len(set(windows)) == len(windows) > 1:
        # "how many cars in the first 10 seconds and in the last 10 seconds?": per window
        return _per_window(query, windows)
    if len(objects) < 2:
        return []
    attributed = [bool(q.colors or q.directions or not q.without.is_empty()) for q in objects]
    if any(attributed) and not all(attributed):
        return []
    shared = query.model_dump()
    return [
        Query(
            **{
                **shared,
                "classes": q.classes,
                "types": q.types,
                "colors": q.colors,
                "directions": q.directions,
                "without": q.without,
                "text": (),
            }
        )
        for q in objects
    ]


def _is_name(raw: str) -> bool:
    """A line, zone or video name as written after `line`/`zone`/`video` ("line A")."""
    return bool(re.fullmatch(r"[\w.\-]+", raw)) and raw.lower() not in _NOT_NAMES


_NOT_NAMES = frozenset(
    _words("""the and or of in on at to from between after before during was were is are be
    been had has have did do does with for that which who when while than""")
)


def _is_known(tok: str) -> bool:
    return tok in COLOR_WORDS or class_of_word(tok) is not None or tok in TYPE_WORDS


# a `key:value` token or a comparison (`speed>40`): the question is a query-language string
_QL_HINT = re.compile(r"(?:^|\s)[a-z_]+(?::\S|>=|<=|>|<|=)", re.IGNORECASE)
_KIND_WORDS = re.compile(
    r"^\s*(?:how many|how much|number of|count|when|what time|where|which|show(?: me)?|"
    r"list|find)\b[:\s]*",
    re.IGNORECASE,
)


def _looks_like_ql(question: str) -> bool:
    return _QL_HINT.search(question) is not None


def _strip_kind_words(question: str) -> str:
    return _KIND_WORDS.sub("", question.strip()).rstrip("?").strip()
