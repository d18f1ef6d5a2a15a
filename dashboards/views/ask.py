"""Ask: a question box. The answer says what it understood (the canonical query), then the
answer, then the cited moments with their best crops (`capstone.search.ask.ask`)."""

from __future__ import annotations

import streamlit as st

from capstone.search.summary import written
from dashboards import data
from dashboards.ui import EMPTY_VIDEOS, fmt_seconds, guarded, md, show_picture

PAGES = st.session_state.get("_pages", {})
EXAMPLES = (
    "how many people walked left in the first 30 seconds?",
    "show me the white cars",
    "when did the trucks leave?",
    "car color:red dir:left speed>40",
    "how many people per 10 seconds?",
    "how long did people stay on average?",
    "which direction did most people walk?",
    "were there any cars that were not white?",
    "did anyone stop in the first half?",
    "what was the busiest minute?",
    "how many people were there while a truck was there?",
    "how many people arrived after 0:30?",
    "on average, how many people were in view?",
    "vehicles -bus sort:-speed",
)

st.title("Ask")

with guarded():
    ids = data.video_ids()
    if not ids:
        st.info(EMPTY_VIDEOS)
        st.stop()
    if "ask_q" not in st.session_state and st.query_params.get("q"):
        st.session_state["ask_q"] = st.query_params["q"]  # shareable: /ask?q=how+many+people
    if "ask_video" not in st.session_state and st.query_params.get("video") in ids:
        st.session_state["ask_video"] = st.query_params["video"]  # and &video=pets09
    cols = st.columns([4, 1])
    question = cols[0].text_input(
        "Question", placeholder=f"e.g. {EXAMPLES[0]}", key="ask_q", max_chars=500
    )
    video = cols[1].selectbox("Video", ["all videos", *ids], key="ask_video")
    if not question.strip():
        st.caption(
            "Ask in English (how many / when / which / where / is there / by colour), or use the "
            "query language: " + " · ".join(f"`{e}`" for e in EXAMPLES)
        )
        st.stop()
    answer = data.ask(question, None if video == "all videos" else video)
    st.markdown(md(answer["text"]))
    if answer["query"]:
        st.code(answer["query"], language=None)
    if answer.get("note"):
        st.warning(md(answer["note"]))
    if answer["kind"] == "count" and answer["count"] is not None:
        counted = st.columns(2)
        if answer.get("yes") is not None:  # "were there any trucks?"
            counted[0].metric(
                "Answer", "Yes" if answer["yes"] else "No", help=f"{answer['count']} found"
            )
        else:
            counted[0].metric("Answer", answer["count"])
        if answer["at_least"] is not None and answer["at_least"] < answer["count"]:
            counted[1].metric(
                "At least",
                answer["at_least"],
                help="the most in view at the same moment: tracks the tracker lost and found "
                "again that were not linked may be one object counted twice",
            )
        if answer.get("series"):
            periods = answer["series"]
            st.bar_chart(
                {
                    "period from (s, or before the end)": [p["t_from"] for p in periods],
                    "count": [p["count"] for p in periods],
                },
                x="period from (s, or before the end)",
                y="count",
            )
        if answer.get("moment") is not None:
            counted[1].metric("First at", fmt_seconds(answer["moment"]), help="the busiest moment")
    if answer.get("breakdown"):  # "by colour", "the most common direction"
        shares = answer["breakdown"]
        by = answer["by"]
        st.bar_chart(
            {
                by: [str(s["value"] or "unknown") for s in shares],
                "objects": [s["count"] for s in shares],
            },
            x=by,
            y="objects",
        )
    if answer.get("in_view") is not None:  # "on average, how many people were in view?"
        occupied = st.columns(2)
        occupied[0].metric(
            "In view at a time, on average",
            f"{answer['in_view']:.1f}",
            help="their time in view in the window, summed, over its length",
        )
        if answer.get("at_least") is not None:
            occupied[1].metric("At most at once", answer["at_least"])
    summary = answer.get("summary")
    if summary and summary["n"]:
        averaged = st.columns(3)
        averaged[0].metric("Average", written(summary["value"], summary["mean"]))
        averaged[1].metric("Median", written(summary["value"], summary["median"]))
        averaged[2].metric("Objects", summary["n"])
    for heatmap in answer.get("heatmaps") or []:
        picture = data.answer_heatmap(heatmap)
        if picture:
            st.image(
                picture,
                caption=f"where: {heatmap['video_id']}, {heatmap['tracks']} track(s) "
                "(warmer: more time there)",
            )
    items = answer["items"]
    if items:
        label = "moment" if len(items) == 1 else "moments"
        label += " (guessed)" if answer["guessing"] else ""
        st.caption(f"{len(items)} {label}")
    grid = st.columns(4)
    for i, item in enumerate(items):
        with grid[i % 4], st.container(border=True):
            picture = data.answer_image(item)
            if picture:
                show_picture(picture)
            attrs = item.get("attributes") or {}
            title = item.get("class_name") or ""
            if item.get("track_id") is not None:
                linked = attrs.get("track_ids") or []
                title += " #" + "+".join(
                    map(str, linked if len(linked) > 1 else [item["track_id"]])
                )
            when = fmt_seconds(item.get("t_start"))
            if item.get("t_end") not in (None, item.get("t_start")):
                when += f"–{fmt_seconds(item['t_end'])}"
            st.markdown(f"**{md(title.strip())}** · {md(item['video_id'])} · {when}")
            details = [
                str(attrs[k])
                for k in ("color", "direction", "fine_type")
                if attrs.get(k) not in (None, "")
            ]
            if isinstance(attrs.get("speed_px_s"), int | float):
                details.append(f"{attrs['speed_px_s']:.0f} px/s")
            if attrs.get("doubts"):
                details.append("doubts: " + ", ".join(attrs["doubts"]))
            if attrs.get("description"):
                details.append(str(attrs["description"])[:100])
            if details:
                st.caption(md(" · ".join(details)))
            if PAGES and st.button("Open", key=f"ask-open-{i}"):
                st.switch_page(
                    PAGES["video"],
                    query_params={"video": item["video_id"], "t": str(item.get("t_start") or 0.0)},
                )
