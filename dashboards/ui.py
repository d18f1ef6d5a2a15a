"""Small UI helpers shared by the pages: error boundary, empty states, formatting."""

from __future__ import annotations

import math
import re
import string
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
        st.error(md(str(exc)))
        if "not reachable" in str(exc):
            st.caption(
                "Check `DATABASE_URL` (or start the embedded database with `capstone db up`)."
            )
    except Exception as exc:
        if type(exc).__module__.startswith("streamlit"):
            raise
        st.error(md(f"internal error: {type(exc).__name__}: {exc}"))


_MD_SPECIAL = frozenset(string.punctuation)


def show_picture(data: bytes, caption: str | None = None) -> None:
    """Show a stored JPEG/PNG; one that does not decode (a damaged or foreign blob) is a
    caption saying so, not an error over the rest of the page."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:  # the header, as `st.image` reads it; the pixels are decoded once, by the browser
        Image.open(io.BytesIO(data)).close()
    except (UnidentifiedImageError, OSError, ValueError):
        st.caption("(picture unreadable)" + (f" · {caption}" if caption else ""))
        return
    st.image(data, caption=caption)


def md(value: object) -> str:
    """`value` as markdown that shows exactly its text: every ASCII punctuation character is
    backslash-escaped (CommonMark shows an escaped one literally), so user text (titles,
    errors, event descriptions, line and zone names, ids) never becomes a link, an image,
    emphasis, a heading, HTML, LaTeX or a Streamlit directive (`:red[...]`, `:material/...:`),
    and no URL in it is turned into a link. Line breaks become spaces.

    Streamlit's renderer (remark-gfm) also links bare URLs and e-mail addresses found in
    the *unescaped* text (`http://`, `www.`, `a@b.c`): an invisible word joiner (U+2060)
    goes where those patterns would match (`:`+`/`, `www`+`.`, after `@`).

    >>> print(md("[click](x.png) ![x](x.png)"))
    \\[click\\]\\(x\\.png\\) \\!\\[x\\]\\(x\\.png\\)
    >>> [md(x).count(WORD_JOINER) for x in ("http://a.b", "www.a.b", "me@a.b", "a: b/c")]
    [1, 1, 1, 0]
    >>> md("bikes 2")
    'bikes 2'
    """
    text = _AUTOLINK.sub(WORD_JOINER, " ".join(str(value).splitlines()))
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?<=:)(?=/)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)


def start_time(raw: object, duration: float | None) -> tuple[float, str | None]:
    """The player's start from the `t` query parameter: (seconds, None), or (0.0, why) for a
    value that is not a finite number >= 0; a start beyond the video's end is clamped to it.

    >>> start_time("12.5", 60.0), start_time("inf", 60.0)[0], start_time("90", 60.0)
    ((12.5, None), 0.0, (60.0, None))
    """
    if raw is None or raw == "":
        return 0.0, None
    try:
        value = float(str(raw))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        shown = str(raw)[:40]
        return 0.0, f"Ignoring t={shown}: the start must be a number of seconds >= 0."
    if duration is not None and math.isfinite(duration) and duration > 0:
        value = min(value, float(duration))
    return value, None


def fmt_seconds(value: float | None) -> str:
    """`75.5` -> `1:15.5`; None -> `—`."""
    if value is None or not math.isfinite(float(value)):
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


def progress_table(table: Any) -> None:
    """A table of analyses whose `progress` column (0-100) is drawn as a bar."""
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "progress": st.column_config.ProgressColumn(
                "progress", min_value=0, max_value=100, format="%d%%"
            )
        },
    )


def status_badge(status: str | None) -> str:
    """The status as shown (plain text: emoji fonts are often missing on servers)."""
    return status or "not analyzed"


def query_param(name: str, default: Any = None) -> Any:
    return st.query_params.get(name, default)


def api_token() -> str | None:
    """The API token typed into the sidebar (`dashboards/app.py`), if any."""
    token = st.session_state.get("api_token")
    return token.strip() or None if isinstance(token, str) else None
