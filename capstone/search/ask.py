"""Questions in plain English, answered from stored tracks: `ask("how many people walked
left between 0:10 and 0:30?")`.

A question is mapped deterministically onto the query language (`capstone.search.ql`) by
`understand`: its kind from the first words (*how many / count / number of* -> count,
*when / what time* -> when, *where* -> where, anything else -> which), numbers and times in
digits or words (*ten*, *the first 30 seconds*, *between 0:10 and 0:30*, *after 1 minute*,
*before 20s*), colour words, direction words (*left*, *from left to right*, *towards the
camera*, *away*), class names with plurals and synonyms (*people*, *pedestrians*,
*vehicles*, *cyclists*), fine types (*minivan*, *pickup*, *police van*), *line A*,
*zone door*, *faster than 40*, *for more than 5 seconds*, superlatives (*the fastest car*:
`car sort:-speed limit:1`; *the last person to leave*: `person sort:-end limit:1`). The
query then runs in one SQL statement (`capstone.search.tracks.run`).

- *how many*: the number of distinct plausible tracks (identities, when the identity stage
  linked tracks), never raw detections; implausible tracks set aside are mentioned.
- *when*: the matching objects' times (their end for *leave/exit*).
- *which / show*: the objects, best first, with attributes and a thumbnail of the best crop.
- *where*: the objects with the zones they dwelt in and where their best box was.

An object is an identity when the identity stage linked several tracks, else one track:
answers cite it once (`object_items`), spanning its matching tracks (`track_ids`).

Words it cannot map are reported (`guessing`, `note`) and ranked by the existing hybrid
text/vector search over keyframes (`capstone.search.query.search`); those items are labelled
`source="hybrid_search"`. A question that cannot be answered gets a sentence, not an
exception (only an unreachable database raises, as `DatabaseError`).

>>> u = understand("How many people walked left between 0:10 and 0:30?")
>>> u.kind, u.query.canonical()
('count', 'person dir:left t:0:10..0:30')
>>> understand("show me every red car going towards the camera").query.canonical()
'car color:red dir:toward'
>>> answer = ask("how many trains?", video_id="highway")  # doctest: +SKIP
>>> answer.count, answer.text  # doctest: +SKIP
(0, 'Understood: how many of `train video:highway`. None: ...')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from capstone.core.fine_types import classes_of_type
from capstone.errors import DatabaseError, InputError
from capstone.search import zeroshot
from capstone.search.heat import Heatmap
from capstone.search.ql import (
    COLOR_WORDS,
    MAX_LIMIT,
    Condition,
    Query,
    QueryError,
    class_of_word,
    parse,
    parse_time,
)

if TYPE_CHECKING:
    from capstone.search.tracks import TrackHit

Kind = Literal["count", "when", "which", "where"]
MAX_ITEMS = 20


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
}
_TENS = frozenset(_words("twenty thirty forty fourty fifty sixty seventy eighty ninety"))
UNITS: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
}
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
    toward towards away""")
)
END_VERBS = frozenset(_words("leave leaves left leaving exit exits exited disappear disappeared"))
# superlatives -> `sort:` ("the fastest car": `car sort:-speed limit:1`); first / last are
# about leaving in a question about leaving ("the last person to leave": `sort:-end`)
SUPERLATIVES: dict[str, str] = {
    "fastest": "-speed", "quickest": "-speed", "slowest": "speed",
    "longest": "-dur", "shortest": "dur",
    "biggest": "-size", "largest": "-size", "smallest": "size",
    "first": "start", "earliest": "start", "last": "-start", "latest": "-start",
}  # fmt: skip
SORT_WORDS: dict[str, str] = {
    "-speed": "fastest", "speed": "slowest", "-speed_m_s": "fastest", "speed_m_s": "slowest",
    "-dur": "longest in view", "dur": "shortest in view", "-size": "biggest",
    "size": "smallest", "start": "earliest", "-start": "latest",
    "end": "first to leave", "-end": "last to leave", "-conf": "most confident",
    "conf": "least confident",
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


class AnswerItem(BaseModel):
    """One cited moment: a track (or, when guessing, a keyframe from the hybrid search)."""

    video_id: str
    track_id: int | None = None
    class_name: str | None = None
    t_start: float | None = None
    t_end: float | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    thumbnail: str | None = Field(default=None, description="API path of a JPEG picture")
    source: Literal["tracks", "hybrid_search"] = "tracks"


class Answer(BaseModel):
    """The answer to a question: what was understood, the answer, the cited moments."""

    question: str
    query: str = Field(
        description="the canonical query-language string it was mapped onto (several objects: "
        "one query each, joined by ' ; ')"
    )
    kind: Kind
    count: int | None = Field(default=None, description="for how-many questions")
    items: list[AnswerItem] = Field(default_factory=list)
    text: str = Field(description="one human sentence: what it understood, then the answer")
    guessing: bool = False
    note: str | None = None
    unmapped: list[str] = Field(default_factory=list)
    heatmaps: list[Heatmap] = Field(
        default_factory=list, description="for where-questions: where they were, per video"
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
    if w.at(i) in ("a", "an") or w.at(i) == "half":  # "a", "half" alone are not times
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


def _kind(w: _Words) -> tuple[Kind, bool]:
    text = " ".join(w.low)
    ends = any(t in END_VERBS for t in w.low) and not re.search(
        r"\b(walk|walks|walked|walking|mov\w+|go|goes|going|went|head\w*|travel\w*|driv\w+|"
        r"drove|rid\w+|rode|run\w*|ran|turn\w*|to the|towards?|from)\s+(the\s+)?left\b",
        text,
    )
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
    if _looks_like_ql(question):
        q = parse(_strip_kind_words(question))
        if video_id is not None and not q.videos:
            q = Query(**{**q.model_dump(), "videos": (video_id,)})
        return Understood(kind=kind, query=q)

    fields: dict[str, Any] = {}
    classes: list[str] = []
    colors: list[str] = []
    directions: list[str] = []
    types: list[str] = []
    lines: list[str] = []
    zones: list[str] = []
    videos: list[str] = [video_id] if video_id else []
    conds: list[Condition] = []
    notes: list[str] = []
    n = len(w)
    i = 0
    while i < n:
        tok = w.at(i)
        nxt = w.at(i + 1)
        # ---- time windows
        if tok == "between" or (tok == "from" and _time(w, i + 1) is not None):
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
                        fields["t_from"], fields["t_to"] = min(lo, hi), max(lo, hi)
                        w.take(*range(i, j + 1 + b[1]))
                        i = j + 1 + b[1]
                        continue
                if tok == "from":
                    fields["t_from"] = a[0]
                    w.take(*range(i, j))
                    i = j
                    continue
        if (
            tok == "from"
            and nxt in ("left", "right", "the")
            and (nxt != "the" or w.at(i + 2) in ("left", "right"))
        ):
            side = nxt if nxt != "the" else w.at(i + 2)
            directions.append("right" if side == "left" else "left")  # "from the left"
            end = i + (2 if nxt != "the" else 3)
            w.take(*range(i, end))
            i = end
            continue
        if tok in ("after", "since", "past"):
            a = _time(w, i + 1)
            if a is not None:
                fields["t_from"] = a[0]
                w.take(*range(i, i + 1 + a[1]))
                i += 1 + a[1]
                continue
        if tok in ("before", "until", "till", "by") or (tok == "up" and nxt == "to"):
            start = i + (2 if tok == "up" else 1)
            a = _time(w, start)
            if a is not None:
                fields["t_to"] = a[0]
                w.take(*range(i, start + a[1]))
                i = start + a[1]
                continue
        if tok == "first":
            a = _time(w, i + 1)
            if a is not None:
                fields["t_from"], fields["t_to"] = 0.0, a[0]
                w.take(*range(i, i + 1 + a[1]))
                i += 1 + a[1]
                continue
        if (
            tok in SUPERLATIVES
            and "sort" not in fields  # "the fastest cars, latest first": the first one
            and not (tok == "last" and _time(w, i + 1) is not None)
        ):
            sort = SUPERLATIVES[tok]
            if ends and sort.endswith("start"):
                sort = sort.replace("start", "end")
            fields["sort"] = sort
            taken = [i]
            counted = _number(w, i - 1) if i > 0 and not w.used[i - 1] else None
            if counted is not None and counted[0] >= 1 and w.at(i - 1) not in ("a", "an"):
                fields["limit"] = min(int(counted[0]), MAX_LIMIT)  # "the 3 fastest cars"
                taken.append(i - 1)
            elif not _plural_follows(w, i + 1):
                fields["limit"] = 1  # "the fastest car", "who left last"
            w.take(*taken)
            i += 1
            continue
        if tok == "at" and ":" in nxt:
            a = _time(w, i + 1)
            if a is not None:
                fields["t_from"] = fields["t_to"] = a[0]
                w.take(i, i + 1)
                i += 2
                continue
        # ---- durations and speeds
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
                conds.append(Condition(field="dur", op=op, value=a[0]))  # type: ignore[arg-type]
                w.take(*range(i, j + a[1]))
                i = j + a[1]
                continue
        if tok in ("faster", "slower", "quicker") and nxt == "than":
            a = _number(w, i + 2)
            if a is not None:
                j = i + 2 + a[1]
                unit_m_s = w.at(j) == "m" and w.at(j + 1) == "/" and w.at(j + 2) == "s"
                name = "speed_m_s" if unit_m_s else "speed"
                conds.append(
                    Condition(field=name, op=">" if tok != "slower" else "<", value=a[0])  # type: ignore[arg-type]
                )
                end = j + 3 if unit_m_s or (w.at(j) == "px" and w.at(j + 1) == "/") else j
                w.take(*range(i, end))
                i = end
                continue
        # ---- lines, zones, videos (names as written)
        if tok in ("line", "zone", "video") and i + 1 < n and _is_name(w.raw[i + 1]):
            name = w.raw[i + 1]
            {"line": lines, "zone": zones, "video": videos}[tok].append(name)
            w.take(i, i + 1)
            i += 2
            continue
        if (
            nxt in ("line", "zone")
            and (tok not in IGNORED or w.raw[i] != tok)
            and _is_name(w.raw[i])
            and not _is_known(tok)
        ):
            # "the door zone", "crossed the A line"
            {"line": lines, "zone": zones}[nxt].append(w.raw[i])
            w.take(i, i + 1)
            i += 2
            continue
        # ---- directions
        if tok in ("left", "right") and nxt == "to" and w.at(i + 2) in ("left", "right"):
            directions.append(w.at(i + 2))  # "from left to right": moving right
            w.take(i, i + 1, i + 2)
            i += 3
            continue
        if tok in ("towards", "toward", "approaching", "closer", "nearer"):
            directions.append("toward")
            end = i + 1
            if nxt == "the" and w.at(i + 2) in ("camera", "viewer", "us"):
                end = i + 3
            elif nxt in ("camera", "us", "me"):
                end = i + 2
            w.take(*range(i, end))
            i = end
            continue
        if tok in ("away", "receding"):
            directions.append("away")
            w.take(i)
            i += 1
            continue
        if tok == "left" and ends:
            w.take(i)  # "when did the van leave/left": the end of the track, not a direction
            i += 1
            continue
        if tok in ("left", "leftward", "leftwards", "right", "rightward", "rightwards"):
            directions.append("left" if tok.startswith("left") else "right")
            w.take(i)
            i += 1
            continue
        if tok in ("up", "upward", "upwards", "down", "downward", "downwards") and nxt not in (
            "to",
        ):
            directions.append("up" if tok.startswith("up") else "down")
            w.take(i)
            i += 1
            continue
        if (
            tok in ("static", "stationary", "parked", "motionless")
            or (tok == "standing" and nxt == "still")
            or (tok == "not" and nxt == "moving")
        ):
            directions.append("static")
            end = i + 2 if tok in ("standing", "not") else i + 1
            w.take(*range(i, end))
            i = end
            continue
        # ---- fine types (two words first), colours, classes
        pair = f"{tok} {nxt}"
        if pair in TYPE_WORDS:
            types += TYPE_WORDS[pair]
            w.take(i, i + 1)
            i += 2
            continue
        if tok in TYPE_WORDS:
            types += TYPE_WORDS[tok]
            w.take(i)
            i += 1
            continue
        if tok in COLOR_WORDS or tok in EXTRA_COLORS:
            colors.append(COLOR_WORDS.get(tok) or EXTRA_COLORS[tok])
            w.take(i)
            i += 1
            continue
        two = class_of_word(pair) if nxt and nxt.isalpha() else None
        if two is not None and " " in two[0]:
            classes += two
            w.take(i, i + 1)
            i += 2
            continue
        one = class_of_word(tok) if tok.isalpha() and tok not in IGNORED else None
        if one is not None:
            classes += one
            w.take(i)
            i += 1
            continue
        i += 1

    if not classes and not types and w.at(0) in ("who", "whom", "whose"):
        classes.append("person")  # "who stayed the longest?": people, not parked cars
    unmapped = [
        w.low[k]
        for k in range(n)
        if not w.used[k] and w.low[k] not in IGNORED and re.fullmatch(r"[a-z][a-z'\-]*", w.low[k])
    ]
    lo, hi = fields.get("t_from"), fields.get("t_to")
    if lo is not None and hi is not None and lo > hi:
        fields["t_from"], fields["t_to"] = fields["t_to"], fields["t_from"]
    query = Query(
        classes=tuple(classes),
        colors=tuple(colors),
        directions=tuple(directions),
        types=tuple(types),
        lines=tuple(lines),
        zones=tuple(zones),
        videos=tuple(videos),
        conditions=tuple(conds),
        text=tuple(unmapped),
        **fields,
    )
    parts = _object_parts(w, query, video_id) if (classes or types) else []
    return Understood(
        kind=kind, query=query, unmapped=unmapped, ends=ends, notes=notes, parts=parts
    )


def _object_parts(w: _Words, query: Query, video_id: str | None) -> list[Query]:
    """The objects of a question joined by "and", each with its own class and attributes
    ("red cars and white trucks": `car color:red`, `truck color:white`; the window, lines,
    zones and conditions are shared). [] for one object, and when attributes are given to
    only some of the nouns ("red cars and trucks": the colour applies to both, one query).

    >>> [p.canonical() for p in understand("how many red cars and white trucks?").parts]
    ['car color:red', 'truck color:white']
    >>> understand("how many red cars and trucks between 0:10 and 0:30?").parts
    []
    """
    cuts = [k for k in range(len(w)) if w.low[k] == "and" and not w.used[k]]
    if not cuts:
        return []
    bounds = [-1, *cuts, len(w)]
    segments = [" ".join(w.raw[a + 1 : b]) for a, b in pairwise(bounds)]
    own = [understand(text, video_id).query for text in segments if text.strip()]
    objects = [q for q in own if q.classes or q.types]
    if len(objects) < 2:
        return []
    attributed = [bool(q.colors or q.directions) for q in objects]
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
                "text": (),
            }
        )
        for q in objects
    ]


def _is_name(raw: str) -> bool:
    """A line, zone or video name as written after `line`/`zone`/`video` ("line A")."""
    return bool(re.fullmatch(r"[\w.\-]+", raw)) and raw.lower() not in _NOT_NAMES


_NOT_NAMES = frozenset(_words("the and or of in on at to from between after before during"))


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


# --------------------------------------------------------------------------- answering


def ask(question: str, video_id: str | None = None, *, session: Any = None) -> Answer:
    """Answer an English question (or a query-language string) from the stored results.

    Args:
        question: e.g. "how many people walked left in the first 30 seconds?".
        video_id: only this video (default: every video's latest completed analysis).
        session: a `sqlmodel.Session` to run in (default: a new one).

    Returns:
        An `Answer`: the canonical `query`, the `kind`, the `count` (how-many), the cited
        `items` and a `text` sentence. Bad or unanswerable questions give a sentence;
        only an unreachable database raises (`DatabaseError`).

    >>> a = ask("how many people walked left in the first 30 seconds?")  # doctest: +SKIP
    >>> a.query, a.count  # doctest: +SKIP
    ('person dir:left t:0:00..0:30', 4)
    """
    from capstone.config import get_settings

    q = (question or "").strip()
    limit = get_settings().max_query_chars
    if not q:
        return _sentence(
            question,
            "which",
            "Ask a question, e.g. 'how many people walked left in the "
            "first 30 seconds?' or a query like 'car color:red dir:left'.",
        )
    if len(q) > limit:
        return _sentence(
            question[:limit],
            "which",
            f"The question is longer than {limit} characters "
            "(MAX_QUERY_CHARS); please ask a shorter one.",
        )
    if video_id is not None and (not video_id.strip() or len(video_id) > 128):
        return _sentence(q, "which", "The video id is empty or too long.")
    try:
        understood = understand(q, video_id)
    except InputError as exc:
        return _sentence(q, "which", f"I could not read that query: {exc}.")
    try:
        if session is not None:
            return _answer(session, q, understood)
        from capstone.store.engine import session_scope

        with session_scope() as own:
            return _answer(own, q, understood)
    except DatabaseError:
        raise
    except InputError as exc:
        return _sentence(q, understood.kind, f"I could not answer that: {exc}.", understood)
    except Exception as exc:
        if _undefined_table(exc):
            return _sentence(
                q,
                understood.kind,
                "No track attributes are stored yet: analyse the video again (the "
                "'attributes' stage) to answer questions about it.",
                understood,
            )
        raise


def _undefined_table(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "42P01"


def _sentence(question: str, kind: Kind, text: str, understood: Understood | None = None) -> Answer:
    query = understood.query.canonical() if understood is not None else ""
    return Answer(question=question, query=query, kind=kind, text=text, items=[])


def _answer(session: Any, question: str, u: Understood) -> Answer:
    from capstone.search import tracks

    if u.parts:
        return _answer_parts(session, question, u)

    query = u.query
    filters = query.filters_only()
    canonical = query.canonical()
    guessing = bool(u.unmapped)
    note = None
    expansions = _zero_shot(session, u) if guessing else []
    unknown = [w for w in u.unmapped if w.lower() not in {e.word for e in expansions}]
    if expansions:
        note = (
            "Not a class I know, so matched to what the image classifier saw in the tracks' "
            "best crops (a guess): " + "; ".join(e.describe() for e in expansions) + "."
        )
    if unknown:
        note = (note + " " if note else "") + (
            "I could not map " + ", ".join(repr(x) for x in unknown) + " onto the query "
            "language; the counts use what I understood"
            + (
                "."
                if expansions
                else ", and the moments shown are ranked by text/vector similarity (a guess)."
            )
        )
    said = f"Understood: {_kind_phrase(u.kind)} `{canonical or '(everything)'}`."
    if expansions:
        said += " Guessed: " + ", ".join(repr(e.word) for e in expansions) + "."
    limit = query.limit or (MAX_ITEMS if u.kind != "when" else 50)
    result = tracks.run(
        filters.model_copy(update={"limit": limit}),
        session=session,
        zero_shot=zeroshot.weights(expansions) or None,
    )
    items = object_items(result.hits)
    if u.ends:
        items.sort(key=lambda it: it.t_end or 0.0)
    elif u.kind == "when":
        items.sort(key=lambda it: it.t_start or 0.0)
    what = _what(query, result.count)
    if expansions:
        what += " like " + "/".join(repr(e.word) for e in expansions)
    if result.count == 0:
        aside = tracks.run(
            filters.model_copy(update={"all": True, "limit": 5}),
            session=session,
            zero_shot=zeroshot.weights(expansions) or None,
        )
        answer = f"None: no {what} found" + _window_words(query) + "."
        if aside.matched and not query.all:
            doubts = sorted({d for h in aside.hits for d in (h.attributes.get("doubts") or [])})
            answer += (
                f" ({aside.matched} track(s) set aside as not plausible"
                + (f": {', '.join(doubts)}" if doubts else "")
                + "; add all:true to see them.)"
            )
        if guessing and not expansions:
            items = _hybrid_items(session, question, u)
        parents = tuple(sorted({c for t in query.types for c in classes_of_type(t)}))
        recognised = Query(types=query.types, videos=query.videos, all=True, limit=1)
        if parents and not query.classes and not tracks.run(recognised, session=session).count:
            kind_only = _what(query.model_copy(update={"colors": (), "directions": ()}), 1)
            note = (note + " " if note else "") + (
                f"No track was recognised as {_article(kind_only)} {kind_only}: fine types come "
                "from the image classifier on each track's best crop, which small or blurred "
                "crops rarely reach."
            )
            # "when did the white van leave?": vans are detected as cars and trucks; with
            # something else to go by (a colour, a direction, a time...), show those
            broader = filters.model_copy(update={"types": (), "classes": parents})
            narrowed = broader != Query(classes=parents, videos=query.videos, all=query.all)
            near = tracks.run(broader.model_copy(update={"limit": limit}), session=session)
            if narrowed and near.count:
                guessing, items = True, object_items(near.hits)
                note += (
                    f" Shown instead: the {_what(broader, near.count)} "
                    f"(`{broader.canonical()}`), a guess."
                )
                answer += f" Nearest: {near.count} {_what(broader, near.count)} (see note)."
        return Answer(
            question=question,
            query=canonical,
            kind=u.kind,
            count=0 if u.kind == "count" else None,
            items=items,
            text=f"{said} {answer}",
            guessing=guessing,
            note=note,
            unmapped=u.unmapped,
        )
    maps: list[Heatmap] = []
    if u.kind == "count":
        unit = "identities" if any(h.identity_id is not None for h in result.hits) else "tracks"
        answer = (
            f"{result.count} {what}{_window_words(query)} (distinct {unit} among "
            f"{result.matched} plausible track(s))."
        )
    elif u.kind == "when":
        moments = ", ".join(
            _clock(it.t_end if u.ends else it.t_start)
            + ("" if u.ends else f"-{_clock(it.t_end)}")
            + f" ({it.video_id})"
            for it in items[:5]
        )
        more = f" and {result.count - 5} more" if result.count > 5 else ""
        verb = "left at" if u.ends else "seen at"
        answer = f"{result.count} {what} {verb} {moments}{more}."
        if query.sort is not None and len(items) < result.count:
            ranked = SORT_WORDS.get(query.sort, f"by {query.sort}")
            answer = f"The {ranked} of {result.count} {what}: {moments}."
    elif u.kind == "where":
        maps = tracks.heatmaps(
            filters, session=session, zero_shot=zeroshot.weights(expansions) or None
        )
        if maps:
            spots = "; ".join(_spot(hm, named=len(maps) > 1 or not query.videos) for hm in maps)
            answer = f"{result.count} {what}{_window_words(query)}: {spots}."
        else:
            places = ", ".join(_place(it) for it in items[:5])
            answer = f"{result.count} {what}: {places}."
    else:
        shown = min(len(items), result.count)
        first = SORT_WORDS.get(query.sort, f"by {query.sort}") if query.sort else "best"
        answer = f"{result.count} {what}{_window_words(query)}; showing {shown}, {first} first."
    if guessing and not expansions:
        items = _hybrid_items(session, question, u) or items
    return Answer(
        question=question,
        query=canonical,
        kind=u.kind,
        count=result.count if u.kind == "count" else None,
        items=items,
        text=f"{said} {answer}",
        guessing=guessing,
        note=note,
        unmapped=u.unmapped,
        heatmaps=maps,
    )


def _kind_phrase(kind: Kind) -> str:
    return {"count": "how many of", "when": "when for", "where": "where for", "which": "which"}[
        kind
    ]


def _plural(noun: str, n: int) -> str:
    """`noun` for `n` of them.

    >>> _plural("person", 2), _plural("bus", 3), _plural("car", 1), _plural("minivan", 0)
    ('people', 'buses', 'car', 'minivans')
    """
    if n == 1:
        return noun
    if noun == "person":
        return "people"
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    return noun + "s"


def _what(query: Query, n: int = 2) -> str:
    """What the query looks for, in words: "white cars/trucks moving left"."""
    words = []
    if query.colors:
        words.append("/".join(query.colors))
    nouns = [t.replace("_", " ") for t in query.types] or list(query.classes) or ["object"]
    words.append("/".join(_plural(x, n) for x in nouns))
    noun = " ".join(words)
    if query.directions:
        noun += " moving " + "/".join(query.directions)
    return noun


def _article(noun: str) -> str:
    return "an" if noun[:1] in ("a", "e", "i", "o", "u") else "a"


def _window_words(query: Query) -> str:
    if query.t_from is not None and query.t_to is not None:
        return f" between {_clock(query.t_from)} and {_clock(query.t_to)}"
    if query.t_from is not None:
        return f" after {_clock(query.t_from)}"
    if query.t_to is not None:
        return f" before {_clock(query.t_to)}"
    return ""


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    m, s = divmod(float(seconds), 60.0)
    return f"{int(m)}:{s:04.1f}"


def _spot(heatmap: Heatmap, named: bool) -> str:
    region, share = heatmap.region()
    where = "mostly in the" if share >= 0.5 else "most often in the"
    video = f", {heatmap.video_id}" if named else ""
    return f"{where} {region} of the frame ({share:.0%} of their time in view{video})"


def _place(item: AnswerItem) -> str:
    zones = item.attributes.get("zones") or []
    if zones:
        return f"track {item.track_id} in zone {', '.join(zones)}"
    box = item.attributes.get("best_bbox")
    if box:
        return f"track {item.track_id} around x={(box[0] + box[2]) / 2:.0f}, y={box[3]:.0f} px"
    return f"track {item.track_id}"


def object_items(hits: Sequence[TrackHit]) -> list[AnswerItem]:
    """One item per object among `hits` (best first): an identity the identity stage linked
    (`identity_id`), else a track. Its picture and attributes are those of its best-ranked
    track, its times span all of its tracks among `hits` (`attributes["track_ids"]`), its
    lines and zones are theirs together.

    >>> from capstone.search.tracks import TrackHit
    >>> def hit(track, identity, t0, t1):
    ...     return TrackHit(video_id="v", analysis_id=1, track_id=track, identity_id=identity,
    ...                     class_name="person", t_start=t0, t_end=t1, plausible=True,
    ...                     attributes={"lines": [], "zones": []}, score=0.0)
    >>> items = object_items([hit(3, 3, 8.0, 20.0), hit(7, None, 1.0, 2.0), hit(5, 3, 0.0, 6.5)])
    >>> [(i.track_id, i.t_start, i.t_end, i.attributes["track_ids"]) for i in items]
    [(3, 0.0, 20.0, [3, 5]), (7, 1.0, 2.0, [7])]
    """
    items: dict[tuple[int, str, int], AnswerItem] = {}
    for hit in hits:
        key = (hit.analysis_id, "t", hit.track_id)
        if hit.identity_id is not None:
            key = (hit.analysis_id, "i", hit.identity_id)
        item = items.get(key)
        if item is None:
            items[key] = _track_item(hit)
            continue
        item.t_start = min(hit.t_start, hit.t_start if item.t_start is None else item.t_start)
        item.t_end = max(hit.t_end, hit.t_end if item.t_end is None else item.t_end)
        item.attributes["track_ids"] = sorted([*item.attributes["track_ids"], hit.track_id])
        for name in ("lines", "zones"):
            item.attributes[name] = sorted({*item.attributes[name], *hit.attributes[name]})
    return list(items.values())


def _track_item(hit: TrackHit) -> AnswerItem:
    attributes = dict(hit.attributes)
    attributes["best_bbox"] = hit.best_bbox
    attributes["best_frame"] = hit.best_frame
    attributes["analysis_id"] = hit.analysis_id
    if hit.identity_id is not None:
        attributes["identity_id"] = hit.identity_id
    attributes["track_ids"] = [hit.track_id]
    return AnswerItem(
        video_id=hit.video_id,
        track_id=hit.track_id,
        class_name=hit.class_name,
        t_start=hit.t_start,
        t_end=hit.t_end,
        attributes=attributes,
        thumbnail=hit.thumbnail,
    )


def _answer_parts(session: Any, question: str, u: Understood) -> Answer:
    """A question about several objects ("red cars and white trucks"): each part answered
    on its own, then together (counts per part and in all; moments of every part)."""
    from capstone.search import tracks

    limit = u.query.limit or (MAX_ITEMS if u.kind != "when" else 50)
    results = [
        tracks.run(q.filters_only().model_copy(update={"limit": limit}), session=session)
        for q in u.parts
    ]
    canonicals = [q.canonical() for q in u.parts]
    said = f"Understood: {_kind_phrase(u.kind)} " + " and ".join(f"`{c}`" for c in canonicals)
    items = [item for r in results for item in object_items(r.hits)]
    if u.kind == "when" or u.ends:
        items.sort(key=lambda it: (it.t_end if u.ends else it.t_start) or 0.0)
    each = " and ".join(
        f"{r.count} {_what(q, r.count)}" for q, r in zip(u.parts, results, strict=True)
    )
    total = sum(r.count for r in results)
    maps: list[Heatmap] = []
    if u.kind == "where":
        maps = _summed([tracks.heatmaps(q.filters_only(), session=session) for q in u.parts])
    spots = "; ".join(_spot(hm, named=len(maps) > 1 or not u.query.videos) for hm in maps)
    answer = f"{each}{_window_words(u.query)} ({total} in all)" + (f": {spots}" if spots else "")
    note = None
    if u.unmapped:
        note = (
            "I could not map " + ", ".join(repr(x) for x in u.unmapped) + " onto the query "
            "language; the answer uses what I understood."
        )
    return Answer(
        question=question,
        query=" ; ".join(canonicals),
        kind=u.kind,
        count=total if u.kind == "count" else None,
        items=items[: max(limit, MAX_ITEMS)],
        text=f"{said}. {answer}.",
        guessing=bool(u.unmapped),
        note=note,
        unmapped=u.unmapped,
        heatmaps=maps,
    )


def _summed(groups: list[list[Heatmap]]) -> list[Heatmap]:
    """Heatmaps of several parts summed per video (the busiest video first)."""
    by_video: dict[str, Heatmap] = {}
    for group in groups:
        for hm in group:
            known = by_video.get(hm.video_id)
            if known is None:
                by_video[hm.video_id] = hm.model_copy(deep=True)
                continue
            known.counts = [
                [a + b for a, b in zip(x, y, strict=True)]
                for x, y in zip(known.counts, hm.counts, strict=True)
            ]
            known.tracks += hm.tracks
    return sorted(by_video.values(), key=lambda hm: (-sum(map(sum, hm.counts)), hm.video_id))


def _zero_shot(session: Any, u: Understood) -> list[zeroshot.Expansion]:
    """The unmapped words that match ImageNet labels stored for the tracks in scope
    (ConSE, `capstone.search.zeroshot`); [] when none does or no text model is at hand."""
    from capstone.errors import ModelNotFoundError
    from capstone.search import tracks

    labels = tracks.stored_labels(u.query.filters_only(), session=session)
    try:
        return zeroshot.expand(u.unmapped, labels)
    except ModelNotFoundError:
        return []


def _hybrid_items(session: Any, question: str, u: Understood) -> list[AnswerItem]:
    """The unmapped words ranked by the hybrid keyframe search (same videos, classes, window)."""
    from capstone.search import query as searching

    q = u.query
    words = " ".join(u.unmapped + [c for c in q.classes])
    try:
        hits = searching.search(
            searching.SearchQuery.parse(
                text=words,
                k=MAX_ITEMS,
                filters={
                    "video_ids": list(q.videos) or None,
                    "t_from": q.t_from,
                    "t_to": q.t_to,
                },
            ),
            session=session,
        )
    except InputError:
        return []
    items = []
    for h in hits:
        thumb = None
        if h.thumbnail is not None and h.thumbnail.frame_number is not None:
            from urllib.parse import quote

            thumb = (
                f"/videos/{quote(h.video_id, safe='')}/thumbnails/{h.thumbnail.frame_number}"
                f"?analysis_id={h.analysis_id}"
            )
        items.append(
            AnswerItem(
                video_id=h.video_id,
                track_id=h.track_id,
                class_name=h.class_name,
                t_start=h.timestamp,
                t_end=h.timestamp,
                attributes={
                    "description": h.description,
                    "score": h.score,
                    "frame_number": h.frame_number,
                },
                thumbnail=thumb,
                source="hybrid_search",
            )
        )
    return items


__all__ = ["Answer", "AnswerItem", "QueryError", "Understood", "ask", "understand"]
