"""`Heatmap`: where the tracks that answer a question were, on a grid over the frame."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field


class Heatmap(BaseModel):
    """Where the matching tracks of one video were: counts of their boxes' bottom centres
    on a grid over the frame (`capstone.core.motion.place_counts`), top row first."""

    video_id: str
    width: int | None = Field(default=None, description="frame width, px")
    height: int | None = Field(default=None, description="frame height, px")
    cols: int
    rows: int
    counts: list[list[int]]
    tracks: int = Field(description="matching tracks with a place")

    def region(self) -> tuple[str, float]:
        """The third of the frame (vertically) x third (horizontally) holding most of the
        counts, in words, and its share.

        >>> Heatmap(video_id="v", cols=3, rows=3, counts=[[0, 0, 0], [0, 0, 0], [6, 1, 1]],
        ...         tracks=2).region()
        ('bottom left', 0.75)
        """
        grid = np.asarray(self.counts, np.float64)
        total = grid.sum()
        if total <= 0:
            return "nowhere", 0.0
        rows = np.array_split(np.arange(self.rows), 3)
        cols = np.array_split(np.arange(self.cols), 3)
        best = max(
            (
                (grid[np.ix_(r, c)].sum(), i, j)
                for i, r in enumerate(rows)
                for j, c in enumerate(cols)
            ),
            key=lambda t: t[0],
        )
        vertical = ("top", "middle", "bottom")[best[1]]
        horizontal = ("left", "centre", "right")[best[2]]
        name = (
            "centre"
            if (vertical, horizontal) == ("middle", "centre")
            else (f"{vertical} {horizontal}")
        )
        return name, round(float(best[0] / total), 2)

    def shaded(self, shades: str = " .:-=+*#%@") -> list[str]:
        """The grid as text, one line per row, each cell two characters shaded by its count
        (darker: more), framed; for terminals.

        >>> print("\\n".join(Heatmap(video_id="v", cols=3, rows=2, counts=[[0, 1, 9], [0, 0, 0]],
        ...                          tracks=1).shaded()))
        +------+
        |  ..@@|
        |      |
        +------+
        """
        grid = np.asarray(self.counts, np.float64)
        top = grid.max() if grid.size else 0.0
        levels = len(shades) - 1
        border = "+" + "-" * (2 * self.cols) + "+"
        lines = [border]
        for row in grid:
            cells = [
                shades[0] if v <= 0 or top <= 0 else shades[max(1, round(v / top * levels))]
                for v in row
            ]
            lines.append("|" + "".join(c * 2 for c in cells) + "|")
        return [*lines, border]
