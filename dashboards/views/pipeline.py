"""Pipeline: queue depth and dead letters (when a queue is configured), recent analyses."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import data
from dashboards.ui import EMPTY_VIDEOS, fmt_chunks, guarded, md, progress_table

st.title("Pipeline")


@st.fragment(run_every=5.0)
def pipeline_status() -> None:
    with guarded():
        queue = data.queue_depths()
        if queue is None:
            st.info("No queue configured (`SQS_QUEUE_URL` unset): analyses run locally.")
        else:
            cols = st.columns(3)
            cols[0].metric("Queue: waiting", queue["waiting"])
            cols[1].metric("Queue: in flight", queue["in_flight"])
            dead = queue["dead_letters"]
            cols[2].metric("Dead letters", "—" if dead is None else dead)
            st.caption(f"queue {queue['queue_url']} · DLQ {queue['dlq_url'] or 'none'}")
    with guarded():
        counts = data.status_counts()
        cols = st.columns(4)
        for col, name in zip(cols, ("completed", "processing", "pending", "failed"), strict=True):
            col.metric(f"Analyses {name}", counts.get(name, 0))
        recent = data.recent_analyses()
        if not recent:
            st.info(EMPTY_VIDEOS)
            return
        st.subheader("Recent analyses")
        table = pd.DataFrame(
            {
                "id": [a["id"] for a in recent],
                "video": [a["video_id"] for a in recent],
                "status": [a["status"] for a in recent],
                "progress": [int(a["progress"] or 0) for a in recent],
                "stage": [a["stage"] for a in recent],
                "chunks": [
                    fmt_chunks(
                        a["status"], a["chunks_done"], a["chunks_total"], a["frames_processed"]
                    )
                    for a in recent
                ],
                "frames": [a["frames_processed"] for a in recent],
                "fps": [round(a["fps"], 1) if a["fps"] else None for a in recent],
                "stages": [", ".join((a["params"] or {}).get("stages", [])) for a in recent],
                "started": [a["started_at"] for a in recent],
                "finished": [a["finished_at"] for a in recent],
                "error": [a["error"] or "" for a in recent],
            }
        )
        progress_table(table)
        for a in recent:
            if a["status"] == "failed":
                st.error(f"analysis {a['id']} of {md(a['video_id'])} failed: {md(a['error'])}")


pipeline_status()
