"""Tables that stay readable in an 80-column terminal: one line per row, never a wrapped
cell. Columns that matter less are dropped when the terminal is narrow; the last text
column takes what is left and ends in an ellipsis when it does not fit.

>>> import io
>>> from rich.console import Console
>>> rows = [{"id": "pets09", "status": "completed", "title": "PETS 2009 " * 10}]
>>> console = Console(width=40, file=io.StringIO())
>>> columns = [Column("id"), Column("status", min_width=120), Column("title", flexible=True)]
>>> console.print(table("videos", rows, columns, console.width))
>>> print(console.file.getvalue().splitlines()[4])
│ pets09 │ PETS 2009 PETS 2009 PETS 2… │
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

MAX_FIXED = 24  # a fixed column wider than this is cut with an ellipsis


@dataclass(frozen=True)
class Column:
    """A table column: the row key, its header, the terminal width it needs to be shown
    (`min_width`), how a value is written, and whether it takes the remaining width."""

    key: str
    header: str | None = None
    min_width: int = 0
    format: Callable[[Any], str] | None = None
    flexible: bool = False
    justify: str = "left"


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.0f}" if isinstance(v, float) else str(v) for v in value) + "]"
    return str(value)


def table(
    title: str, rows: Sequence[dict[str, Any]], columns: Sequence[Column], width: int
) -> Table:
    """A rich `Table` of `rows` with the `columns` that fit in `width`."""
    shown = [c for c in columns if width >= c.min_width]
    texts = [[(c.format or cell)(row.get(c.key)) for c in shown] for row in rows]
    out = Table(title=title, title_justify="left", expand=any(c.flexible for c in shown))
    for i, c in enumerate(shown):
        header = c.header or c.key
        needed = max([len(header), *(len(t[i]) for t in texts)])
        out.add_column(
            header,
            no_wrap=True,
            overflow="ellipsis",
            justify=c.justify,  # type: ignore[arg-type]
            ratio=1 if c.flexible else None,
            min_width=8 if c.flexible else min(needed, MAX_FIXED),
        )
    for row_texts in texts:
        out.add_row(*row_texts)
    return out
