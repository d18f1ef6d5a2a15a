"""capstone dashboard: `capstone dashboard` (or `streamlit run dashboards/app.py`).

Pages: Videos (list, live progress, upload, retry), Video (player, events timeline,
keyframes, tracks, trails/heatmap, counts, depth), Events (filters, paging, export),
Search (text / image / more-like-this; vector, text, hybrid), Ask (questions in English or
the query language, answered from the stored tracks) and Pipeline (queue, analyses).
The database is `DATABASE_URL` (else the embedded server), exactly as for the CLI and the API.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboards/ on the path
    sys.path.insert(0, str(ROOT))

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="capstone", page_icon=":material/movie:", layout="wide")

PAGES = {
    "videos": st.Page(
        HERE / "views" / "videos.py", title="Videos", icon=":material/movie:", default=True
    ),
    "video": st.Page(
        HERE / "views" / "video_detail.py",
        title="Video",
        icon=":material/play_circle:",
        url_path="video",
    ),
    "events": st.Page(
        HERE / "views" / "events.py", title="Events", icon=":material/list_alt:", url_path="events"
    ),
    "search": st.Page(
        HERE / "views" / "search.py", title="Search", icon=":material/search:", url_path="search"
    ),
    "ask": st.Page(
        HERE / "views" / "ask.py", title="Ask", icon=":material/question_answer:", url_path="ask"
    ),
    "pipeline": st.Page(
        HERE / "views" / "pipeline.py",
        title="Pipeline",
        icon=":material/settings:",
        url_path="pipeline",
    ),
}
st.session_state["_pages"] = PAGES

from capstone.config import get_settings  # noqa: E402  (after the sys.path fix above)

_settings = get_settings()
if _settings.dashboard_allow_writes and not _settings.capstone_auth_disabled:
    st.sidebar.text_input(
        "API token",
        type="password",
        key="api_token",
        help="Needed to upload and retry: an API key whose sha256 is in API_KEY_HASHES.",
    )

st.navigation(list(PAGES.values())).run()
