"""Small UI helpers shared by the pages: error boundary, empty states, formatting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from capstone.errors import CapstoneError

EMPTY_VIDEOS = "No videos yet — upload one or run `capstone analyze`."


@contextmanager
def guarded() -> Iterator[None]:
    """Render a `CapstoneError` (e.g. database not reachable) as one clear error line.

    Anything else is a bug: it is shown as one line too, with its type, so that the page
    never dumps a traceback on the user.
    """
    try:
        yield
    except CapstoneError as exc:
        st.error(str(exc))
        if "not reachable" in str(exc):
            st.caption(
                "Check `DATABASE_URL` (or start the embedded database with `capstone db up`)."
            )
    except Exception as exc:
        if type(exc).__module__.startswith("streamlit"):
            raise
        st.error(f"internal error: {type(exc).__name__}: {exc}")


def fmt_seconds(value: float | None) -> str:
    """`75.5` -> `1:15.5`; None -> `—`."""
    if value is None:
        return "—"
    minutes, seconds = divmod(float(value), 60.0)
    return f"{int(minutes)}:{seconds:04.1f}"


def fmt_chunks(status: str | None, done: int | None, total: int | None, frames: int | None) -> str:
    """Chunk progress of a running analysis, `3/10 chunks · 4,500 frames`; `""` otherwise.

    >>> fmt_chunks("processing", 3, 10, 4500), fmt_chunks("completed", 10, 10, 15000)
    ('3/10 chunks · 4,500 frames', '')
    """
    if status not in ("processing", "pending") or not total:
        return ""
    return f"{done or 0}/{total} chunks · {frames or 0:,} frames"


def status_badge(status: str | None) -> str:
    """The status as shown (plain text: emoji fonts are often missing on servers)."""
    return status or "not analyzed"


def query_param(name: str, default: Any = None) -> Any:
    return st.query_params.get(name, default)
