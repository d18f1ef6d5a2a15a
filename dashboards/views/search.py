"""Search: text, an uploaded image, or "more like this"; vector, text or hybrid; filters."""

from __future__ import annotations

import streamlit as st

from dashboards import data
from dashboards.ui import EMPTY_VIDEOS, fmt_seconds, guarded, md, show_picture

PAGES = st.session_state.get("_pages", {})
MODES = ["hybrid", "vector", "text"]
TARGETS = ["frames", "tracks", "events"]

st.title("Search")


def describe(example: dict) -> str:
    if "frame" in example:
        vid, frame = example["frame"]
        return f"frame {frame} of {vid}"
    vid, track = example["track"]
    return f"track #{track} of {vid}"


with guarded():
    ids = data.video_ids()
    if not ids:
        st.info(EMPTY_VIDEOS)
        st.stop()
    example = st.session_state.get("search_example")
    if "q_text" not in st.session_state and st.query_params.get("q"):
        st.session_state["q_text"] = st.query_params["q"]  # shareable: /search?q=person
    text = st.text_input("Search text", placeholder="e.g. person, car, bicycle", key="q_text")
    image = st.file_uploader("…or an example image", type=["jpg", "jpeg", "png"], key="q_image")
    if example:
        left, right = st.columns([4, 1])
        left.info(f"More like this: {md(describe(example))}")
        if right.button("Clear example", key="q_clear"):
            del st.session_state["search_example"]
            st.rerun()
    cols = st.columns(4)
    mode = cols[0].radio("Mode", MODES, horizontal=True, key="q_mode")
    target = cols[1].radio("Find", TARGETS, horizontal=True, key="q_target")
    k = cols[2].number_input("Results", 1, 100, 12, key="q_k")
    with st.expander("Filters"):
        f_cols = st.columns(3)
        videos = f_cols[0].multiselect("Videos", ids, key="q_videos")
        classes = f_cols[1].text_input("Classes (comma-separated)", key="q_classes")
        event_types = f_cols[2].multiselect(
            "Event types", ["enter", "exit", "line_cross", "dwell", "detection"], key="q_types"
        )
        t_cols = st.columns(2)
        t_from = t_cols[0].number_input("From (s)", 0.0, value=None, key="q_from")
        t_to = t_cols[1].number_input("To (s)", 0.0, value=None, key="q_to")

    has_example = bool(example) or image is not None
    if not text.strip() and not has_example:
        st.caption("Type a query, upload an image, or use “More like this” on a keyframe or track.")
        st.stop()
    effective = mode
    if has_example and mode == "text":
        st.warning("Text mode ranks by words only: the example is ignored.")
    if has_example and not text.strip():
        effective = "vector"
        if mode != "vector":
            st.caption("An example without text is a vector search.")
    hits = data.search(
        text=text.strip() or None,
        image=image.getvalue() if image is not None and effective != "text" else None,
        frame=tuple(example["frame"]) if example and "frame" in example and image is None
        and effective != "text" else None,
        track=tuple(example["track"]) if example and "track" in example and image is None
        and effective != "text" else None,
        target=target,
        mode=effective,
        k=int(k),
        video_ids=videos,
        class_names=[c.strip() for c in classes.split(",") if c.strip()],
        event_types=event_types,
        t_from=t_from,
        t_to=t_to,
    )  # fmt: skip
    st.subheader(f"{len(hits)} results")
    if not hits:
        st.info("Nothing found: try hybrid mode, fewer filters or other words.")
    grid = st.columns(4)
    for i, hit in enumerate(hits):
        with grid[i % 4], st.container(border=True):
            picture = data.hit_image(hit)
            when = fmt_seconds(hit["timestamp"])
            where = f"{md(hit['video_id'])} · frame {hit['frame_number']} · {when}"
            if picture:
                show_picture(picture)
            st.markdown(f"**{hit['score']:.3f}** · found by *{hit['retriever']}*")
            label = hit.get("class_name") or hit.get("event_type") or ""
            if hit.get("track_id") is not None:
                label += f" #{hit['track_id']}"
            st.caption(f"{where} {md(label)}".strip())
            if hit.get("description"):
                st.caption(md(hit["description"][:120]))
            b1, b2 = st.columns(2)
            if b1.button("Open", key=f"open-{i}"):
                st.switch_page(
                    PAGES["video"],
                    query_params={"video": hit["video_id"], "t": str(hit["timestamp"] or 0.0)},
                )
            if b2.button("Similar", key=f"similar-{i}"):
                if hit["target"] == "tracks" and hit.get("track_id") is not None:
                    st.session_state["search_example"] = {
                        "track": (hit["video_id"], hit["track_id"])
                    }
                else:
                    near = [t["frame_number"] for t in data.thumbnails(hit["video_id"])]
                    ref = hit["thumbnail"]["frame_number"] if hit.get("thumbnail") else None
                    frame = ref if ref is not None else (near[0] if near else 0)
                    st.session_state["search_example"] = {"frame": (hit["video_id"], frame)}
                st.rerun()
