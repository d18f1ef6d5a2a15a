"""Videos: every video with its analysis status and live progress; upload; retry failures."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import data
from dashboards.ui import (
    EMPTY_VIDEOS,
    api_token,
    fmt_chunks,
    fmt_seconds,
    guarded,
    md,
    progress_table,
    status_badge,
)

st.title("Videos")


@st.fragment(run_every=2.0)
def video_list() -> None:
    """The table; refreshes itself every 2 s so running analyses show live progress."""
    with guarded():
        rows = data.video_rows()
        if not rows:
            st.info(EMPTY_VIDEOS)
            return
        counts = data.status_counts()
        cols = st.columns(4)
        cols[0].metric("Videos", len(rows))
        cols[1].metric("Completed analyses", counts.get("completed", 0))
        cols[2].metric("Running", counts.get("processing", 0) + counts.get("pending", 0))
        cols[3].metric("Failed", counts.get("failed", 0))
        table = pd.DataFrame(
            {
                "video": [r["video_id"] for r in rows],
                "title": [r["title"] for r in rows],
                "status": [status_badge(r["analysis_status"] or r["status"]) for r in rows],
                "progress": [int(r["progress"] or 0) for r in rows],
                "stage": [r["stage"] or "" for r in rows],
                "chunks": [
                    fmt_chunks(
                        r["analysis_status"],
                        r["chunks_done"],
                        r["chunks_total"],
                        r["frames_processed"],
                    )
                    for r in rows
                ],
                "duration": [fmt_seconds(r["duration"]) for r in rows],
                "size": [f"{r['width']}x{r['height']}" if r["width"] else "" for r in rows],
                "frames": [r["frames_processed"] for r in rows],
                "fps": [round(r["analysis_fps"], 1) if r["analysis_fps"] else None for r in rows],
            }
        )
        progress_table(table)
        for job in data.local_jobs():
            if job.status in ("queued", "running"):
                doing = "analyzing" if job.status == "running" else "waiting to analyze"
                st.caption(f"⏳ {doing} {md(job.video_id)} here (started from this dashboard)")
        failed = [r for r in rows if r["analysis_status"] == "failed"]
        refusal = data.write_refusal(api_token()) if failed else None
        for r in failed:
            box = st.container(border=True)
            reason = r["error"] or "no reason recorded"
            box.error(md(f"{r['video_id']}: analysis failed — {reason}"))
            if refusal is None and box.button("Retry", key=f"retry-{r['video_id']}"):
                try:
                    data.retry(r["video_id"], token=api_token())
                except data.DashboardError as exc:
                    box.warning(md(str(exc)))
                else:
                    st.toast(md(f"analysis of {r['video_id']} restarted"))
        if refusal is not None:
            st.caption(f"Retry: {refusal}")
        choice = st.selectbox(
            "Open a video", [r["video_id"] for r in rows], index=None, key="open_video"
        )
        if choice:
            st.switch_page(st.session_state["_pages"]["video"], query_params={"video": choice})


video_list()

st.subheader("Upload a video")
with guarded():
    target = data.upload_target()
    st.caption(
        "Goes to the raw bucket; the event-driven pipeline analyzes it."
        if target == "queue"
        else "No queue configured: the dashboard analyzes it here "
        f"(stages: {', '.join(data.DASHBOARD_STAGES)})."
    )
    refusal = data.write_refusal(api_token())
    if refusal is not None:
        st.info(refusal)  # no uploader either: nothing reaches this process without rights
        st.stop()
    with st.form("upload", clear_on_submit=True):
        file = st.file_uploader("Video file", type=["mp4", "avi", "mov", "mkv", "webm", "m4v"])
        video_id = st.text_input("Video id (optional)", help="default: from the file name")
        submitted = st.form_submit_button("Upload and analyze")
    if submitted:
        if file is None:
            st.warning("Choose a video file first.")
        else:
            vid, where = data.submit_upload(
                file.name, file.getvalue(), video_id.strip() or None, token=api_token()
            )
            st.success(md(f"{vid}: uploaded ({where}); progress shows above."))
