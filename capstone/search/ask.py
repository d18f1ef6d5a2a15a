"""Questions in plain English, answered from stored tracks: `ask("how many people walked
left between 0:10 and 0:30?")`.

The question is mapped onto the query language by `capstone.search.understand.understand`
(the forms it reads are listed there); the query then runs in one SQL statement
(`capstone.search.tracks.run`), and the answer says what it understood (the canonical
query), then the answer, then the cited moments:

- *how many*: the number of distinct plausible tracks (identities, when the identity stage
  linked tracks), never raw detections; implausible tracks set aside are mentioned. With it
  `at_least`, the most of them in view at the same moment: a lower bound, so a person the
  tracker lost and found again as a track repair did not link shows as a range.
  *At once* (*at the same time*, *the maximum number of*): the most in view at one moment
  in one video, that moment (`Answer.moment`), and the objects in view then.
- *when*: the matching objects' times (their end for *leave/exit*).
- *which / show*: the objects, best first, with attributes and a thumbnail of the best crop.
- *where*: the objects with the zones they dwelt in and where their best box was.

An object is an identity when the identity stage linked several tracks, else one track:
answers cite it once (`object_items`), spanning its matching tracks (`track_ids`).

Words it cannot map are reported (`guessing`, `note`) and ranked by the existing hybrid
text/vector search over keyframes (`capstone.search.query.search`); those items are labelled
`source="hybrid_search"`. A fine type no track was recognised as falls back to the classes
it refines when the question gives something else to go by. A question that cannot be
answered gets a sentence, not an exception (only an unreachable database raises, as
`DatabaseError`).

>>> answer = ask("how many trains?", video_id="highway")  # doctest: +SKIP
>>> answer.count, answer.text  # doctest: +SKIP
(0, 'Understood: how many of `train video:highway`. None: ...')
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from capstone.core.fine_types import classes_of_type
from capstone.errors import DatabaseError, InputError
from capstone.search import zeroshot
from capstone.search.heat import Heatmap
from capstone.search.ql import Anchor, Condition, Query, QueryError
from capstone.search.summary import NAMES, Share, Summary, written
from capstone.search.understand import SHARES, Kind, Understood, understand

if TYPE_CHECKING:
    from capstone.search.tracks import TrackHit

MAX_ITEMS = 20
# a `sort:` value in words ("showing 1, fastest first")
SORT_WORDS: dict[str, str] = {
    "-speed": "fastest", "speed": "slowest", "-speed_m_s": "fastest", "speed_m_s": "slowest",
    "-dur": "longest in view", "dur": "shortest in view", "-size": "biggest",
    "size": "smallest", "start": "earliest", "-start": "latest",
    "end": "first to leave", "-end": "last to leave", "-conf": "most confident",
    "conf": "least confident", "-pause": "longest stopped", "pause": "shortest stopped",
    "-still": "longest standing still", "still": "shortest standing still",
    "-pace": "fastest for their size", "pace": "slowest for their size",
}  # fmt: skip


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


class Period(BaseModel):
    """A how-many answer over one period of a "per minute" question."""

    t_from: float = Field(description="seconds (negative: before the end of each video)")
    t_to: float | None = Field(description="seconds; None: to the end of each video")
    count: int


class Answer(BaseModel):
    """The answer to a question: what was understood, the answer, the cited moments."""

    question: str
    query: str = Field(
        description="the canonical query-language string it was mapped onto (several objects: "
        "one query each, joined by ' ; ')"
    )
    kind: Kind
    count: int | None = Field(default=None, description="for how-many questions")
    at_least: int | None = Field(
        default=None,
        description="for how-many questions: the most of them in view at the same moment, a "
        "lower bound on `count` (a person whose tracks were not linked is counted twice)",
    )
    moment: float | None = Field(
        default=None,
        description="for how-many-at-once questions: the first moment (seconds) that many were "
        "in view; `items` are the objects in view then",
    )
    series: list[Period] = Field(
        default_factory=list,
        description="for how-many questions per period ('per minute'): the count in each",
    )
    in_view: float | None = Field(
        default=None,
        description="for 'on average, how many were in view?' about one video: how many at a "
        "time, averaged over the window (their time in view in it, summed, over its length)",
    )
    summary: Summary | None = Field(
        default=None,
        description="for 'the average speed / time in view / size of ...': that value over "
        "the objects (n, mean, median, min, max)",
    )
    by: str | None = Field(
        default=None,
        description="for 'by colour', 'the most common direction', 'more cars or trucks?': "
        "the attribute the objects are counted by (class, color, direction, video)",
    )
    breakdown: list[Share] = Field(
        default_factory=list,
        description="with `by`: the objects per value, most first (value None: unknown)",
    )
    yes: bool | None = Field(
        default=None,
        description="for yes/no questions ('were there any trucks?'): whether any matched "
        "(`count` says how many)",
    )
    items: list[AnswerItem] = Field(default_factory=list)
    text: str = Field(description="one human sentence: what it understood, then the answer")
    guessing: bool = False
    note: str | None = None
    unmapped: list[str] = Field(default_factory=list)
    heatmaps: list[Heatmap] = Field(
        default_factory=list, description="for where-questions: where they were, per video"
    )


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


def _length_answer(session: Any, question: str, u: Understood) -> Answer:
    """ "How long is the video?": each video's length (its own, else its last tracked
    moment), with its frames and rate when stored."""
    from capstone.search import tracks

    lengths = tracks.video_lengths(u.query, session=session)
    said = []
    for v in lengths:
        if v.seconds is None:
            said.append(f"{v.video_id}: length unknown")
            continue
        detail = [f"{v.frames} frames"] if v.frames else []
        detail += [f"{v.fps:g} fps"] if v.fps else []
        if not v.measured:
            detail = ["up to its last tracked moment; its own length is not stored"]
        extra = f" ({' at '.join(detail)})" if detail else ""
        if v.analysed_s is not None:
            extra += f", of which the first {_clock(v.analysed_s)} was analysed"
        said.append(f"{v.video_id}: {_clock(v.seconds)}{extra}")
    text = "; ".join(said) + "." if said else "No analysed video to measure."
    return Answer(
        question=question,
        query=u.query.canonical(),
        kind=u.kind,
        text=f"Understood: the length of the video. {text}",
        items=[AnswerItem(video_id=v.video_id, t_start=0.0, t_end=v.seconds) for v in lengths],
    )


def _occupancy_answer(session: Any, question: str, u: Understood) -> Answer:
    """ "On average, how many people were in view?": per video, the matching objects' time
    in view inside the window over its length, and the most at once."""
    from capstone.search import tracks

    query = u.query.filters_only()
    found = tracks.run(query.model_copy(update={"limit": MAX_ITEMS}), session=session)
    per_video = tracks.occupancy(query, session=session)
    what = _what(query, 2)
    said = [
        f"{o.mean:.1f} {what} in view at a time on average in {o.video_id} "
        f"({_clock(o.t_from)}-{_clock(o.t_to)}: {o.objects} in all)"
        for o in per_video
    ]
    text = "; ".join(said) if said else f"No {what} found{_window_words(query)}"
    if len(per_video) == 1 and found.at_once:
        text += f"; at most {found.at_once} at once"
    return Answer(
        question=question,
        query=query.canonical(),
        kind=u.kind,
        in_view=round(per_video[0].mean, 3) if len(per_video) == 1 else None,
        at_least=found.at_once if said else None,
        items=object_items(found.hits),
        text=f"Understood: how many at a time on average, of `{query.canonical()}`. {text}.",
        note=" ".join(u.notes) or None,
    )


def _undefined_table(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "42P01"


def _sentence(question: str, kind: Kind, text: str, understood: Understood | None = None) -> Answer:
    query = understood.query.canonical() if understood is not None else ""
    return Answer(question=question, query=query, kind=kind, text=text, items=[])


def _answer(session: Any, question: str, u: Understood) -> Answer:
    from capstone.search import tracks

    if u.length:
        return _length_answer(session, question, u)
    if u.occupancy and not u.unmapped:
        return _occupancy_answer(session, question, u)
    if u.parts:
        return _answer_parts(session, question, u)

    query = u.query
    compared = ""
    if u.relative is not None:  # "faster than the average": the average first, then a filter
        query, compared = _against_average(session, query, *u.relative)
        if not compared:
            name = NAMES[u.relative[0]]
            return _sentence(question, u.kind, f"No {_what(query)} with a known {name}.", u)
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
    if u.notes:
        note = " ".join([*u.notes, note] if note else u.notes)
    asked = _kind_phrase(u.kind, u.at_once, u.per, u.average, u.yes_no, u.by, u.compare, u.peak)
    if u.fraction and u.focus is not None:  # "what percentage of the cars were white?"
        asked = f"the share of {_value_words(u.by, u.focus)} among"
    if u.compare and u.fewer and u.by is not None:
        asked = "which has fewer of"
    if u.threshold is not None:  # "were there more than 5 people?"
        asked = f"whether there are {_COMPARE_WORDS[u.threshold[0]]} {u.threshold[1]:g} of"
    said = f"Understood: {asked} `{canonical or '(everything)'}`."
    if u.check is not None:  # "was the fastest car red?"
        said = f"Understood: whether `{canonical}` {_checked_words(u.check)}."
    if compared:
        said = said[:-1] + f" ({compared})."
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
        head = {None: "None", False: "No", True: "Yes"}[_yes(u, 0)]
        answer = f"{head}: no {what} found" + _window_words(query) + _threshold_words(u) + "."
        if aside.matched and not query.all:
            doubts = sorted({d for h in aside.hits for d in (h.attributes.get("doubts") or [])})
            answer += (
                f" ({aside.matched} track(s) set aside as not plausible"
                + (f": {', '.join(doubts)}" if doubts else "")
                + "; add all:true to see them.)"
            )
        if guessing and not expansions:
            items = _hybrid_items(session, question, u)
        if query.lines or query.zones:
            missing = _places_not_drawn(session, query)
            note = (note + " " if note else "") + missing if missing else note
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
            at_least=0 if u.kind == "count" else None,
            yes=_yes(u, 0),
            items=items,
            text=f"{said} {answer}",
            guessing=guessing,
            note=note,
            unmapped=u.unmapped,
        )
    maps: list[Heatmap] = []
    series: list[Period] = []
    shares: list[Share] = []
    stats: Summary | None = None
    count, at_least, moment = result.count, result.at_once, None
    yes = _yes(u, count)
    if u.check is not None and items:  # "was the fastest car red?"
        yes, answer = _checked(items[0], u.check, query, result.count, what)
    elif u.at_once:
        count = at_least = result.busiest
        moment = result.busiest_t
        answer = (
            f"{count} {_what(query, count)} in view at once{_window_words(query)}, first at "
            f"{_clock(moment)} ({result.busiest_video})"
        )
        if u.kind != "count":  # "when were the most people in view?"
            answer = (
                f"The most {_what(query)} in view at once{_window_words(query)}: {count}, "
                f"first at {_clock(moment)} ({result.busiest_video})"
            )
        answer += f", the busiest of {result.videos} videos." if result.videos > 1 else "."
        # the objects in view at that moment
        there = filters.model_copy(
            update={
                "t_from": moment,
                "t_to": moment,
                "t_share": False,
                "videos": (result.busiest_video,),
                "limit": max(limit, count),
            }
        )
        items = object_items(tracks.run(there, session=session).hits)
    elif u.by is not None:
        shares = tracks.breakdown(filters, u.by, session=session)
        answer = _by_words(u.by, shares, result.count, what + _window_words(query), u.compare)
        if u.distinct:  # "how many different colours of cars were there?"
            known = [share for share in shares if share.value is not None]
            count, at_least = len(known), None
            answer = (
                f"{count} {_BY_PLURAL[u.by]} among {result.count} "
                f"{what}{_window_words(query)}: {', '.join(_share_words(u.by, x) for x in shares)}."
            )
        elif u.fraction and u.focus is not None:  # "what percentage of the cars were white?"
            within = what + _window_words(query)
            answer = _fraction_words(u.by, u.focus, shares, result.count, within)
        elif u.yes_no and u.focus is not None:  # "did more people walk left than right?"
            counts = {s.value: s.count for s in shares}
            mine = counts.get(u.focus, 0)
            others = [n for v, n in counts.items() if v != u.focus]
            yes = (
                (bool(others) and mine < min(others)) if u.fewer else mine > max(others, default=0)
            )
            answer = ("Yes: " if yes else "No: ") + answer
    elif u.kind == "count" and u.per is not None:
        by = {"came": "start", "went": "end"}.get(u.moving or "")
        series, per = _series(session, filters, result, u.per, by)
        listed = ", ".join(f"{p.count} ({_period_words(p)})" for p in series[:SERIES_IN_TEXT])
        more = f" and {len(series) - SERIES_IN_TEXT} more" if len(series) > SERIES_IN_TEXT else ""
        longer = f" ({MAX_PERIODS} periods at most)" if per != u.per else ""
        when = {"start": " by when they came", "end": " by when they left"}.get(by or "", "")
        answer = (
            f"{result.count} {what}{_window_words(query)}; per {_clock(per)}{longer}{when}: "
            f"{listed}{more}{_rate_words(series, per, result.count)}."
        )
        if u.peak and series:  # "what was the busiest minute?": the first with the most
            top = max(series, key=lambda p: p.count)
            answer = (
                f"The busiest {_period_name(per)}{_window_words(query)}: {_period_words(top)}, "
                f"{top.count} {_what(query, top.count)} ({answer.removesuffix('.')})."
            )
        if not series:
            answer = f"{result.count} {what}{_window_words(query)}."
    elif u.kind == "count":
        unit = "identities" if any(h.identity_id is not None for h in result.hits) else "tracks"
        together = ""
        if result.at_once < result.count:  # fragments of one person may be counted apart
            together = f"; at least {result.at_once} in view at once"
        answer = (
            {None: "", True: "Yes: ", False: "No: "}[yes]
            + f"{result.count} {what}{_window_words(query)}{_threshold_words(u)} (distinct "
            f"{unit} among {result.matched} plausible track(s){together})."
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
        stops = _stopped(query, still=True)
        maps = tracks.heatmaps(
            filters,
            session=session,
            zero_shot=zeroshot.weights(expansions) or None,
            stops=stops,
        )
        if maps:
            named = len(maps) > 1 or not query.videos
            spots = "; ".join(_spot(hm, named, stops) for hm in maps)
            answer = f"{result.count} {what}{_window_words(query)}: {spots}."
        else:
            places = ", ".join(_place(it) for it in items[:5])
            answer = f"{result.count} {what}: {places}."
    elif u.average and u.measure is not None:
        stats = tracks.summary(filters, u.measure, session=session)
        answer = stats.words(what + _window_words(query))
        cited = "; ".join(_measured(it, [u.measure]) for it in items[:MEASURED_ITEMS])
        answer += f" Among them: {cited}." if cited else ""
    else:
        shown = min(len(items), result.count)
        first = SORT_WORDS.get(query.sort, f"by {query.sort}") if query.sort else "best"
        answer = f"{result.count} {what}{_window_words(query)}; showing {shown}, {first} first."
        ranked_by = query.sort.removeprefix("-") if query.sort else None
        measures = list(dict.fromkeys(m for m in (u.measure, ranked_by) if m is not None))
        if measures and items:
            cited = "; ".join(_measured(it, measures) for it in items[:MEASURED_ITEMS])
            more = (
                f"; and {len(items) - MEASURED_ITEMS} more" if len(items) > MEASURED_ITEMS else ""
            )
            if query.sort is not None and shown < result.count:
                ranked = f"{shown} {first}" if shown > 1 and query.limit else first
                answer = (
                    f"The {ranked} of {result.count} {what}{_window_words(query)}: {cited}{more}."
                )
            else:
                answer = answer[:-1] + f": {cited}{more}."
    if guessing and not expansions:
        items = _hybrid_items(session, question, u) or items
    return Answer(
        question=question,
        query=canonical,
        kind=u.kind,
        count=count if u.kind == "count" else None,
        at_least=at_least if u.kind == "count" and at_least is not None else None,
        moment=moment,
        series=series,
        summary=stats,
        by=u.by,
        breakdown=shares,
        yes=yes,
        items=items,
        text=f"{said} {answer}",
        guessing=guessing,
        note=note,
        unmapped=u.unmapped,
        heatmaps=maps,
    )


# a breakdown attribute as answers write it (the reverse of `understand.BY_WORDS`)
_BY_WRITTEN = {"class": "class", "color": "colour", "direction": "direction", "video": "video"}
_BY_PLURAL = {"class": "kinds", "color": "colours", "direction": "directions", "video": "videos"}


def _share_words(by: str, share: Share) -> str:
    """One value of a breakdown in words: "left 11", "white 5", "7 cars", "unknown 2"."""
    if share.value is None:
        return f"unknown {share.count}"
    if by == "class":
        return f"{share.count} {_plural(share.value, share.count)}"
    if by == "direction" and share.value != "static":
        return f"moving {share.value} {share.count}"
    return f"{share.value} {share.count}"


def _value_words(by: str, value: str) -> str:
    """One value of an attribute in words: "white", "moving left", "trucks"."""
    if by == "class":
        return _plural(value, 2)
    return f"moving {value}" if by == "direction" and value != "static" else value


def _fraction_words(by: str, focus: str, shares: Sequence[Share], total: int, what: str) -> str:
    """The share of the objects with one value ("what percentage of the cars were white?").

    >>> shares = [Share(value="grey", count=20), Share(value="white", count=15)]
    >>> _fraction_words("color", "white", shares, 40, "cars")
    '38% of 40 cars were white (15); grey 20, white 15.'
    """
    mine = next((s.count for s in shares if s.value == focus), 0)
    said = _value_words(by, focus)
    listed = ", ".join(_share_words(by, s) for s in shares)
    percent = 100 * mine / total if total else 0.0
    return f"{percent:.0f}% of {total} {what} were {said} ({mine}); {listed}."


def _by_words(by: str, shares: Sequence[Share], total: int, what: str, compare: bool) -> str:
    """A breakdown as a sentence; `compare`: which of the asked values has more.

    >>> shares = [Share(value="left", count=11), Share(value="right", count=5)]
    >>> _by_words("direction", shares, 16, "people", False)
    '16 people by direction, most first: moving left 11, moving right 5.'
    >>> _by_words("direction", shares, 16, "people moving left/right", True)
    'More moving left (11) than moving right (5), of 16 people moving left/right.'
    """
    listed = ", ".join(_share_words(by, s) for s in shares)
    overlap = (
        " (an object whose tracks differ in it counts under each)"
        if sum(s.count for s in shares) > total
        else ""
    )
    if not compare or len(shares) < 2:
        return f"{total} {what} by {_BY_WRITTEN[by]}, most first: {listed}{overlap}."
    first, second = shares[0], shares[1]

    def name(share: Share) -> str:
        return _value_words(by, share.value or "unknown")

    if first.count == second.count:
        head = f"As many {name(first)} as {name(second)} ({first.count} each)"
    else:
        head = f"More {name(first)} ({first.count}) than {name(second)} ({second.count})"
    rest = f"; then {', '.join(_share_words(by, s) for s in shares[2:])}" if shares[2:] else ""
    return f"{head}{rest}, of {total} {what}{overlap}."


def _checked_words(check: Query) -> str:
    """What a ranked yes/no question asks of its object: "is red", "is moving left", "has
    speed>40"."""
    colors = "/".join(check.colors)
    moving = "moving " + "/".join(check.directions) if check.directions else ""
    state = " and ".join(x for x in (colors, moving) if x)
    compared = " ".join(c.canonical() for c in check.conditions)
    said = (f"is {state}" if state else "", f"has {compared}" if compared else "")
    return " and ".join(x for x in said if x)


_COMPARED = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
}


def _number_of(item: AnswerItem, name: str) -> float | None:
    """The value a comparison of the query language (`speed`, `dur`, ...) reads, or None."""
    a = item.attributes
    if name == "dur":
        known = item.t_start is not None and item.t_end is not None
        return item.t_end - item.t_start if known else None  # type: ignore[operator]
    if name in ("start", "end"):
        return item.t_start if name == "start" else item.t_end
    if name == "pace":
        speed, height = a.get("speed_px_s"), a.get("height_px")
        return float(speed) / float(height) if speed is not None and height else None
    if name == "still":
        whole = a.get("duration_s") if a.get("direction") == "static" else 0.0
        return max(float(a.get("pause_s") or 0.0), float(whole or 0.0))
    column = {"speed": "speed_px_s", "conf": "confidence", "size": "size_frac"}.get(name, name)
    value = a.get(column)
    return None if value is None else float(value)


def _checked(
    item: AnswerItem, check: Query, query: Query, count: int, what: str
) -> tuple[bool | None, str]:
    """Whether the object a ranked question found has the colour / direction asked about
    and passes the comparisons, and the sentence; None when a value is not known.

    >>> from capstone.search.ql import parse
    >>> item = AnswerItem(video_id="cam", track_id=4, t_start=2.0, t_end=9.5,
    ...                   attributes={"speed_px_s": 131.6, "color": "white"})
    >>> _checked(item, Query(colors=("red",)), parse("car sort:-speed limit:1"), 3, "cars")
    (False, 'No: the fastest of 3 cars is white: track 4 (cam), 132 px/s, 0:02.0-0:09.5.')
    >>> _checked(item, parse("speed>40"), parse("car sort:-dur limit:1"), 3, "cars")[1]
    'Yes: the longest in view of 3 cars has speed>40: track 4 (cam), 7.5 s in view, 132 px/s, \
0:02.0-0:09.5.'
    """
    a = item.attributes
    known = [(a.get("color"), check.colors), (a.get("direction"), check.directions)]
    asked = [(value, wanted) for value, wanted in known if wanted]
    numbers = [(_number_of(item, c.field), c) for c in check.conditions]
    passed: bool | None = None  # the comparisons
    if all(value is not None for value, _ in numbers):
        passed = all(_COMPARED[c.op](value, c.value) for value, c in numbers)
    yes: bool | None = None
    if passed is not None and all(value is not None for value, _ in asked):
        yes = passed and all(value in wanted for value, wanted in asked)
    said = " and ".join(
        (f"moving {value}" if wanted is check.directions and value != "static" else str(value))
        for value, wanted in asked
        if value is not None
    )
    ranked = SORT_WORDS.get(query.sort or "", f"first by {query.sort}")
    measures = [(query.sort or "").removeprefix("-")]
    measures += [c.field for c in check.conditions if c.field not in measures]
    head = {True: "Yes", False: "No", None: "I cannot tell"}[yes]
    state = f" is {said}" if said else ""
    if numbers:
        verb = {True: "has", False: "does not have", None: "has no stored value for"}[passed]
        compared = " ".join(c.canonical() for c in check.conditions)
        state += f"{' and' if said else ''} {verb} {compared}"
    state = state or " has no stored value for that"
    sentence = f"{head}: the {ranked} of {count} {what}{_window_words(query)}{state}"
    return yes, f"{sentence}: {_measured(item, measures)}."


def _measured(item: AnswerItem, measures: Sequence[str]) -> str:
    """An object with the values asked for ("how fast", "what colour", `sort:`): "track 12
    (cam-a), 132 px/s, 0:12.3-0:15.0".

    >>> item = AnswerItem(video_id="cam", track_id=4, t_start=2.0, t_end=9.5,
    ...                   attributes={"speed_px_s": 131.6, "speed_m_s": 4.24, "color": "red",
    ...                               "track_ids": [4]})
    >>> _measured(item, ["color", "speed"])
    'track 4 (cam), red, 132 px/s (4.2 m/s), 0:02.0-0:09.5'
    """
    tracks = "+".join(str(t) for t in item.attributes.get("track_ids") or [item.track_id])
    values = [v for v in (_value(item, m) for m in measures) if v]
    return ", ".join([f"track {tracks} ({item.video_id})", *values]) + (
        f", {_clock(item.t_start)}-{_clock(item.t_end)}"
    )


def _value(item: AnswerItem, measure: str) -> str | None:
    """One value of an object in words (`_measured`); None when it is not stored."""
    a = item.attributes
    value = None
    if measure in ("speed", "speed_m_s") and a.get("speed_px_s") is not None:
        value = written("speed", a["speed_px_s"])
        if a.get("speed_m_s") is not None:
            value += f" ({written('speed_m_s', a['speed_m_s'])})"
    elif measure == "dur" and item.t_start is not None and item.t_end is not None:
        value = f"{written('dur', item.t_end - item.t_start)} in view"
    elif measure == "size" and a.get("size_frac") is not None:
        value = f"{written('size', a['size_frac'])} of the frame"
    elif measure == "pause" and a.get("pause_s") is not None:
        value = f"stood still {written('pause', a['pause_s'])}"
    elif measure in ("still", "pace") and _number_of(item, measure) is not None:
        number = float(_number_of(item, measure))  # type: ignore[arg-type]
        still = f"stood still {written('pause', number)}"
        value = still if measure == "still" else f"{number:.2f} own heights a second"
    elif measure == "conf" and a.get("confidence") is not None:
        value = f"confidence {a['confidence']:.2f}"
    elif measure == "color":
        value = a.get("color") or "colour unknown"
    elif measure == "direction":
        value = f"moving {a['direction']}" if a.get("direction") else "direction unknown"
    return value


MEASURED_ITEMS = 5  # objects whose value an answer states
MAX_PERIODS = 60  # periods of a "per minute" answer: longer ones when the window needs more
SERIES_IN_TEXT = 12  # periods the answer's sentence lists


def _series(
    session: Any, query: Query, result: Any, per: float, by: str | None = None
) -> tuple[list[Period], float]:
    """The count of `query` in each `per`-second period of its window (from the video's
    start, or from the window's start, to the window's end or the last moment one was in
    view), and the period used: at most `MAX_PERIODS` periods, longer ones when the window
    needs more. A window counted back from the end is cut from there ("per minute in the
    last 5 minutes")."""
    from capstone.search import tracks

    lo, hi = query.t_from, query.t_to
    if (hi is not None and hi < 0 and lo is None) or query.t_share:
        return [], per  # "before the last minute", "the first half": no start in seconds
    if lo is not None and lo < 0:
        hi = 0.0 if hi is None else hi
    else:
        lo = 0.0 if lo is None else lo
        hi = hi if hi is not None else (result.t_last if result.t_last is not None else lo)
    span = max(hi - lo, 0.0)
    if span > per * MAX_PERIODS:
        per = float(math.ceil(span / MAX_PERIODS))
    windows: list[tuple[float, float | None]] = []
    start = lo
    while True:
        end = min(start + per, hi)
        open_end = end == 0.0 and lo < 0  # the last period of a window before the end
        windows.append((start, None if open_end else end))
        if end >= hi:
            break
        start = end
    counted = tracks.counts(query, windows, session=session, by=by)
    periods = [
        Period(t_from=a, t_to=b, count=n) for (a, b), n in zip(windows, counted, strict=True)
    ]
    return periods, per


def _rate_words(series: Sequence[Period], per: float, count: int) -> str:
    """When the periods do not fill the last one ("per minute" over 30 s), the count as a
    rate over the time they cover.

    >>> _rate_words([Period(t_from=0, t_to=30, count=45)], 60.0, 45)
    '; 45 in 0:30.0, about 90 per minute'
    >>> _rate_words([Period(t_from=0, t_to=60, count=45)], 60.0, 45)
    ''
    """
    first, last = series[0] if series else None, series[-1] if series else None
    if first is None or last is None or last.t_to is None or first.t_from < 0:
        return ""
    span = last.t_to - first.t_from
    if span <= 0 or last.t_to - last.t_from >= 0.9 * per:  # (nearly) whole periods
        return ""
    rate = count / span * per
    said = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"
    return f"; {count} in {_clock(span)}, about {said} per {_period_name(per)}"


def _period_name(seconds: float) -> str:
    """ "minute" for 60 s, "hour", "second", else the period as a clock ("0:10.0 period")."""
    names = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
    return names.get(seconds, f"{_clock(seconds)} period")


def _period_words(period: Period) -> str:
    """ "0:10.0-0:20.0"; before the end: "0:30.0-0:10.0 before the end".

    >>> _period_words(Period(t_from=-30, t_to=-10, count=2))
    '0:30.0-0:10.0 before the end'
    >>> _period_words(Period(t_from=-10, t_to=None, count=2))
    'the last 0:10.0'
    """
    if period.t_from >= 0:
        return f"{_clock(period.t_from)}-{_clock(period.t_to)}"
    if period.t_to is None:
        return f"the last {_clock(-period.t_from)}"
    return f"{_clock(-period.t_from)}-{_clock(-period.t_to)} before the end"


def _against_average(session: Any, query: Query, value: str, op: str) -> tuple[Query, str]:
    """`query` with `value op` its average over the objects it finds ("cars faster than the
    average": `car speed>51.2`), and those words ("faster than the average speed of 45
    cars, 51 px/s"); `query` unchanged and "" when none of them has that value."""
    from capstone.search import tracks

    base = tracks.summary(query.filters_only(), value, session=session)
    if not base.n or base.mean is None:
        return query, ""
    threshold = round(base.mean, 4 if value == "size" else 1)
    condition = Condition(field=value, op=op, value=threshold)  # type: ignore[arg-type]
    given = query.model_dump()
    given["conditions"] = [*given["conditions"], condition.model_dump()]
    words = {">": "above", "<": "below"}[op]
    return Query(**given), (
        f"{words} the average {NAMES[value]} of {base.n} {_what(query, base.n)}, "
        f"{written(value, base.mean)}"
    )


def _places_not_drawn(session: Any, query: Query) -> str | None:
    """A note when a line or zone the query names was not drawn for the analyses it reads
    ("how many people entered zone door?" where no zone is called door), else None."""
    from capstone.search import tracks

    lines, zones = tracks.places_drawn(query, session=session)
    unknown = [f"line {x!r}" for x in query.lines if x not in lines]
    unknown += [f"zone {x!r}" for x in query.zones if x not in zones]
    if not unknown:
        return None
    drawn = [f"line {x!r}" for x in lines] + [f"zone {x!r}" for x in zones]
    there = ", ".join(drawn) if drawn else "none"
    return (
        f"No {' or '.join(unknown)} was drawn in the analyses asked about (drawn: {there}); "
        "lines and zones are given with an analysis (options `lines`, `zones`)."
    )


_COMPARE_WORDS = {">": "more than", ">=": "at least", "<": "fewer than", "<=": "at most"}


def _yes(u: Understood, count: int) -> bool | None:
    """The answer to a yes/no question given the count: any at all, or as many as asked
    ("were there more than 5 people?"); None for other questions."""
    if not u.yes_no:
        return None
    if u.threshold is None:
        return count > 0
    op, n = u.threshold
    return _COMPARED[op](count, n)


def _threshold_words(u: Understood) -> str:
    """ " (asked: more than 5)" for a yes/no question about a number, else ""."""
    if u.threshold is None:
        return ""
    op, n = u.threshold
    return f" (asked: {_COMPARE_WORDS[op]} {n:g})"


def _kind_phrase(
    kind: Kind,
    at_once: bool = False,
    per: float | None = None,
    average: bool = False,
    yes_no: bool = False,
    by: str | None = None,
    compare: bool = False,
    peak: bool = False,
) -> str:
    if compare:
        return "which has more of"
    if by is not None:
        return f"counted by {_BY_WRITTEN[by]},"
    if average:
        return "the average over"
    if yes_no:
        return "whether there are any"
    if at_once:
        return "how many at once of" if kind == "count" else "the busiest moment of"
    if kind == "count" and per is not None and peak:
        return f"the busiest {_period_name(per)} for"
    if kind == "count" and per is not None:
        return f"how many per {_clock(per)} of"
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
    """What the query looks for, in words: "white cars/trucks moving left".

    >>> from capstone.search.ql import parse
    >>> _what(parse("person -dir:left -line:A")), _what(parse("-person -color:red"), 1)
    ('people not moving left, not crossing line A', 'object other than a person, not red')
    >>> _what(parse("car pause>=2"))
    'cars that stopped'
    >>> _what(parse('person during:bus after:"car color:white"'))
    'people in view while a bus was, after a white car left'
    >>> _what(parse('person during:"bus pause>=2"'))
    'people in view while a bus was stopped'
    >>> _what(parse('car at_exit:"car sort:-speed"'))
    'cars in view when the fastest car left'
    """
    words = []
    if query.colors:
        words.append("/".join(query.colors))
    nouns = [t.replace("_", " ") for t in query.types] or list(query.classes) or ["object"]
    words.append("/".join(_plural(x, n) for x in nouns))
    noun = " ".join(words)
    if query.directions:
        noun += " moving " + "/".join(query.directions)
    if _stopped(query):
        noun += " that stopped"
    if any(c.field == "pace" and c.op in (">", ">=") for c in query.conditions):
        noun += " that ran"  # moving at least that many of their own heights a second
    if any(c.field == "still" and c.op in (">", ">=") for c in query.conditions):
        noun += " that stood still"  # paused, or never moved
    noun += _came_went(query)
    out = query.without
    clauses = []
    others = [t.replace("_", " ") for t in out.types] + list(out.classes)
    if others:
        clauses.append("other than " + " or ".join(f"{_article(x)} {x}" for x in others))
    for values, words_before in (
        (out.colors, "not "),
        (out.directions, "not moving "),
        (out.lines, "not crossing line "),
        (out.zones, "not in zone "),
        (out.videos, "not in video "),
    ):
        if values:
            clauses.append(words_before + " or ".join(values))
    if clauses:
        noun += (", " if query.directions else " ") + ", ".join(clauses)
    if query.anchors:
        noun += " in view " + ", ".join(_anchor_words(a) for a in query.anchors)
    return noun


def _came_went(query: Query) -> str:
    """When the objects came and went (`start`, `end` comparisons), in words.

    >>> from capstone.search.ql import parse
    >>> _came_went(parse("person start>=30")), _came_went(parse("car start>10 end<=1:00"))
    (' that came after 0:30.0', ' that came after 0:10.0 and left before 1:00.0')
    """
    said = []
    for field, verb in (("start", "came"), ("end", "left")):
        lows = [c.value for c in query.conditions if c.field == field and c.op in (">", ">=")]
        highs = [c.value for c in query.conditions if c.field == field and c.op in ("<", "<=")]
        exact = [c.value for c in query.conditions if c.field == field and c.op == "="]
        if exact:
            said.append(f"{verb} at {_moment(exact[0])}")
        elif lows and highs:
            said.append(f"{verb} between {_moment(max(lows))} and {_moment(min(highs))}")
        elif lows and lows[0] < 0:
            said.append(f"{verb} in the last {_clock(-lows[0])}")
        elif highs and highs[0] < 0:
            said.append(f"{verb} before the last {_clock(-highs[0])}")
        elif lows or highs:
            said.append(f"{verb} {'after' if lows else 'before'} {_moment((lows or highs)[0])}")
    return " that " + " and ".join(said) if said else ""


def _moment(seconds: float) -> str:
    """A time of the video; negative: before its end."""
    return _clock(seconds) if seconds >= 0 else f"{_clock(-seconds)} before the end"


_RELATION_WORDS = {
    "during": "while {} was",
    "after": "after {} left",
    "before": "before {} came",
    "at_exit": "when {} left",
    "at_entry": "when {} came",
}


# with a stopped anchor: its times are its pause's
_STOPPED_WORDS = {
    "during": "while {} was stopped",
    "after": "after {} moved on",
    "before": "before {} stopped",
    "at_exit": "when {} moved on",
    "at_entry": "when {} stopped",
}


_ANCHOR_RANKS = {"start": "first", "-start": "last", "end": "first", "-end": "last"}


def _anchor_words(anchor: Anchor) -> str:
    """ "while a bus was", "after a white car left", "while a bus was stopped": an anchor
    in words."""
    thing = _what(Query(**anchor.of.model_dump()), 1)
    words = _RELATION_WORDS if anchor.stopped is None else _STOPPED_WORDS
    if anchor.rank is None:
        return words[anchor.relation].format(f"{_article(thing)} {thing}")
    # "the fastest car", "the first person" (to come, or to leave: the relation says it)
    ranked = _ANCHOR_RANKS.get(anchor.rank) or SORT_WORDS[anchor.rank]
    one_word = " " not in ranked or ranked.startswith(("most ", "least "))
    return words[anchor.relation].format(
        f"the {ranked} {thing}" if one_word else f"the {thing} {ranked}"
    )


def _share_name(percent: float) -> str:
    """ "half" for 50, "third" for 33.33 (or 33.34), else the percentage."""
    word = next((w for w, share in SHARES.items() if abs(share - percent) < 0.02), None)
    return word or f"{percent:g}%"


def _part_words(lo: float | None, hi: float | None) -> str:
    """A window in percentages of each video's length, in words.

    >>> _part_words(0, 50), _part_words(75, None)
    (' in the first half of the video', ' in the last quarter of the video')
    >>> _part_words(25, 75)
    ' between 25% and 75% of the video'
    """
    lo, hi = lo or 0.0, 100.0 if hi is None else hi
    if lo == 0 and hi < 100:
        return f" in the first {_share_name(hi)} of the video"
    if hi == 100 and lo == 50:
        return " in the second half of the video"
    if hi == 100 and lo > 0:
        return f" in the last {_share_name(round(100 - lo, 2))} of the video"
    if lo == 0 and hi == 100:
        return ""
    return f" between {lo:g}% and {hi:g}% of the video"


def _article(noun: str) -> str:
    return "an" if noun[:1] in ("a", "e", "i", "o", "u") else "a"


def _window_words(query: Query) -> str:
    lo, hi = query.t_from, query.t_to
    if query.t_share:
        return _part_words(lo, hi)
    if (lo is not None and lo < 0) or (hi is not None and hi < 0):  # before the end
        if hi is None:
            return f" in the last {_clock(-lo)}"  # type: ignore[operator]
        if lo is None:
            return f" before the last {_clock(-hi)}"
        return f" between {_clock(-lo)} and {_clock(-hi)} before the end"
    if query.t_from is not None and query.t_from == query.t_to:
        return f" at {_clock(query.t_from)}"
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


def _stopped(query: Query, still: bool = False) -> bool:
    """Whether the query asks for objects that stopped (`pause>=2`; with `still`, also
    `still>=2`): a where-answer then says where they stood, not everywhere they went."""
    fields = ("pause", "still") if still else ("pause",)
    return any(c.field in fields and c.op in (">", ">=") for c in query.conditions)


def _spot(heatmap: Heatmap, named: bool, stops: bool = False) -> str:
    region, share = heatmap.region()
    where = "mostly in the" if share >= 0.5 else "most often in the"
    video = f", {heatmap.video_id}" if named else ""
    time = "their time stopped" if stops else "their time in view"
    stood = "stopped " if stops else ""
    return f"{stood}{where} {region} of the frame ({share:.0%} of {time}{video})"


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


def _windows_words(u: Understood, first: int, second: int) -> tuple[str, bool]:
    """Two windows' counts compared, and whether the first has more (fewer, when asked).

    >>> u = understand("were there more cars in the first half than in the second half?")
    >>> _windows_words(u, 23, 25)[1], _windows_words(u, 23, 22)[1]
    (False, True)
    >>> _windows_words(u, 23, 25)[0]
    'fewer cars in the first half of the video (23) than in the second half of the video (25)'
    """
    a, b = u.parts
    what = _what(u.query)
    if first == second:
        return f"as many {what}{_window_words(a)} as{_window_words(b)} ({first})", False
    word = "more" if first > second else "fewer"
    holds = first < second if u.fewer else first > second
    said = f"{word} {what}{_window_words(a)} ({first}) than{_window_words(b)} ({second})"
    return said, holds


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
    asked = _kind_phrase(u.kind, yes_no=u.yes_no)
    if u.compare:  # "more cars in the first half than in the second?"
        asked = f"which has {'fewer' if u.fewer else 'more'} of"
        if len(u.parts) > 2:
            asked = f"which has the {'fewest' if u.fewer else 'most'} of"
    said = f"Understood: {asked} " + " and ".join(f"`{c}`" for c in canonicals)
    items = [item for r in results for item in object_items(r.hits)]
    if u.kind == "when" or u.ends:
        items.sort(key=lambda it: (it.t_end if u.ends else it.t_start) or 0.0)
    windowed = len({(q.t_from, q.t_to, q.t_share) for q in u.parts}) > 1  # a window each
    each = " and ".join(
        f"{r.count} {_what(q, r.count)}" + (_window_words(q) if windowed else "")
        for q, r in zip(u.parts, results, strict=True)
    )
    total = sum(r.count for r in results)
    maps: list[Heatmap] = []
    stops = _stopped(u.query, still=True)
    if u.kind == "where":
        maps = _summed(
            [tracks.heatmaps(q.filters_only(), session=session, stops=stops) for q in u.parts]
        )
    spots = "; ".join(_spot(hm, len(maps) > 1 or not u.query.videos, stops) for hm in maps)
    answer = (f"{each}" + ("" if windowed else f"{_window_words(u.query)} ({total} in all)")) + (
        f": {spots}" if spots else ""
    )
    found_all = all(r.count for r in results)  # "were there cars and trucks?": both
    yes = found_all if u.yes_no else None
    if u.compare and len(results) == 2:  # "more cars in the first half than in the second?"
        answer, holds = _windows_words(u, results[0].count, results[1].count)
        yes = holds if u.yes_no else None
        answer = answer if u.yes_no else answer[:1].upper() + answer[1:]
    elif u.compare:  # "which quarter had the fewest people?": the first with the most / fewest
        counts = [r.count for r in results]
        top = counts.index(min(counts) if u.fewer else max(counts))
        word = "fewest" if u.fewer else "most"
        answer = (
            f"The {word} {_what(u.query)}{_window_words(u.parts[top])}: {counts[top]} ("
            + ", ".join(f"{n}{_window_words(q)}" for q, n in zip(u.parts, counts, strict=True))
            + ")"
        )
    if yes is not None:
        answer = ("Yes: " if yes else "No: ") + answer
    notes = []
    if u.unmapped:
        notes.append(
            "I could not map " + ", ".join(repr(x) for x in u.unmapped) + " onto the query "
            "language; the answer uses what I understood."
        )
    if u.at_once or u.per is not None:
        asked = "'At once'" if u.at_once else "A count per period"
        example = "at once" if u.at_once else "per minute"
        notes.append(
            f"{asked} is answered for one kind of object at a time (e.g. 'how many people "
            f"{example}?'); these are the counts over the whole window."
        )
    note = " ".join([*u.notes, *notes]) or None
    return Answer(
        question=question,
        query=" ; ".join(canonicals),
        kind=u.kind,
        # per window, one object may be in several: no sum (the sentence has each count)
        count=total if u.kind == "count" and not windowed else None,
        at_least=sum(r.at_once for r in results) if u.kind == "count" and not windowed else None,
        yes=yes,
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
                filters={  # a window before the end or in shares of the video is not
                    # known to the keyframe search
                    "video_ids": list(q.videos) or None,
                    "t_from": q.t_from if (q.t_from or 0) >= 0 and not q.t_share else None,
                    "t_to": q.t_to if (q.t_to or 0) >= 0 and not q.t_share else None,
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


__all__ = [
    "Answer",
    "AnswerItem",
    "Period",
    "QueryError",
    "Understood",
    "ask",
    "object_items",
    "understand",
]
