"""The Streamlit dashboard (`capstone dashboard`): videos, events, tracks, search, pipeline."""
