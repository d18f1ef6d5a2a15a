"""Video: player with an events timeline, keyframes, tracks, trails/heatmap, counts, depth."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import data
from dashboards.ui import (
    EMPTY_VIDEOS,
    fmt_chunks,
    fmt_seconds,
    guarded,
    md,
    show_picture,
    start_time,
    status_badge,
)

PAGES = st.session_state.get("_pages", {})


def more_like_this(**ref: object) -> None:
    """Open the Search page with this frame or track as the example."""
    st.session_state["search_example"] = ref
    st.switch_page(PAGES["search"])


def player(video: dict, start: float) -> None:
    """The video, served by the dashboard itself (`data.player_media`): no presigned URL
    reaches the browser unless `DASHBOARD_PRESIGNED_URLS=1`."""
    media, why_not = data.player_media(video.get("source_uri"))
    if media is None:
        st.info(why_not or "The video file is not available here.")
    else:
        st.video(media, start_time=int(start))


with guarded():
    ids = data.video_ids()
    if not ids:
        st.title("Video")
        st.info(EMPTY_VIDEOS)
        st.stop()
    wanted = st.query_params.get("video")
    video_id = st.selectbox(
        "Video", ids, index=ids.index(wanted) if wanted in ids else 0, key="detail_video"
    )
    if video_id != wanted:
        st.query_params["video"] = video_id
    video = data.get_video(video_id) or {}
    latest = video.get("latest_analysis") or {}
    st.title(md(video.get("title") or video_id))
    cols = st.columns(5)
    cols[0].metric("Status", status_badge(latest.get("status") or video.get("status")))
    cols[1].metric("Duration", fmt_seconds(video.get("duration")))
    cols[2].metric("Resolution", f"{video.get('width')}x{video.get('height')}")
    cols[3].metric("Frames analyzed", latest.get("frames_processed") or 0)
    cols[4].metric("Analysis fps", round(latest.get("fps") or 0.0, 1))
    running = fmt_chunks(
        latest.get("status"),
        latest.get("chunks_done"),
        latest.get("chunks_total"),
        latest.get("frames_processed"),
    )
    if running:
        st.caption(f"analyzing: {running} ({latest.get('progress') or 0:.0f} %)")
    if latest.get("status") == "failed":
        st.error(md(f"analysis failed: {latest.get('error') or 'no reason recorded'}"))

    # ---- player + events timeline ---------------------------------------------------------
    events = data.semantic_events(video_id)
    start, bad_start = start_time(st.query_params.get("t"), video.get("duration"))
    if bad_start:
        st.warning(md(bad_start))
    labels = [
        f"{fmt_seconds(e['timestamp'])} {e['event_type']} {e['class_name'] or ''}"
        f" #{e['track_id'] if e['track_id'] is not None else '-'}"
        for e in events
    ]
    left, right = st.columns([3, 2])
    with right:
        st.subheader(f"Events timeline ({len(events)})")
        if events:
            timeline = pd.DataFrame(
                {
                    "t (s)": [e["timestamp"] for e in events],
                    "type": [e["event_type"] for e in events],
                    "class": [e["class_name"] for e in events],
                    "track": [e["track_id"] for e in events],
                    "description": [e["description"] for e in events],
                }
            )
            st.scatter_chart(timeline, x="t (s)", y="type", color="type", height=180)
            picked = st.dataframe(
                timeline,
                hide_index=True,
                height=220,
                on_select="rerun",
                selection_mode="single-row",
                key="timeline_table",
            )
            rows = picked.selection.rows if picked is not None else []
            if rows:
                start = float(events[rows[0]]["timestamp"] or 0.0)
            jump = st.selectbox("Jump to event", labels, index=None, key="jump_event")
            if jump is not None:
                start = float(events[labels.index(jump)]["timestamp"] or 0.0)
        else:
            st.caption("No semantic events (run the `events` stage).")
    with left:
        player(video, start)
        st.caption(f"playing from {fmt_seconds(start)}")

    tab_frames, tab_tracks, tab_overlay, tab_counts, tab_depth = st.tabs(
        ["Keyframes", "Tracks", "Trails & heatmap", "Counts over time", "Depth"]
    )
    with tab_frames:
        thumbs = data.thumbnails(video_id)
        st.caption(f"{len(thumbs)} keyframe thumbnails")
        if not thumbs:
            st.info("No keyframes stored (run the `display` stage).")
        grid = st.columns(4)
        for i, thumb in enumerate(thumbs[:24]):
            with grid[i % 4]:
                jpeg = data.thumbnail(video_id, thumb["frame_number"])
                if jpeg:
                    when = fmt_seconds(thumb["timestamp"])
                    show_picture(jpeg, caption=f"frame {thumb['frame_number']} · {when}")
                if st.button("More like this", key=f"mlt-frame-{thumb['frame_number']}"):
                    more_like_this(frame=(video_id, thumb["frame_number"]))
    with tab_tracks:
        tracks = data.tracks_table(video_id)
        st.caption(f"{len(tracks)} tracks")
        if tracks.empty:
            st.info("No tracks stored for this video.")
        else:
            shown = tracks[
                [
                    "track_id",
                    "class_name",
                    "duration_s",
                    "first_timestamp",
                    "last_timestamp",
                    "length",
                    "mean_confidence",
                    "avg_depth",
                ]
            ].rename(
                columns={"first_timestamp": "first seen (s)", "last_timestamp": "last seen (s)"}
            )
            st.dataframe(shown, hide_index=True, key="tracks_table")
            st.caption("Best crops of the longest tracks")
            grid = st.columns(6)
            longest = tracks.sort_values("length", ascending=False).head(12)
            for i, t in enumerate(longest.itertuples()):
                with grid[i % 6]:
                    crop = data.track_crop(video_id, int(t.analysis_id), int(t.track_id))
                    if crop:
                        show_picture(crop, caption=md(f"{t.class_name} #{t.track_id}"))
                    else:
                        st.caption(md(f"{t.class_name} #{t.track_id} (no crop)"))
                    if st.button("Similar", key=f"mlt-track-{t.track_id}"):
                        more_like_this(track=(video_id, int(t.track_id)))
    with tab_overlay:
        drawn = data.overlay(video_id)
        if drawn is None:
            st.info("No keyframe to draw on (run the `display` stage).")
        else:
            png, n_trails = drawn
            st.image(png, caption=f"occupancy heatmap and {n_trails} track trails")
    with tab_counts:
        counts = data.counts_frame(video_id)
        if counts.empty:
            st.info("No count timeline stored (run the `display` stage).")
        else:
            st.caption("mean objects per frame, per class")
            st.line_chart(counts)
    with tab_depth:
        depth = data.depth_frame(video_id)
        if depth.empty:
            st.info("No depth data stored (run the `depth` stage).")
        else:
            st.caption(f"average depth of {depth.shape[1]} tracked objects by frame")
            st.line_chart(depth)
