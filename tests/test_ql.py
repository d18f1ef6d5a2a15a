"""The query language and the question mapping: pure functions, no database.

Round trip: `parse(q.canonical()) == q` for generated queries; bad tokens raise a
`QueryError` naming the token; English questions map onto the expected canonical queries.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capstone.errors import InputError
from capstone.search import ql
from capstone.search.ql import Condition, Query, QueryError, parse, parse_time
from capstone.search.understand import understand

_NAMES = st.text(alphabet=st.sampled_from("abcXYZ019_-. "), min_size=1, max_size=12).filter(
    lambda s: s == s.strip()
)
_WORDS = st.from_regex(r"[a-z][a-z']{0,9}", fullmatch=True).filter(
    lambda w: ql.class_of_word(w) is None
)
_SECONDS = st.one_of(
    st.integers(0, 20000).map(float), st.floats(0, 1e6, allow_nan=False, allow_infinity=False)
)


@st.composite
def values(draw: st.DrawFn) -> ql.Values:
    return ql.Values(
        classes=tuple(draw(st.lists(st.sampled_from(ql.COCO_CLASSES), max_size=2))),
        types=tuple(
            draw(st.lists(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True), max_size=2))
        ),
        colors=tuple(draw(st.lists(st.sampled_from(ql.COLORS), max_size=2))),
        directions=tuple(draw(st.lists(st.sampled_from(ql.DIRECTIONS), max_size=2))),
        lines=tuple(draw(st.lists(_NAMES, max_size=2))),
        zones=tuple(draw(st.lists(_NAMES, max_size=2))),
        videos=tuple(draw(st.lists(_NAMES, max_size=2))),
    )


@st.composite
def anchor_values(draw: st.DrawFn) -> ql.Values:
    """What an anchor (`during:`, `after:`, `before:`) may name: at least a class or type."""
    return ql.Values(
        classes=tuple(draw(st.lists(st.sampled_from(ql.COCO_CLASSES), min_size=1, max_size=2))),
        types=tuple(
            draw(st.lists(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True), max_size=2))
        ),
        colors=tuple(draw(st.lists(st.sampled_from(ql.COLORS), max_size=2))),
        directions=tuple(draw(st.lists(st.sampled_from(ql.DIRECTIONS), max_size=1))),
    )


@st.composite
def queries(draw: st.DrawFn) -> Query:
    conds = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(ql.NUMERIC_FIELDS))
        high = 1.0 if name in ("conf", "size") else 1e6
        value = draw(st.floats(0, high, allow_nan=False, allow_infinity=False))
        conds.append(Condition(field=name, op=draw(st.sampled_from(ql.OPS)), value=value))
    t_from = draw(st.none() | _SECONDS)
    t_to = draw(st.none() | _SECONDS)
    window = draw(st.sampled_from(["start", "end", "share"]))
    if window == "end":  # a window before the end of the video
        t_from, t_to = (None if t is None else -max(t, 0.5) for t in (t_to, t_from))
    if window == "share":  # percentages of the video's length
        t_from, t_to = (None if t is None else min(t, 100.0) for t in (t_from, t_to))
    if t_from is not None and t_to is not None and t_from > t_to:
        t_from, t_to = t_to, t_from
    return Query(
        classes=tuple(draw(st.lists(st.sampled_from(ql.COCO_CLASSES), max_size=3))),
        types=tuple(
            draw(st.lists(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True), max_size=2))
        ),
        colors=tuple(draw(st.lists(st.sampled_from(ql.COLORS), max_size=3))),
        directions=tuple(draw(st.lists(st.sampled_from(ql.DIRECTIONS), max_size=2))),
        conditions=tuple(conds),
        t_from=t_from,
        t_to=t_to,
        t_share=window == "share",
        lines=tuple(draw(st.lists(_NAMES, max_size=2))),
        zones=tuple(draw(st.lists(_NAMES, max_size=2))),
        videos=tuple(draw(st.lists(_NAMES, max_size=2))),
        without=draw(st.none() | values()) or ql.Values(),
        text=tuple(draw(st.lists(_WORDS, max_size=3))),
        sort=draw(
            st.none() | st.sampled_from([f"{d}{f}" for f in ql.SORT_FIELDS for d in ("", "-")])
        ),
        anchors=tuple(
            ql.Anchor(
                relation=draw(st.sampled_from(ql.RELATIONS)),
                of=of,
                stopped=draw(st.none() | st.floats(0.1, 1e4, allow_nan=False)),
                rank=draw(
                    st.none()
                    | st.sampled_from([f"{d}{f}" for f in ql.RANK_FIELDS for d in ("", "-")])
                ),
            )
            for of in draw(st.lists(anchor_values(), max_size=2))
        ),
        all=draw(st.booleans()),
        limit=draw(st.none() | st.integers(1, ql.MAX_LIMIT)),
    )


@settings(max_examples=400, deadline=None)
@given(queries())
def test_canonical_round_trip(q: Query) -> None:
    text = q.canonical()
    again = parse(text, max_chars=10_000)
    assert again == q, text
    assert again.canonical() == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_string_parses_or_names_its_problem(s: str) -> None:
    try:
        q = parse(s, max_chars=10_000)
    except QueryError as exc:
        assert isinstance(exc, InputError)
        assert str(exc)
        return
    assert parse(q.canonical(), max_chars=10_000) == q


def test_exclusions() -> None:
    q = parse("vehicles -bus -color:white,grey -dir:static -line:A -zone:door -video:x")
    assert q.classes == ("bus", "car", "motorcycle", "truck")
    assert q.without == ql.Values(
        classes=("bus",),
        colors=("grey", "white"),
        directions=("static",),
        lines=("A",),
        zones=("door",),
        videos=("x",),
    )
    assert q.canonical() == (
        "bus car motorcycle truck -bus -color:grey,white -dir:static -line:A -zone:door -video:x"
    )
    assert parse("-people").without.classes == ("person",)
    assert parse("t:-0:10..").without.is_empty()  # a window before the end, not an exclusion


def test_issue_example() -> None:
    q = parse(
        "car color:red dir:left speed>40 t:0:10..0:30 line:A zone:door conf>=0.5 "
        "video:ID type:minivan dur>=2 limit:20"
    )
    assert q.classes == ("car",)
    assert q.colors == ("red",) and q.directions == ("left",) and q.types == ("minivan",)
    assert (q.t_from, q.t_to) == (10.0, 30.0)
    assert q.lines == ("A",) and q.zones == ("door",) and q.videos == ("ID",)
    assert {(c.field, c.op, c.value) for c in q.conditions} == {
        ("speed", ">", 40.0),
        ("conf", ">=", 0.5),
        ("dur", ">=", 2.0),
    }
    assert q.limit == 20 and not q.all


@pytest.mark.parametrize(
    ("words", "classes"),
    [
        ("people", ("person",)),
        ("pedestrians persons person", ("person",)),
        ("vehicles", ("bus", "car", "motorcycle", "truck")),
        ("bikes bicycles cyclists", ("bicycle",)),
        ("buses trains", ("bus", "train")),
        ("traffic lights", ("traffic light",)),
        ("class:fire_hydrant", ("fire hydrant",)),
    ],
)
def test_class_synonyms_and_plurals(words: str, classes: tuple[str, ...]) -> None:
    assert parse(words).classes == classes


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10", 10), ("0:10", 10), ("1:02:03", 3723), ("10s", 10), ("2m", 120), ("1m30s", 90)],
)
def test_times(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds
    assert parse(f"t:{text}..").t_from == seconds


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ("car colr:red", "colr:red"),
        ("car color:mauve", "color:mauve"),
        ("speed>>4", "speed>>4"),
        ("conf>=1.5", "conf>=1.5"),
        ("t:0:10", "t:0:10"),
        ("t:1:99..", "t:1:99.."),
        ("dur>=soon", "dur>=soon"),
        ("limit:0", "limit:0"),
        ("weight>3", "weight>3"),
        ("car '; DROP TABLE apps_db_track; --", "';"),
        ("dir:sideways", "dir:sideways"),
        ("car sort:colour", "sort:colour"),
        ("car sort:--speed", "sort:--speed"),
        ("car -speed>40", "-speed>40"),
        ("car -t:0:10..", "-t:0:10.."),
        ("car -hats", "-hats"),
        ("car -color:mauve", "-color:mauve"),
        ('car at_exit:"car sort:-pace"', "at_exit:car sort:-pace"),  # anchors: stored values
        ("person end>-0", "end>-0"),
    ],
)
def test_bad_tokens_are_named(query: str, bad: str) -> None:
    with pytest.raises(QueryError) as err:
        parse(query)
    assert repr(bad) in str(err.value)
    assert err.value.http_status == 422


def test_length_is_bounded_by_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from capstone.config import get_settings

    get_settings.cache_clear()
    monkeypatch.setenv("MAX_QUERY_CHARS", "40")
    try:
        with pytest.raises(QueryError, match="MAX_QUERY_CHARS"):
            parse("car " * 11)
        assert parse("car " * 9).classes == ("car",)
    finally:
        get_settings.cache_clear()


def test_reversed_window_and_unbalanced_quote() -> None:
    with pytest.raises(QueryError, match="after"):
        parse("t:0:30..0:10")
    with pytest.raises(QueryError, match="after"):
        parse("t:-0:10..-0:30")
    with pytest.raises(QueryError, match="from the start or from the end"):
        parse("t:-0:10..0:30")
    with pytest.raises(QueryError, match="-0"):
        parse("t:-0..")
    with pytest.raises(QueryError, match="dur needs a time"):
        parse("dur>-5")
    with pytest.raises(QueryError, match="quote"):
        parse('line:"gate A')


QUESTIONS = [
    ("How many people walked left between 0:10 and 0:30?", "count", "person dir:left t:0:10..0:30"),
    ("how many pedestrians moved right in the first 30 seconds", "count",
     "person dir:right t:0:00..0:30"),
    ("count persons between ten and thirty-five seconds", "count", "person t:0:10..0:35"),
    ("number of cyclists after 1 minute", "count", "bicycle t:1:00.."),
    ("which vehicles came before 20s?", "which", "bus car motorcycle truck start<=0:20"),
    ("show me every red car going towards the camera", "which", "car color:red dir:toward"),
    ("when did the white van leave?", "when", "type:minivan,moving_van,police_van color:white"),
    ("where are the people in zone door", "where", "person zone:door"),
    ("which cars crossed line A from left to right", "which", "car dir:right line:A"),
    ("people coming from the left", "which", "person dir:right"),
    ("how many trains?", "count", "train"),
    ("list grey trucks faster than 40 for more than 2 seconds", "which",
     "truck color:grey speed>40 dur>2"),
    ("how many people moving away between 1:00 and 1:30", "count", "person dir:away t:1:00..1:30"),
    ("what time did the ambulance appear", "when", "type:ambulance"),
    ("how many car color:red t:..30s", "count", "car color:red t:..0:30"),
    ("how many people in the first minute", "count", "person t:0:00..1:00"),
    ("show me the fastest car", "which", "car sort:-speed limit:1"),
    ("the 3 slowest trucks", "which", "truck sort:speed limit:3"),
    ("the fastest red cars going left", "which", "car color:red dir:left sort:-speed"),
    ("which person stayed longest?", "which", "person sort:-dur limit:1"),
    ("who was the first to appear?", "which", "person sort:start limit:1"),
    ("when did the last car leave?", "when", "car sort:-end limit:1"),
    ("the two biggest vehicles after 10 seconds", "which",
     "bus car motorcycle truck t:0:10.. sort:-size limit:2"),
    ("how many people were in view at 0:30?", "count", "person t:0:30..0:30"),
    ("what happened at 0:12?", "which", "t:0:12..0:12"),
    ("how many people at once", "count", "person"),
    ("how many cars were on screen at the same time after 0:10?", "count", "car t:0:10.."),
    ("how many people walked right in the last 10 seconds?", "count", "person dir:right t:-0:10.."),
    ("show me the cars in the final minute", "which", "car t:-1:00.."),
    ("how fast was the fastest car?", "which", "car sort:-speed limit:1"),
    ("how long was the red car in view?", "which", "car color:red"),
    ("how many distinct people appeared?", "count", "person"),
    ("what colour was the fastest car?", "which", "car sort:-speed limit:1"),
    ("which person came last in the last half minute", "which",
     "person start>=-0:30 sort:-start limit:1"),
    ("how many people did not walk left?", "count", "person -dir:left"),
    ("how many people didn't walk left or right", "count", "person -dir:left,right"),
    ("vehicles except buses", "which", "car motorcycle truck"),
    ("how many vehicles other than cars between 0:10 and 0:20", "count",
     "bus motorcycle truck t:0:10..0:20"),
    ("cars but not trucks", "which", "car"),
    ("which cars were neither white nor black", "which", "car -color:black,white"),
    ("everything except people", "which", "-person"),
    ("people who never crossed line A", "which", "person -line:A"),
    ("how many cars not in zone door", "count", "car -zone:door"),
    ("how many people didn't move", "count", "person dir:static"),
    ("which people were not moving", "which", "person dir:static"),
    ("were there any trucks?", "count", "truck"),
    ("is there a red car after 0:10?", "count", "car color:red t:0:10.."),
    ("did anyone walk left?", "count", "person dir:left"),
    ("how many people walked more than 10 seconds?", "count", "person dur>10"),
    ("who stayed less than 5 seconds?", "which", "person dur<5"),
    ("people in view at least 5 s after 0:10", "which", "person dur>=5 t:0:10.."),
    ("how many people stayed over a minute", "count", "person dur>60"),
    ("how many people walked left in the second minute?", "count",
     "person dir:left t:1:00..2:00"),
    ("cars in the third minute", "which", "car t:2:00..3:00"),
    ("how many people in the first half of the video?", "count", "person t:0%..50%"),
    ("how many people walked left in the second half?", "count", "person dir:left t:50%.."),
    ("cars in the last quarter of the clip", "which", "car t:75%.."),
    ("cars in the third quarter", "which", "car t:50%..75%"),
    ("how many people in the first 10% of the video?", "count", "person t:0%..10%"),
    ("how many trucks in the last 20 percent?", "count", "truck t:80%.."),
    ("how many people were there at the beginning of the video?", "count", "person t:0%..10%"),
    ("how many cars at the end?", "count", "car t:90%.."),
    ("people in the middle of the video", "which", "person t:40%..60%"),
    ("how many people entered after the first minute?", "count", "person start>=1:00"),
    ("how many cars after the first half?", "count", "car t:50%.."),
    ("how many cars before the last quarter?", "count", "car t:..75%"),
    ("how many people before the last minute?", "count", "person t:..-1:00"),
    ("how many cars drove past?", "count", "car"),
    ("how many people between 10% and 50% of the video?", "count", "person t:10%..50%"),
    ("how many cars in the first three quarters of the video?", "count", "car t:0%..75%"),
    ("how many people towards the end of the video?", "count", "person t:90%.."),
    ("how many people walked towards the camera at the end?", "count",
     "person dir:toward t:90%.."),
    ("did anyone stop?", "count", "person pause>=2"),
    ("how many people stopped for more than 5 seconds near the end?", "count",
     "person pause>5 t:90%.."),
    ("which cars stopped for 3 seconds?", "which", "car pause>=3"),
    ("who stopped the longest?", "which", "person pause>=2 sort:-pause limit:1"),
    ("how many people in the first quarter hour?", "count", "person t:0:00..15:00"),
    ("how many people in the last quarter of an hour?", "count", "person t:-15:00.."),
    ("show me the first 5 people", "which", "person sort:start limit:5"),
    ("which were the last 3 cars to leave?", "which", "car sort:-end limit:3"),
    ("show me the fastest 3 cars", "which", "car sort:-speed limit:3"),
    ("what was the speed of the fastest truck?", "which", "truck sort:-speed limit:1"),
    ("how many cars were slower than 20 pixels per second?", "count", "car speed<20"),
    ("what was the busiest minute for cars?", "count", "car"),
    ("which 10 seconds had the most people?", "count", "person"),
    # times relative to another object
    ("how many people were there while the bus was there?", "count", "person during:bus"),
    ("how many cars drove left while a truck was visible?", "count",
     "car dir:left during:truck"),
    ("how many people were in view at the same time as the truck?", "count",
     "person during:truck"),
    ("which cars came after the white car left?", "which", 'car after:"car color:white"'),
    ("how many people walked left before the red car arrived?", "count",
     'person dir:left before:"car color:red"'),
    ("how many cars were there until the bus arrived", "count", "car before:bus"),
    ("how many cars were there when the white van left?", "count",
     'car at_exit:"type:minivan,moving_van,police_van color:white"'),
    ("how many people were there when the bus arrived?", "count", "person at_entry:bus"),
    ("how many cars were there as soon as the truck appeared", "count", "car at_entry:truck"),
    ("while the bus was stopped, how many people walked by?", "count",
     'person during:"bus pause>=2"'),
    ("how many people were there when the bus stopped?", "count",
     'person at_entry:"bus pause>=2"'),
    ("how many people walked by while the car was parked?", "count", "person during:car"),
    ("how many people stopped while the bus was stopped?", "count",
     'person pause>=2 during:"bus pause>=2"'),
    ("when did the bus leave?", "when", "bus"),
    ("how many cars after 0:10?", "count", "car t:0:10.."),
    ("how many cars were there when the fastest car left?", "count",
     'car at_exit:"car sort:-speed"'),
    ("how many people came after the first person left?", "count",
     'person after:"person sort:end"'),
    ("how many people were there when the last person arrived?", "count",
     'person at_entry:"person sort:-start"'),
    ("how many cars passed while the biggest truck was there?", "count",
     'car during:"truck sort:-size"'),
    ("how many people after the first minute?", "count", "person t:1:00.."),
    # coming and going: when the object came (`start`) or went (`end`), not when in view
    ("how many people arrived after 0:30?", "count", "person start>=0:30"),
    ("how many people left before 0:30?", "count", "person end<=0:30"),
    ("how many people walked left before 0:30?", "count", "person dir:left t:..0:30"),
    ("which cars entered between 10 and 20 seconds?", "which", "car start>=0:10 start<=0:20"),
    ("how many people appeared between 0:20 and 0:40?", "count", "person t:0:20..0:40"),
    ("how many people came and left between 0:10 and 0:40?", "count",
     "person start>=0:10 end<=0:40"),
    ("did anyone arrive after 1 minute?", "count", "person start>=1:00"),
    ("how many people came from the left after 0:20?", "count", "person dir:right start>=0:20"),
    ("how many people arrived in the second half?", "count", "person t:50%.."),
    ("how many people left in the last 20 seconds?", "count", "person end>=-0:20 end<=-0:01"),
    ("how many people arrived in the first 10 seconds?", "count",
     "person start>=0:01 start<=0:10"),
    ("who arrived in the last 30 seconds?", "which", "person start>=-0:30"),
    ("how many people were there the whole time?", "count", "person start<=0:01 end>=-0:01"),
    ("which cars were parked from start to finish?", "which",
     "car dir:static start<=0:01 end>=-0:01"),
    ("how many cars entered zone door after 0:10?", "count", "car t:0:10.. zone:door"),
    # "right after": just after, unless a verb of moving goes before it
    ("how many people right after 0:30?", "count", "person t:0:30.."),
    ("how many people walked right after 0:30?", "count", "person dir:right t:0:30.."),
    ("how many cars right before the end?", "count", "car t:90%.."),
    # a moment said roughly, the end of the video, a mark
    ("how many people around 0:45?", "count", "person t:0:40..0:50"),
    ("how many people were there at about 2 seconds?", "count", "person t:0:00..0:07"),
    ("how many people stayed until the end?", "count", "person t:90%.."),
    ("how many people just before the end?", "count", "person t:90%.."),
    ("how many people were there at the 30 second mark?", "count", "person t:0:30..0:30"),
    # shades of colour
    ("how many dark cars?", "count", "car color:black"),
    ("how many light coloured vans?", "count", "type:minivan,moving_van,police_van color:white"),
    ("how many dark blue cars?", "count", "car color:blue"),
    ("how many traffic lights?", "count", "traffic_light"),
    # running: a pace of at least `RUN_PACE` own heights a second (people only)
    ("did anyone run?", "count", "person pace>=1.3"),
    ("how many people were running left after 0:10?", "count",
     "person dir:left pace>=1.3 t:0:10.."),
    ("which people did not run?", "which", "person pace<1.3"),
    ("how many cars were running?", "count", "car"),
    # moments and units
    ("how many people in the first frame?", "count", "person t:0:00..0:00"),
    ("how many people at 1 second?", "count", "person t:0:01..0:01"),
    ("people in the first 500 milliseconds", "which", "person t:0:00..0.5"),
    ("how many people at least 5 seconds?", "count", "person dur>=5"),
    ("how many people walked up?", "count", "person dir:up"),
    # ranges written as one, hyphenated directions, more words for people
    ("how many people walked left during 0:20-0:40?", "count", "person dir:left t:0:20..0:40"),
    ("how many people walked left 0:20-0:40?", "count", "person dir:left t:0:20..0:40"),
    ("how many people walked left within 0:20 and 0:40?", "count",
     "person dir:left t:0:20..0:40"),
    ("how many people walked from right to left between 0:20 and 0:40?", "count",
     "person dir:left t:0:20..0:40"),
    ("how many people walked left-to-right after 0:20?", "count", "person dir:right t:0:20.."),
    ("how many individuals walked right between 20s and 40s?", "count",
     "person dir:right t:0:20..0:40"),
    ("how many passersby were there?", "count", "person"),
    ("how many people were there at the very beginning?", "count", "person t:0:00..0:01"),
    ("how many people at the very end?", "count", "person t:-0:01.."),
    ("how many new people appeared after 0:30?", "count", "person start>=0:30"),
    ("how many new cars between 0:10 and 0:20?", "count", "car start>=0:10 start<=0:20"),
    ("how many people arrived per minute?", "count", "person start>=0:01"),
    ("how many people left every 10 seconds?", "count", "person end<=-0:01"),
    # waiting, standing: stood still (a pause, or the whole visit of one who never moved)
    ("how many people were waiting?", "count", "person still>=2"),
    ("how many people stood around after 0:30?", "count", "person still>=2 t:0:30.."),
    ("how many people waited for more than 5 seconds?", "count", "person still>5"),
    ("who loitered?", "which", "person still>=2"),
    ("who waited the longest?", "which", "person still>=2 sort:-still limit:1"),
    ("which person ran the fastest?", "which", "person pace>=1.3 sort:-pace limit:1"),
    ("how many people stood still?", "count", "person dir:static"),
    ("how many people were there while the bus was waiting?", "count", "person during:bus"),
]  # fmt: skip


@pytest.mark.parametrize(
    "question", ["how many people stood up?", "how many cars slowed down after 0:10?",
                 "did anyone sit down?", "how many people showed up?"],
)  # fmt: skip
def test_up_and_down_of_a_verb_are_not_directions(question: str) -> None:
    assert understand(question).query.directions == ()


@pytest.mark.parametrize(
    ("question", "length"),
    [("how long is the video?", True), ("how long was this clip", True),
     ("what is the length of the video?", True), ("video duration", True),
     ("how long did the footage last?", True), ("how long was the car in the video?", False),
     ("how long were people in view?", False)],
)  # fmt: skip
def test_how_long_is_the_video_asks_for_its_length(question: str, length: bool) -> None:
    assert understand(question, "cam").length == length


@pytest.mark.parametrize(
    ("question", "occupancy"),
    [("what was the average number of people?", True),
     ("on average, how many cars were in view after 0:10?", True),
     ("how many people were faster than average?", False),
     ("what was the average speed of the cars?", False),
     ("how many people at once?", False), ("how busy was the road?", True),
     ("was the square crowded after 1:00?", True), ("how many people were busy?", False)],
)  # fmt: skip
def test_on_average_how_many_asks_for_how_many_at_a_time(question: str, occupancy: bool) -> None:
    u = understand(question)
    assert u.occupancy == occupancy
    if "crowded" in question:  # crowded with people
        assert u.query.classes == ("person",) and u.unmapped == []


@pytest.mark.parametrize(("question", "kind", "canonical"), QUESTIONS)
def test_question_mapping(question: str, kind: str, canonical: str) -> None:
    u = understand(question)
    assert (u.kind, u.query.canonical()) == (kind, canonical)
    assert u.unmapped == []
    assert parse(canonical) == u.query


@pytest.mark.parametrize(
    ("question", "relative"),
    [
        ("how many big vehicles?", ("size", ">")),
        ("which small cars went left?", ("size", "<")),
        ("how big was the truck?", None),
        ("how many cars were as large as the bus?", None),
    ],
)
def test_big_and_small_are_against_the_average_size(
    question: str, relative: tuple[str, str] | None
) -> None:
    assert understand(question).relative == relative


@pytest.mark.parametrize(
    ("question", "noted"),
    [("how many women were there?", True), ("how many kids walked left?", True),
     ("how many people were there?", False)],
)  # fmt: skip
def test_men_women_and_children_are_counted_as_people_and_said(question: str, noted: bool) -> None:
    u = understand(question)
    assert any("men, women and children" in n for n in u.notes) == noted


@pytest.mark.parametrize(
    ("question", "yes_no"),
    [
        ("were there any trucks?", True),
        ("did anyone walk left after 1:00?", True),
        ("is there a bus and a car?", True),
        ("which trucks were there?", False),
        ("how many trucks were there?", False),
        ("when did a truck appear?", False),
        ("was the fastest car red?", True),  # about the one found: checked, not counted
        ("was the fastest red car going left?", True),
        ("was the fastest car fast?", False),  # nothing to check: a list
        ("is it raining?", False),  # words it cannot map: no yes or no from the rest
    ],
)
def test_yes_no_questions(question: str, yes_no: bool) -> None:
    u = understand(question)
    assert u.yes_no is yes_no
    counted = (yes_no and u.check is None) or question.startswith("how many")
    assert (u.kind == "count") is counted


def test_a_yes_no_question_about_a_ranked_object_checks_what_is_said_after_its_noun() -> None:
    u = understand("was the fastest car red?")
    assert (u.query.canonical(), u.check.colors, u.kind) == (
        "car sort:-speed limit:1",
        ("red",),
        "which",
    )
    u = understand("was the fastest red car going left?")
    assert u.query.canonical() == "car color:red sort:-speed limit:1"  # red: which car
    assert (u.check.colors, u.check.directions) == ((), ("left",))
    assert understand("were there any red cars?").check is None


@pytest.mark.parametrize(
    ("question", "by", "compare", "canonical"),
    [
        ("what was the most common direction?", "direction", False, ""),
        ("which direction did most people walk?", "direction", False, "person"),
        ("how many people walked in each direction?", "direction", False, "person"),
        ("count the cars by colour", "color", False, "car"),
        ("what colour were most cars?", "color", False, "car"),
        ("what is the most common type of vehicle?", "class", False, "bus car motorcycle truck"),
        ("how many people per video", "video", False, "person"),
        ("were more people walking left or right?", "direction", True, "person dir:left,right"),
        ("were there more cars than trucks?", "class", True, "car truck"),
        ("did fewer people walk right than left?", "direction", True, "person dir:left,right"),
        ("what colour was the fastest car?", None, False, "car sort:-speed limit:1"),
        ("how many cars per minute", None, False, "car"),
        ("how many people in video cam-1", None, False, "person video:cam-1"),
        ("how many cars and trucks by colour?", "color", False, "car truck"),  # one breakdown
        ("what percentage of the cars were white?", "color", False, "car"),  # white's share
        ("what proportion of people walked left?", "direction", False, "person"),
        (
            "what percentage of the vehicles were trucks?",
            "class",
            False,
            "bus car motorcycle truck",
        ),
        ("how many different colours of cars were there?", "color", False, "car"),
        ("how many kinds of vehicles were there?", "class", False, "bus car motorcycle truck"),
    ],
)
def test_breakdowns(question: str, by: str | None, compare: bool, canonical: str) -> None:
    u = understand(question)
    assert (u.by, u.compare, u.query.canonical()) == (by, compare, canonical)
    assert u.unmapped == []
    assert u.yes_no == (" than " in question)  # "were there more cars than trucks?": yes / no
    assert u.parts == [] or by is None


@pytest.mark.parametrize(
    ("question", "relative", "canonical"),
    [
        ("how many cars were faster than the average?", ("speed", ">"), "car"),
        ("which people stayed longer than usual after 0:10?", ("dur", ">"), "person t:0:10.."),
        ("trucks smaller than the average one", ("size", "<"), "truck"),
        ("cars faster than 40", None, "car speed>40"),
        ("what was the average speed of the cars?", None, "car"),
    ],
)
def test_compared_with_the_average(
    question: str, relative: tuple[str, str] | None, canonical: str
) -> None:
    u = understand(question)
    assert (u.relative, u.query.canonical(), u.unmapped) == (relative, canonical, [])
    assert u.average is (question.startswith("what was the average"))


def test_how_many_seconds_asks_for_a_time_and_commas_list_objects() -> None:
    u = understand("how many seconds was the black car visible?")
    assert (u.kind, u.measure, u.query.canonical()) == ("which", "dur", "car color:black")
    u = understand("how much time did people spend in view?")
    assert (u.kind, u.measure, u.unmapped) == ("which", "dur", [])
    u = understand("how many cars, bikes and people?")
    assert [q.canonical() for q in u.parts] == ["car", "bicycle", "person"]
    u = understand("what happened before 0:05 and after 0:30?")  # windows, no class
    assert [q.canonical() for q in u.parts] == ["t:..0:05", "t:0:30.."]


@pytest.mark.parametrize(
    ("question", "threshold", "canonical"),
    [
        ("were there more than 5 people?", (">", 5.0), "person"),
        ("were there at least 3 cars after 0:10?", (">=", 3.0), "car t:0:10.."),
        ("are there fewer than 10 trucks?", ("<", 10.0), "truck"),
        ("were there no more than 2 buses?", ("<=", 2.0), "bus"),
        ("was there more than one person?", (">", 1.0), "person"),
        ("were there people for more than 5 seconds?", None, "person dur>5"),  # a time
    ],
)
def test_a_yes_no_question_about_a_number(
    question: str, threshold: tuple[str, float] | None, canonical: str
) -> None:
    u = understand(question)
    assert (u.threshold, u.query.canonical(), u.yes_no, u.unmapped) == (
        threshold,
        canonical,
        True,
        [],
    )


def test_stood_still_larger_than_a_share_of_the_frame() -> None:
    assert understand("how many people stood still?").query.canonical() == "person dir:static"
    assert understand("people who stayed still").query.directions == ("static",)
    q = understand("show people larger than 20% of the frame").query
    assert q.canonical() == "person size>0.2"
    assert understand("cars smaller than 1 percent").query.canonical() == "car size<0.01"
    assert understand("how many people walked across from left to right?").unmapped == []


def test_sorted_by_and_what_colours() -> None:
    assert understand("vehicles sorted by speed").query.canonical() == (
        "bus car motorcycle truck sort:-speed"
    )
    assert understand("people ordered by time").query.sort == "start"
    assert understand("cars sorted by size ascending").query.sort == "size"
    assert understand("what colours were the trucks?").by == "color"
    assert understand("what colour were the trucks?").measure == "color"  # each one's


def test_a_negation_with_nothing_to_exclude_is_left_out_and_said() -> None:
    u = understand("people not wearing hats walking left")
    assert u.query.canonical() == "person dir:left wearing hats"
    assert u.query.without.is_empty()
    assert u.notes and "'not'" in u.notes[0]


def test_unmapped_words_are_reported_and_kept_as_text() -> None:
    u = understand("which pedestrians wore hats", video_id="cam-1")
    assert u.unmapped == ["wore", "hats"]
    assert u.query.text == ("wore", "hats")
    assert u.query.videos == ("cam-1",)


def test_how_many_left_means_leaving_not_a_direction() -> None:
    assert understand("how many people left").query.directions == ()
    assert understand("how many people walked left").query.directions == ("left",)


@pytest.mark.parametrize(
    ("question", "at_once"),
    [
        ("how many people at once?", True),
        ("how many cars were in view at the same time", True),
        ("what is the maximum number of people in view?", True),
        ("how many people were there simultaneously between 0:10 and 0:20", True),
        ("how many people were there between 0:10 and 0:20", False),
        ("how many people stayed for at most 5 seconds", False),
        ("which cars were in view at the same time", False),  # a list, not a number
        ("when were the most people in view?", True),
        ("what was the busiest moment?", True),
        ("which car moved the most?", False),
        ("when did most people leave?", False),
        ("how many people were there at most?", True),
        ("were there at most 5 people?", False),
    ],
)
def test_at_once_asks_for_the_most_in_view_together(question: str, at_once: bool) -> None:
    u = understand(question)
    assert u.at_once is at_once
    assert u.unmapped == [] or not at_once  # "which car moved the most": "most" is kept


@pytest.mark.parametrize(
    ("question", "measure"),
    [
        ("how fast was the fastest car?", "speed"),
        ("how long did the people stay", "dur"),
        ("how big were the trucks", "size"),
        ("the longest car", None),
        ("how many people", None),
        ("what colour was the fastest car?", "color"),
        ("which direction did the white car go?", "direction"),
        ("which cars were red", None),
    ],
)
def test_how_fast_long_big_ask_for_that_value(question: str, measure: str | None) -> None:
    u = understand(question)
    assert u.measure == measure and u.unmapped == []


@pytest.mark.parametrize(
    ("question", "per", "canonical"),
    [
        ("how many cars per minute", 60.0, "car"),
        ("how many people every 10 seconds between 0:10 and 1:00", 10.0, "person t:0:10..1:00"),
        ("how many people walked left each minute in the last 5 minutes", 60.0,
         "person dir:left t:-5:00.."),
        ("how many people stayed for more than a minute", None, "person dur>60"),
        ("which cars per minute", None, "car per minute"),  # a list has no periods
    ],
)  # fmt: skip
def test_per_minute_asks_for_a_count_per_period(
    question: str, per: float | None, canonical: str
) -> None:
    u = understand(question)
    assert (u.per, u.query.canonical()) == (per, canonical)


@pytest.mark.parametrize(
    ("question", "measure", "average"),
    [
        ("what was the average speed of the cars?", "speed", True),
        ("how long did people stay on average?", "dur", True),
        ("what is the median size of trucks", "size", True),
        ("how fast were the cars", "speed", False),
    ],
)
def test_averages_ask_for_a_value_over_the_objects(
    question: str, measure: str, average: bool
) -> None:
    u = understand(question)
    assert (u.measure, u.average, u.unmapped) == (measure, average, [])


def test_which_part_of_the_video_asks_each_part() -> None:
    u = understand("in which half of the video were there more cars?")
    assert [p.canonical() for p in u.parts] == ["car t:0%..50%", "car t:50%.."]
    assert u.compare and not u.fewer and u.unmapped == []
    u = understand("which quarter had the fewest people?")
    assert len(u.parts) == 4 and u.fewer and u.parts[-1].t_to is None


def test_the_value_asked_of_an_object_is_its_measure() -> None:
    assert understand("what was the speed of the fastest truck?").measure == "speed"
    assert understand("what was the colour of the slowest car?").measure == "color"


def test_windows_from_the_start_and_the_end_or_in_shares_do_not_mix() -> None:
    # from the start and before the end in one question: the start holds, and it is said
    u = understand("which people walked left before the last 10 seconds or after 0:20?")
    assert u.query.canonical() == "person dir:left t:0:20.."
    assert any("from the start or from the end" in n for n in u.notes)
    # a window in seconds after one in shares (or the other way round): the last one said
    assert understand("how many people in the first half after 0:20?").query.canonical() == (
        "person t:0:20.."
    )
    assert understand("how many people after 0:20 in the first half?").query.canonical() == (
        "person t:0%..50%"
    )
