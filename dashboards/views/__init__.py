"""One module per dashboard page (run by `st.navigation` from `dashboards/app.py`)."""
