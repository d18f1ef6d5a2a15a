"""Run a query-language `Query` over stored tracks: one SQL statement, bind parameters only.

The statement reads `apps_db_trackattributes` (one row per final track, written by the
`attributes` stage) joined with `apps_db_track` (best frame, box and crop), in the latest
completed analysis of each video. Filters:

- classes, colours, directions, fine types, videos: `= ANY(:values)` on their columns;
- comparisons: on `speed_px_s`, `speed_m_s`, `speed_px_s / height_px` (`pace`),
  `confidence`, `duration_s`, `size_frac`, `pause_s`, the longest stillness (`still`: the
  pause, or the time in view of a static track), and the object's first / last moment
  in view (`start`, `end`: over every track of its identity);
- `t:FROM..TO`: the track is in view during the window (`t_end >= FROM AND t_start <= TO`);
- `line:` / `zone:`: an `apps_db_event` row of the track: a `line_cross` of that line (in the
  window, when one is given) / a `dwell` in that zone;
- exclusions (`Query.without`): `<> ALL(:values)` (a track whose value is unknown is kept) /
  `NOT EXISTS` for lines and zones, over every track of the object ("never crossed line A");
- only plausible tracks (`plausible`), unless `all:true`.

Free text terms rank (they do not filter): a term that is the class, the fine type or a
label among `fine_types` scores that label's score; with `color:`, the track's share of the
asked colour adds to it (the reddest red car first). Order: plausible first, then the
`sort:` value when one is asked (missing values last), then that score, then confidence x
duration, so a doubtful detection never outranks confident ones.
`count` is the number of distinct identities among all matches (a track's `identity_id`
when the identity stage linked it, else the track itself), computed in the same statement,
and so is `at_once`: the most matches in view at the same moment of one video, summed over
videos (with a window, that moment is inside it: tracks that all meet the window and each
other meet at a moment within it). Tracks in view together are different objects, so
`at_once` is a lower bound on how many there were; `count` overcounts a person whose
tracks were not linked, so the truth is bracketed unless a false track is counted.

>>> from capstone.search.ql import parse
>>> result = run(parse("person dir:left t:0:10..0:30"))  # doctest: +SKIP
>>> result.count, [(h.track_id, h.t_start) for h in result.hits[:2]]  # doctest: +SKIP
(7, [(3, 8.2), (12, 14.0)])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlmodel import Session

from capstone.core.geometry import lines_from_options, zones_from_options
from capstone.core.motion import HEAT_COLS, HEAT_ROWS
from capstone.errors import ConfigError
from capstone.search import zeroshot
from capstone.search.heat import Heatmap
from capstone.search.ql import ANCHOR_FIELDS, Anchor, Condition, Query
from capstone.search.query import LATEST_SCOPE_CTE
from capstone.search.summary import Share, Summary
from capstone.store.engine import session_scope

DEFAULT_LIMIT = 50
_COLUMN_OF = {
    "speed": "a.speed_px_s",
    "speed_m_s": "a.speed_m_s",
    "conf": "a.confidence",
    "dur": "a.duration_s",
    "size": "a.size_frac",
    "pause": "a.pause_s",
}
# a comparison on an expression, not one column (sorted by as a column of the statement's
# matches, `_SORT_COLUMN`; an anchor is not ranked by it)
_EXPRESSION_OF = {
    "pace": "(a.speed_px_s / nullif(a.height_px, 0))",
    # stood still: its longest pause, or its whole time in view when it never moved
    "still": "greatest(coalesce(a.pause_s, 0), "
    "CASE WHEN a.direction = 'static' THEN a.duration_s ELSE 0 END)",
}
# comparisons on the object's first / last moment in view (`object_times`): a person seen
# before 0:30 did not arrive after it, whichever of their tracks is asked about
_OBJECT_TIME_OF = {"start": "t0", "end": "t1"}
# `sort:` names -> columns of `apps_db_trackattributes` (chosen here, never from the query)
_SORT_COLUMN = {
    **{name: column.removeprefix("a.") for name, column in _COLUMN_OF.items()},
    "start": "t_start",
    "end": "t_end",
    "pace": "pace_h_s",  # (computed in `plan`'s matches)
    "still": "still_s",
}

# The CTEs of every statement here: `scope(id)`, the analyses answered; `video_end`, the
# end of each one's video: its length or the time the analysis covered when less
# (`max_frames`, a truncated file), else (stored without either) its last tracked moment;
# `object_times`, each track's object's first and last moment in view (over every track of
# its identity). Each computed once per statement, and only when used (a window counting
# back from the end, an average over time, a `start` / `end` comparison).
SCOPE_CTE = f"""{LATEST_SCOPE_CTE},
video_end AS MATERIALIZED (
  SELECT s.id AS analysis_id, coalesce(least(v.duration, (va.summary->>'analysed_s')::float8), (
    SELECT max(x.t_end) FROM apps_db_trackattributes x WHERE x.analysis_id = s.id)) AS t
  FROM scope s
  JOIN apps_db_videoanalysis va ON va.id = s.id
  JOIN apps_db_video v ON v.video_id = va.video_id
),
object_times AS MATERIALIZED (
  SELECT t.analysis_id, t.track_id,
    min(x.t_start) OVER object AS t0, max(x.t_end) OVER object AS t1
  FROM apps_db_track t
  JOIN apps_db_trackattributes x ON x.analysis_id = t.analysis_id AND x.track_id = t.track_id
  WHERE t.analysis_id IN (SELECT id FROM scope)
  WINDOW object AS (PARTITION BY t.analysis_id, t.identity_id IS NULL,
    coalesce(t.identity_id, t.track_id))
)"""
_VIDEO_END = "(SELECT e.t FROM video_end e WHERE e.analysis_id = a.analysis_id)"
# the object a track `a` (joined with its `apps_db_track` row `t`) belongs to: its identity
# when the identity stage linked it, else the track itself
_WHO = (
    "CASE WHEN t.identity_id IS NOT NULL THEN 'i' || a.analysis_id || ':' || t.identity_id "
    "ELSE 't' || a.analysis_id || ':' || a.track_id END"
)
# per object, the value a summary is over: its time in view from its first to its last
# track; its speed and size averaged over its tracks (linked tracks share the movement)
_OBJECT_VALUE = {
    "dur": "max(t_end) - min(t_start)",
    "speed": "avg(speed_px_s)",
    "speed_m_s": "avg(speed_m_s)",
    "size": "avg(size_frac)",
    "pause": "max(pause_s)",
}

ATTRIBUTE_COLUMNS = (
    "color",
    "color_shares",
    "direction",
    "dx_px",
    "dy_px",
    "path_px",
    "speed_px_s",
    "speed_m_s",
    "pause_s",
    "width_px",
    "height_px",
    "size_frac",
    "fine_type",
    "fine_types",
    "confidence",
    "duration_s",
    "plausible",
    "doubts",
    "imagenet",
)


class TrackHit(BaseModel):
    """One track that matches: where and when, its attributes and its picture."""

    video_id: str
    analysis_id: int
    track_id: int
    identity_id: int | None = None
    class_name: str
    t_start: float
    t_end: float
    plausible: bool
    attributes: dict[str, Any] = Field(
        description="the apps_db_trackattributes columns, plus `lines` crossed and `zones` dwelt in"
    )
    best_frame: int | None = None
    best_bbox: list[float] | None = None
    thumbnail: str | None = Field(
        default=None, description="API path of the track's best crop (JPEG), when stored"
    )
    score: float = Field(description="text score of the free terms (0 without terms)")


class TrackResult(BaseModel):
    """The hits (best first, at most `limit`) and how many distinct identities matched."""

    query: str
    count: int = Field(description="distinct identities among all matching tracks")
    matched: int = Field(description="matching tracks (before `limit`)")
    videos: int = Field(default=0, description="videos with matching tracks")
    t_last: float | None = Field(default=None, description="the last moment any was in view")
    at_once: int = Field(
        default=0,
        description="the most matching tracks in view at the same time (per video, summed): "
        "a lower bound on the number of objects",
    )
    busiest: int = Field(
        default=0, description="the most matching tracks in view at the same time in one video"
    )
    busiest_t: float | None = Field(
        default=None,
        description="the first moment (seconds, inside the query's window) `busiest` of them "
        "were in view",
    )
    busiest_video: str | None = Field(default=None, description="the video of `busiest_t`")
    hits: list[TrackHit]


def plan(query: Query, zero_shot: dict[str, float] | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL statement and its bind parameters for `query` (nothing from the query string
    is ever formatted into the SQL: only column names chosen here).

    >>> from capstone.search.ql import parse
    >>> sql, params = plan(parse("car color:red,white speed>40 line:A"))
    >>> params["colors"], params["c0"], params["lines"]
    (['red', 'white'], 40.0, ['A'])
    >>> "'red'" in sql
    False

    `zero_shot` (ImageNet label -> weight, `zeroshot.weights`): only the tracks whose
    stored labels score at least `zeroshot.MIN_SCORE` (probability x weight, summed),
    ranked by that score.
    """
    params: dict[str, Any] = {"limit": query.limit or DEFAULT_LIMIT}
    where = _filters(query, params)
    window_from = window_bounds(query, params)[0] or "NULL::float8"
    if query.text:
        params["terms"] = list(query.text)
        score = (
            "(SELECT coalesce(sum(greatest("
            "CASE WHEN replace(a.class_name, ' ', '_') = w OR a.class_name = w THEN 1 ELSE 0 END, "
            "CASE WHEN a.fine_type = w THEN 1 ELSE 0 END, "
            "coalesce((SELECT max((kv.value)::float8) FROM jsonb_each_text(a.fine_types) kv "
            "WHERE kv.key = w OR kv.key LIKE '%\\_' || w ESCAPE '\\' "
            "OR kv.key LIKE w || '\\_%' ESCAPE '\\'), 0))), 0) "
            "FROM unnest(CAST(:terms AS text[])) AS u(w))"
        )
    else:
        score = "0.0"
    if query.colors:  # the most of the asked colours first, not the longest track
        score += (
            " + coalesce((SELECT max((a.color_shares->>c)::float8) "
            "FROM unnest(CAST(:colors AS text[])) AS u(c)), 0)"
        )
    if zero_shot:
        guess = _zero_shot_score(zero_shot, params)
        where.append(f"{guess} >= :zs_min")
        score += f" + {guess}"
    conditions = "\n  AND ".join(where)
    sql = f"""WITH {SCOPE_CTE},
matched AS MATERIALIZED (
  SELECT a.*, t.identity_id, t.best_frame, t.best_bbox, t.best_crop IS NOT NULL AS has_crop,
    {score} AS score, {window_from} AS t_window, {_WHO} AS who,
    {_EXPRESSION_OF["pace"]} AS pace_h_s, {_EXPRESSION_OF["still"]} AS still_s
  FROM apps_db_trackattributes a
  JOIN apps_db_track t ON t.analysis_id = a.analysis_id AND t.track_id = a.track_id
  WHERE {conditions}
),
totals AS (
  SELECT count(DISTINCT who) AS n_who, count(*) AS n_rows, count(DISTINCT video_id) AS n_videos,
    max(t_end) AS t_last
  FROM matched
),
edges AS (
  SELECT analysis_id, video_id, t_window, t_start AS t, 1 AS d FROM matched
  UNION ALL SELECT analysis_id, video_id, t_window, t_end AS t, -1 AS d FROM matched
),
in_view AS (  -- entering sorts before leaving at the same moment: both were in view
  SELECT analysis_id, video_id, t_window, t,
    sum(d) OVER (PARTITION BY analysis_id ORDER BY t, d DESC) AS n
  FROM edges
),
busiest AS (
  -- per video: the most in view at once and the first moment it happens, moved into the
  -- window (every track matched overlaps it, so those in view together before it still
  -- are at its start)
  SELECT DISTINCT ON (analysis_id) video_id, n, greatest(t, t_window) AS t
  FROM in_view ORDER BY analysis_id, n DESC, t
),
peak AS (
  SELECT coalesce(sum(n), 0) AS n_peak, max(n) AS n_busiest,
    (array_agg(t ORDER BY n DESC, t, video_id))[1] AS t_busiest,
    (array_agg(video_id ORDER BY n DESC, t, video_id))[1] AS busiest_video
  FROM busiest
),
page AS (
  SELECT * FROM matched
  ORDER BY {_order(query)}
  LIMIT :limit
)
SELECT p.*, totals.n_who, totals.n_rows, totals.n_videos, totals.t_last,
  peak.n_peak, peak.n_busiest, peak.t_busiest, peak.busiest_video,
  ARRAY(SELECT DISTINCT e.attributes->>'line' FROM apps_db_event e
        WHERE e.analysis_id = p.analysis_id AND e.track_id = p.track_id
          AND e.event_type = 'line_cross') AS lines_crossed,
  ARRAY(SELECT DISTINCT e.attributes->>'zone' FROM apps_db_event e
        WHERE e.analysis_id = p.analysis_id AND e.track_id = p.track_id
          AND e.event_type = 'dwell') AS zones_visited
FROM totals CROSS JOIN peak LEFT JOIN page p ON true
ORDER BY {_order(query, "p.")}"""
    return sql, params


def _order(query: Query, of: str = "") -> str:
    """The ranking (module docstring) as an ORDER BY list over the columns of `of`."""
    keys = [f"{of}plausible DESC"]
    if query.sort is not None:
        column = _SORT_COLUMN[query.sort.removeprefix("-")]
        keys.append(f"{of}{column} {'DESC' if query.sort.startswith('-') else 'ASC'} NULLS LAST")
    keys += [
        f"{of}score DESC",
        f"coalesce({of}confidence, 0) * coalesce({of}duration_s, 0) DESC",
        f"{of}video_id",
        f"{of}track_id",
    ]
    return ", ".join(keys)


def summary(query: Query, value: str, *, session: Session) -> Summary:
    """`value` (a key of `_OBJECT_VALUE`) over the objects matching `query`, in one
    statement: "what was the average speed of the cars?"."""
    params: dict[str, Any] = {}
    conditions = "\n  AND ".join(_filters(query, params))
    sql = f"""WITH {SCOPE_CTE},
objects AS (
  SELECT {_OBJECT_VALUE[value]} AS v
  FROM (
    SELECT a.*, {_WHO} AS who
    FROM apps_db_trackattributes a
    JOIN apps_db_track t ON t.analysis_id = a.analysis_id AND t.track_id = a.track_id
    WHERE {conditions}
  ) matched
  GROUP BY who
)
SELECT count(v) AS n, avg(v) AS mean, percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS median,
  min(v) AS min, max(v) AS max
FROM objects"""
    row = session.execute(text(sql), params).one()._mapping
    return Summary(value=value, **{k: row[k] for k in ("n", "mean", "median", "min", "max")})


def counts(
    query: Query,
    windows: Sequence[tuple[float, float | None]],
    *,
    session: Session,
    by: str | None = None,
) -> list[int]:
    """The distinct objects matching `query` in each window (`t_from`, `t_to`; negative:
    before the end of each video, `t_to` None: to it), in one statement: "how many cars per
    minute?". Each window filters as `query`'s own window does (`_filters`); with `by`
    (`start` or `end`) by when the object came or went instead, each in one window only
    (the last one closed): "how many people arrived per minute?"."""
    if not windows:
        return []
    params: dict[str, Any] = {}
    selects = []
    for k, (lo, hi) in enumerate(windows):
        if by is None:
            windowed = query.model_copy(update={"t_from": lo, "t_to": hi, "t_share": False})
        else:
            last = k == len(windows) - 1
            bounds = [Condition(field=by, op=">=", value=lo)]  # type: ignore[arg-type]
            if hi is not None:
                bounds.append(Condition(field=by, op="<=" if last else "<", value=hi))  # type: ignore[arg-type]
            windowed = query.model_copy(update={"conditions": (*query.conditions, *bounds)})
        where = "\n  AND ".join(_filters(windowed, params, tag=f"_{k}"))
        selects.append(
            f"SELECT {k} AS k, count(DISTINCT {_WHO}) AS n\n"
            "FROM apps_db_trackattributes a\n"
            "JOIN apps_db_track t ON t.analysis_id = a.analysis_id AND t.track_id = a.track_id\n"
            f"WHERE {where}"
        )
    sql = f"WITH {SCOPE_CTE}\n" + "\nUNION ALL\n".join(selects)
    found = dict(session.execute(text(sql), params).all())
    return [int(found.get(k, 0)) for k in range(len(windows))]


# the attributes answers count objects by ("by colour"): their columns
BREAKDOWN_COLUMNS = {
    "class": "a.class_name",
    "color": "a.color",
    "direction": "a.direction",
    "video": "a.video_id",
}


def breakdown(query: Query, by: str, *, session: Session) -> list[Share]:
    """The objects matching `query` counted per value of `by` (a key of
    `BREAKDOWN_COLUMNS`), most first, in one statement: "what was the most common colour
    of the cars?". An object whose tracks differ in that value counts under each."""
    params: dict[str, Any] = {}
    conditions = "\n  AND ".join(_filters(query, params))
    sql = f"""WITH {SCOPE_CTE}
SELECT {BREAKDOWN_COLUMNS[by]} AS value, count(DISTINCT {_WHO}) AS n
FROM apps_db_trackattributes a
JOIN apps_db_track t ON t.analysis_id = a.analysis_id AND t.track_id = a.track_id
WHERE {conditions}
GROUP BY 1
ORDER BY n DESC, value NULLS LAST"""
    rows = session.execute(text(sql), params).all()
    return [Share(value=r.value, count=int(r.n)) for r in rows]


class Occupancy(BaseModel):
    """How many objects were in view at a time, on average over a window of one video."""

    video_id: str
    t_from: float = Field(description="the window, seconds of video")
    t_to: float
    object_seconds: float = Field(description="the matching tracks' time in view in it, summed")
    objects: int = Field(description="distinct objects among them")

    @property
    def mean(self) -> float:
        span = self.t_to - self.t_from
        return self.object_seconds / span if span > 0 else float(self.objects)


def occupancy(query: Query, *, session: Session, limit: int = 20) -> list[Occupancy]:
    """Per video (the `limit` with the most), the matching tracks' time in view inside the
    query's window (else the whole video: from 0 to its end, `video_end`), summed, in one
    statement: "on average, how many people were in view?" is that over the window's
    length."""
    params: dict[str, Any] = {"n": limit}
    conditions = "\n  AND ".join(_filters(query, params))
    lo, hi = window_bounds(query, params)
    sql = f"""WITH {SCOPE_CTE},
matched AS (
  SELECT a.video_id, a.t_start, a.t_end, {_WHO} AS who,
    greatest({lo or "0.0"}, 0.0) AS lo, least({hi or _VIDEO_END}, {_VIDEO_END}) AS hi
  FROM apps_db_trackattributes a
  JOIN apps_db_track t ON t.analysis_id = a.analysis_id AND t.track_id = a.track_id
  WHERE {conditions}
)
SELECT video_id, min(lo) AS t_from, max(hi) AS t_to, count(DISTINCT who) AS objects,
  sum(greatest(least(t_end, hi) - greatest(t_start, lo), 0.0)) AS object_seconds
FROM matched GROUP BY video_id ORDER BY object_seconds DESC, video_id LIMIT :n"""
    return [
        Occupancy(video_id=r.video_id, t_from=r.t_from, t_to=r.t_to,
                  object_seconds=r.object_seconds, objects=r.objects)
        for r in session.execute(text(sql), params)
    ]  # fmt: skip


class VideoLength(BaseModel):
    """How long a video is: its stored length, else its last tracked moment."""

    video_id: str
    seconds: float | None
    fps: float | None = None
    frames: int | None = None
    measured: bool = Field(description="the length is the video's own, not its last track's")
    analysed_s: float | None = Field(
        default=None, description="the time the analysis covered, when less (`max_frames`)"
    )


def video_lengths(query: Query, *, session: Session, limit: int = 20) -> list[VideoLength]:
    """The length of each video `query` reads (its `video:` values, else every video with
    a completed analysis), by video id, in one statement: "how long is the video?"."""
    params: dict[str, Any] = {"n": limit}
    where = ""
    if query.videos:
        params["videos"] = list(query.videos)
        where = "WHERE va.video_id = ANY(:videos)"
    sql = f"""WITH {SCOPE_CTE}
SELECT va.video_id, coalesce(v.duration, e.t) AS seconds, v.fps, v.frame_count,
  v.duration IS NOT NULL AS measured,
  CASE WHEN e.t < v.duration - 1e-6 THEN e.t END AS analysed_s
FROM video_end e
JOIN apps_db_videoanalysis va ON va.id = e.analysis_id
JOIN apps_db_video v ON v.video_id = va.video_id
{where}
ORDER BY va.video_id LIMIT :n"""
    return [
        VideoLength(video_id=r.video_id, seconds=r.seconds, fps=r.fps, frames=r.frame_count,
                    measured=bool(r.measured), analysed_s=r.analysed_s)
        for r in session.execute(text(sql), params)
    ]  # fmt: skip


def places_drawn(query: Query, *, session: Session) -> tuple[list[str], list[str]]:
    """The names of the lines and zones drawn for the analyses `query` reads (the latest
    completed one of each of its videos, or of every video): what `line:` and `zone:` can
    name: those in their options, and any their events carry (options that do not read
    back as lines and zones add none)."""
    params: dict[str, Any] = {}
    where = ""
    if query.videos:
        params["videos"] = list(query.videos)
        where = "WHERE va.video_id = ANY(:videos)"
    sql = f"""WITH {LATEST_SCOPE_CTE},
chosen AS (
  SELECT va.id, va.params -> 'options' AS options
  FROM apps_db_videoanalysis va JOIN scope s ON s.id = va.id {where}
)
SELECT 'options' AS kind, options AS value FROM chosen
UNION ALL
SELECT DISTINCT e.event_type, to_jsonb(coalesce(e.attributes ->> 'line', e.attributes ->> 'zone'))
FROM apps_db_event e
WHERE e.analysis_id IN (SELECT id FROM chosen) AND e.event_type IN ('line_cross', 'dwell')"""
    lines: set[str] = set()
    zones: set[str] = set()
    for kind, value in session.execute(text(sql), params):
        if kind != "options":
            if isinstance(value, str):
                (lines if kind == "line_cross" else zones).add(value)
            continue
        try:
            lines.update(line.name for line in lines_from_options(value or {}))
            zones.update(zone.name for zone in zones_from_options(value or {}))
        except (ConfigError, AttributeError, TypeError):
            continue
    return sorted(lines), sorted(zones)


def heatmaps(
    query: Query,
    *,
    session: Session | None = None,
    top: int = 3,
    zero_shot: dict[str, float] | None = None,
    stops: bool = False,
) -> list[Heatmap]:
    """Where the tracks matching `query` (and `zero_shot`, as in `plan`) were, one
    `Heatmap` per video (the `top` videos with the most boxes), summed from the stored
    per-track grids in one statement. `stops`: where they stood (`_STOOD`: their longest
    pause, or a whole visit standing; tenths of a second per cell) instead of where their
    boxes were."""
    params: dict[str, Any] = {"top": top}
    where = _filters(query, params)
    if zero_shot:
        where.append(f"{_zero_shot_score(zero_shot, params)} >= :zs_min")
    grid = _STOOD if stops else "a.heat"
    conditions = "\n  AND ".join([*where, f"{grid} IS NOT NULL"])
    sql = f"""WITH {SCOPE_CTE},
matched AS MATERIALIZED (
  SELECT a.video_id, {grid} AS heat FROM apps_db_trackattributes a WHERE {conditions}
),
cells AS (
  SELECT m.video_id, u.i, sum(u.v)::bigint AS n
  FROM matched m, unnest(m.heat) WITH ORDINALITY AS u(v, i) GROUP BY m.video_id, u.i
),
videos AS (
  SELECT video_id, sum(n) AS total FROM cells GROUP BY video_id ORDER BY total DESC, video_id
  LIMIT :top
)
SELECT c.video_id, v.width, v.height, array_agg(c.n ORDER BY c.i) AS counts,
  (SELECT count(*) FROM matched m WHERE m.video_id = c.video_id) AS tracks
FROM cells c JOIN videos t ON t.video_id = c.video_id
JOIN apps_db_video v ON v.video_id = c.video_id
GROUP BY c.video_id, v.width, v.height, t.total ORDER BY t.total DESC, c.video_id"""
    if session is None:
        with session_scope() as own:
            rows = own.execute(text(sql), params).all()
    else:
        rows = session.execute(text(sql), params).all()
    out = []
    for r in rows:
        flat = [int(n) for n in r.counts]
        if len(flat) != HEAT_COLS * HEAT_ROWS:
            continue  # a grid of another shape: not summable with this one
        grid = [flat[i * HEAT_COLS : (i + 1) * HEAT_COLS] for i in range(HEAT_ROWS)]
        out.append(
            Heatmap(
                video_id=r.video_id,
                width=r.width,
                height=r.height,
                cols=HEAT_COLS,
                rows=HEAT_ROWS,
                counts=grid,
                tracks=int(r.tracks),
            )
        )
    return out


# where a track stood: its longest pause (`pause_heat`, tenths of a second per cell), or,
# for one that never moved, its boxes (`heat`) weighted to its time in view the same way
_STOOD = (
    "coalesce(a.pause_heat, CASE WHEN a.direction = 'static' THEN (SELECT array_agg("
    "round(u.h * a.duration_s * 10.0 / greatest((SELECT sum(x) FROM unnest(a.heat) x), 1))"
    "::int ORDER BY u.i) FROM unnest(a.heat) WITH ORDINALITY AS u(h, i)) END)"
)


def _zero_shot_score(zero_shot: dict[str, float], params: dict[str, Any]) -> str:
    """The SQL of a track's zero-shot score (its stored labels' probability x weight,
    summed); binds the labels, weights and `zeroshot.MIN_SCORE` (as `:zs_min`)."""
    params["zs_labels"], params["zs_weights"] = list(zero_shot), list(zero_shot.values())
    params["zs_min"] = zeroshot.MIN_SCORE
    return (
        "coalesce((SELECT sum((a.imagenet->>z.l)::float8 * z.w) FROM unnest("
        "CAST(:zs_labels AS text[]), CAST(:zs_weights AS float8[])) AS z(l, w)), 0)"
    )


def window_bounds(
    query: Query, params: dict[str, Any], tag: str = ""
) -> tuple[str | None, str | None]:
    """The SQL of the query's window on the time line of track `a`'s video (a negative
    time counts back from the video's end, a share is of the video's length), or None for
    an open side; binds the times.

    >>> from capstone.search.ql import parse
    >>> params = {}
    >>> window_bounds(parse("t:0:10..0:30"), params), params
    ((':t_from', ':t_to'), {'t_from': 10.0, 't_to': 30.0})
    >>> window_bounds(parse("t:-0:10.."), {})[0].endswith("+ :t_from)")
    True
    >>> window_bounds(parse("t:..50%"), {})[1].endswith("* :t_to / 100.0)")
    True
    """
    bounds: list[str | None] = []
    for name, value in ((f"t_from{tag}", query.t_from), (f"t_to{tag}", query.t_to)):
        if value is None:
            bounds.append(None)
            continue
        params[name] = value
        if query.t_share:
            bounds.append(f"({_VIDEO_END} * :{name} / 100.0)")
        else:
            bounds.append(f":{name}" if value >= 0 else f"({_VIDEO_END} + :{name})")
    return bounds[0], bounds[1]


_LIST_COLUMNS = {
    "classes": "a.class_name",
    "colors": "a.color",
    "directions": "a.direction",
    "types": "a.fine_type",
    "videos": "a.video_id",
}


def _filters(query: Query, params: dict[str, Any], tag: str = "") -> list[str]:
    """The WHERE conditions on `apps_db_trackattributes a` for `query`; fills `params`
    (the window's under names ending in `tag`, so several windows can share a statement)."""
    where = ["a.analysis_id IN (SELECT id FROM scope)"]
    for name, column in _LIST_COLUMNS.items():
        values, excluded = getattr(query, name), getattr(query.without, name)
        if values:
            params[name] = list(values)
            where.append(f"{column} = ANY(:{name})")
        if excluded:  # an unknown value (NULL) is not an excluded one
            params[f"not_{name}"] = list(excluded)
            where.append(f"coalesce({column} <> ALL(:not_{name}), true)")
    for i, cond in enumerate(query.conditions):
        params[f"c{i}{tag}"] = float(cond.value)
        if cond.field in _OBJECT_TIME_OF:  # uncorrelated: one hashed sub-select
            value = f":c{i}{tag}"
            if cond.value < 0:  # before the end of each video
                value = (
                    f"((SELECT e.t FROM video_end e WHERE e.analysis_id = o.analysis_id) + {value})"
                )
            where.append(
                "(a.analysis_id, a.track_id) IN (SELECT o.analysis_id, o.track_id FROM "
                f"object_times o WHERE o.{_OBJECT_TIME_OF[cond.field]} {cond.op} {value})"
            )
        else:
            column = _COLUMN_OF.get(cond.field) or _EXPRESSION_OF[cond.field]
            where.append(f"{column} {cond.op} :c{i}{tag}")
    lo, hi = window_bounds(query, params, tag)
    if lo is not None:
        where.append(f"a.t_end >= {lo}")
    if hi is not None:
        where.append(f"a.t_start <= {hi}")
    window = ""  # a line crossed inside the query's window
    if lo is not None:
        window += f" AND e.timestamp >= {lo}"
    if hi is not None:
        window += f" AND e.timestamp <= {hi}"
    for k, anchor in enumerate(query.anchors):
        where.append(_anchored(anchor, f"anchor{k}{tag}", params))
    if query.lines:
        params["lines"] = list(query.lines)
        where.append(
            "EXISTS (SELECT 1 FROM apps_db_event e WHERE e.analysis_id = a.analysis_id "
            "AND e.event_type = 'line_cross' AND e.track_id = a.track_id "
            f"AND e.attributes->>'line' = ANY(:lines){window})"
        )
    if query.zones:
        params["zones"] = list(query.zones)
        where.append(
            "EXISTS (SELECT 1 FROM apps_db_event e WHERE e.analysis_id = a.analysis_id "
            "AND e.event_type = 'dwell' AND e.track_id = a.track_id "
            "AND e.attributes->>'zone' = ANY(:zones))"
        )
    # "never crossed line A": not by this track, nor by another track of its object
    for name, kind, key, within in (
        ("not_lines", "line_cross", "line", window),
        ("not_zones", "dwell", "zone", ""),
    ):
        values = getattr(query.without, name.removeprefix("not_"))
        if not values:
            continue
        params[name] = list(values)
        event = (
            f"SELECT 1 FROM apps_db_event e WHERE e.analysis_id = {{t}}.analysis_id "
            f"AND e.event_type = '{kind}' AND e.track_id = {{t}}.track_id "
            f"AND e.attributes->>'{key}' = ANY(:{name}){within}"
        )
        where.append(f"NOT EXISTS ({event.format(t='a')})")
        where.append(
            "NOT EXISTS (SELECT 1 FROM apps_db_track me JOIN apps_db_track s "
            "ON s.analysis_id = me.analysis_id AND s.identity_id = me.identity_id "
            "AND s.track_id <> me.track_id "
            "WHERE me.analysis_id = a.analysis_id AND me.track_id = a.track_id "
            f"AND EXISTS ({event.format(t='s')}))"
        )
    if not query.all:
        where.append("a.plausible")
    return where


# when track `a` is in view relative to anchor track `w`'s times `{w0}`..`{w1}`
# (`Anchor.relation`)
_RELATION_SQL = {
    "during": "{w0} <= a.t_end AND {w1} >= a.t_start",
    "after": "a.t_end > {w1}",
    "before": "a.t_start < {w0}",
    "at_exit": "a.t_start <= {w1} AND a.t_end >= {w1}",
    "at_entry": "a.t_start <= {w0} AND a.t_end >= {w0}",
}


def _anchored(anchor: Anchor, name: str, params: dict[str, Any]) -> str:
    """The condition that another plausible track `w` of `a`'s analysis matches `anchor.of`
    (and is the first such track of its analysis in the `anchor.rank` order, when it has
    one) and is in `anchor.relation` with `a`; binds its values."""
    times = {"w0": "w.t_start", "w1": "w.t_end"}
    if anchor.stopped is not None:  # its times are those of its longest pause
        params[f"{name}_stopped"] = anchor.stopped
        times = {"w0": "w.pause_from", "w1": "w.pause_to"}
    related = f"w.track_id <> a.track_id AND {_RELATION_SQL[anchor.relation].format(**times)}"
    if anchor.rank is None:
        picked = " AND ".join(_picked(anchor, name, params, "w"))
        return (
            "EXISTS (SELECT 1 FROM apps_db_trackattributes w WHERE w.analysis_id = a.analysis_id"
            f" AND {picked} AND {related})"
        )
    # the first of each analysis in scope, chosen once per statement (an uncorrelated
    # sub-select), not once per track it is compared with
    column = _SORT_COLUMN[anchor.rank.removeprefix("-")]
    order = "DESC" if anchor.rank.startswith("-") else "ASC"
    first = (
        "SELECT DISTINCT ON (x.analysis_id) x.id "
        "FROM apps_db_trackattributes x WHERE x.analysis_id IN (SELECT id FROM scope) AND "
        f"{' AND '.join(_picked(anchor, name, params, 'x'))} "
        f"ORDER BY x.analysis_id, x.{column} {order} NULLS LAST, x.track_id"
    )
    return (
        "EXISTS (SELECT 1 FROM apps_db_trackattributes w WHERE w.analysis_id = a.analysis_id"
        f" AND w.id IN ({first}) AND {related})"
    )


def _picked(anchor: Anchor, name: str, params: dict[str, Any], t: str) -> list[str]:
    """The conditions on track `t` of being an object of `anchor` (plausible, its values,
    its pause); binds the values under `name`."""
    where = [f"{t}.plausible"]
    for field_name in ANCHOR_FIELDS:
        values = getattr(anchor.of, field_name)
        if values:
            params[f"{name}_{field_name}"] = list(values)
            column = _LIST_COLUMNS[field_name].replace("a.", f"{t}.", 1)
            where.append(f"{column} = ANY(:{name}_{field_name})")
    if anchor.stopped is not None:
        where.append(f"{t}.pause_s >= :{name}_stopped")
    return where


def run(
    query: Query, *, session: Session | None = None, zero_shot: dict[str, float] | None = None
) -> TrackResult:
    """Run `query` (see the module docstring): the hits, best first, and the count;
    `zero_shot` as in `plan`."""
    if session is not None:
        return _run_in(session, query, zero_shot)
    with session_scope() as own:
        return _run_in(own, query, zero_shot)


def stored_labels(query: Query, *, session: Session, limit: int = 2000) -> list[str]:
    """The distinct ImageNet labels stored for the tracks `query` matches (what zero-shot
    nouns can be matched against)."""
    params: dict[str, Any] = {"n": limit}
    conditions = "\n  AND ".join([*_filters(query, params), "jsonb_typeof(a.imagenet) = 'object'"])
    sql = f"""WITH {SCOPE_CTE}
SELECT DISTINCT k FROM apps_db_trackattributes a, jsonb_object_keys(a.imagenet) AS k
WHERE {conditions} ORDER BY k LIMIT :n"""
    return [r[0] for r in session.execute(text(sql), params).all()]


def find_tracks(query: Query, *, session: Session | None = None) -> list[TrackHit]:
    """The tracks matching `query`, best first (at most `query.limit`, default 50).

    >>> from capstone.search.ql import parse
    >>> [h.track_id for h in find_tracks(parse("car color:red"))]  # doctest: +SKIP
    [4, 17]
    """
    return run(query, session=session).hits


def _run_in(session: Session, query: Query, zero_shot: dict[str, float] | None) -> TrackResult:
    sql, params = plan(query, zero_shot)
    rows = session.execute(text(sql), params).all()
    hits = [_hit(r._mapping) for r in rows if r._mapping["track_id"] is not None]
    first = rows[0]._mapping if rows else {}
    who = int(first.get("n_who") or 0)
    moment = first.get("t_busiest")
    return TrackResult(
        query=query.canonical(),
        count=who,
        matched=int(first.get("n_rows") or 0),
        videos=int(first.get("n_videos") or 0),
        t_last=None if first.get("t_last") is None else float(first["t_last"]),
        # fragments of one identity follow each other: no more in view than identities
        at_once=min(int(first.get("n_peak") or 0), who),
        busiest=min(int(first.get("n_busiest") or 0), who),
        busiest_t=None if moment is None else float(moment),
        busiest_video=first.get("busiest_video"),
        hits=hits,
    )


def _hit(m: Any) -> TrackHit:
    attributes = {k: m[k] for k in ATTRIBUTE_COLUMNS if k in m}
    if attributes.get("doubts") is not None:
        attributes["doubts"] = list(attributes["doubts"])
    attributes["lines"] = sorted(x for x in (m["lines_crossed"] or []) if x is not None)
    attributes["zones"] = sorted(x for x in (m["zones_visited"] or []) if x is not None)
    thumb = None
    if m["has_crop"]:
        video = quote(m["video_id"], safe="")
        thumb = f"/videos/{video}/tracks/{m['track_id']}/crop?analysis_id={m['analysis_id']}"
    return TrackHit(
        video_id=m["video_id"],
        analysis_id=m["analysis_id"],
        track_id=m["track_id"],
        identity_id=m["identity_id"],
        class_name=m["class_name"],
        t_start=float(m["t_start"]),
        t_end=float(m["t_end"]),
        plausible=bool(m["plausible"]),
        attributes=attributes,
        best_frame=m["best_frame"],
        best_bbox=list(m["best_bbox"]) if m["best_bbox"] is not None else None,
        thumbnail=thumb,
        score=float(m["score"] or 0.0),
    )
