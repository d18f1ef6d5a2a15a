"""Events: filter by video, type, class, time and track; page through; export what is shown."""

from __future__ import annotations

import streamlit as st

from dashboards import data
from dashboards.ui import EMPTY_VIDEOS, guarded

ANY = "(any)"

st.title("Events")

with guarded():
    ids = data.video_ids()
    if not ids:
        st.info(EMPTY_VIDEOS)
        st.stop()
    wanted = st.query_params.get("video")
    cols = st.columns([2, 2, 2, 2])
    video_id = cols[0].selectbox(
        "Video", ids, index=ids.index(wanted) if wanted in ids else 0, key="ev_video"
    )
    facets = data.event_facets(video_id)
    event_type = cols[1].selectbox("Type", [ANY, *facets["event_types"]], key="ev_type")
    class_name = cols[2].selectbox("Class", [ANY, *facets["classes"]], key="ev_class")
    track = cols[3].selectbox("Track", [ANY, *facets["tracks"]], key="ev_track")
    video = data.get_video(video_id) or {}
    duration = float(video.get("duration") or 0.0)
    t_from, t_to = 0.0, duration
    if duration > 0:
        t_from, t_to = st.slider(
            "Time (s)", 0.0, duration, (0.0, duration), step=0.1, key="ev_time"
        )
    size_col, page_col = st.columns(2)
    page_size = size_col.selectbox("Rows per page", [25, 50, 100, 250, 500], index=2, key="ev_size")
    filters = {
        "event_type": None if event_type == ANY else event_type,
        "class_name": None if class_name == ANY else class_name,
        "track_id": None if track == ANY else int(track),
        "t_from": t_from if duration > 0 and t_from > 0 else None,
        "t_to": t_to if duration > 0 and t_to < duration else None,
    }
    _, total = data.events_page(video_id, page_size=1, **filters)
    pages = max(1, -(-total // page_size))
    page = page_col.number_input(f"Page (of {pages})", 1, pages, 1, key="ev_page") - 1
    frame, total = data.events_page(video_id, page_size=page_size, page=int(page), **filters)
    st.metric("Matching events", total)
    if frame.empty:
        st.info("No events match these filters.")
    else:
        first = int(page) * page_size + 1
        st.caption(f"showing {first}–{first + len(frame) - 1} of {total}")
        st.dataframe(frame, hide_index=True, key="ev_table")
        name = f"events-{video_id}-p{int(page) + 1}"
        down = st.columns(2)
        down[0].download_button(
            "Export CSV", data.to_csv(frame), f"{name}.csv", "text/csv", key="ev_csv"
        )
        down[1].download_button(
            "Export Parquet",
            data.to_parquet(frame),
            f"{name}.parquet",
            "application/vnd.apache.parquet",
            key="ev_parquet",
        )
