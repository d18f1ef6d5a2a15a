"""Build the labelled question set `bench/data/questions.json` from MOT ground truth.

Answers are computed from `gt/gt.txt` of PETS09-S2L1 and TUD-Campus (never typed in):

- *how many people in a window*: ground-truth identities with a box in the window;
- *how many people walked left/right in a window*: of those, the ones whose net motion
  (bottom-centre of the first -> last box) is mostly horizontal (|dx| >= |dy|) and at least
  `MIN_SHIFT` of the frame width, to the left / right;
- *how many people were in view at the same time in a window* (`"at_once": true`): the
  most identities with a box in one frame of the window;
- *how many people arrived / left in a window* (`"moving": "came"` / `"went"`): the
  identities whose first / last box is in the window; one in view in the first second did
  not arrive in the video (`capstone.search.understand.WHOLE_TIME_S`).

Times are those of the video the analysis reads (`(frame - 1) / fps`, fps of the file:
PETS09-S2L1's AVI says 10 fps, TUD-Campus.mp4 25 fps), windows are whole seconds.

    .venv/bin/python -m bench.make_questions            # writes bench/data/questions.json
    .venv/bin/python -m bench.make_questions --check    # fails when the file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench import SHARED

MOT = SHARED / "data" / "mot"
OUT = Path(__file__).resolve().parent / "data" / "questions.json"
MIN_SHIFT = 0.05  # of the frame width: less is "not moving left or right"
WHOLE_TIME_S = 1.0  # in view within this long of the start: there from the start

# sequence -> (video file the analysis reads, its fps, frame width, windows in seconds)
SEQUENCES: dict[str, tuple[Path, float, int, list[tuple[int, int]]]] = {
    "PETS09-S2L1": (
        SHARED / "data" / "videos" / "pets09-s2l1.avi",
        10.0,
        768,
        [(0, 20), (20, 40), (40, 60), (60, 79), (0, 79)],
    ),
    "TUD-Campus": (MOT / "TUD-Campus" / "TUD-Campus.mp4", 25.0, 640, [(0, 1), (1, 2), (0, 2)]),
}


def load_gt(sequence: str) -> np.ndarray:
    """Rows `frame, id, x, y, w, h` of the boxes to consider (flag != 0)."""
    table = np.loadtxt(MOT / sequence / "gt" / "gt.txt", delimiter=",", ndmin=2)
    table = table[table[:, 6] != 0]
    return table[:, :6]


def tracks_of(gt: np.ndarray, fps: float, width: int) -> dict[int, dict]:
    """Per identity: first/last time and the direction of its net motion."""
    out = {}
    for ident in np.unique(gt[:, 1]).astype(int):
        rows = gt[gt[:, 1] == ident]
        rows = rows[np.argsort(rows[:, 0])]
        x0, y0 = rows[0, 2] + rows[0, 4] / 2, rows[0, 3] + rows[0, 5]
        x1, y1 = rows[-1, 2] + rows[-1, 4] / 2, rows[-1, 3] + rows[-1, 5]
        dx, dy = x1 - x0, y1 - y0
        direction = None
        if abs(dx) >= abs(dy) and abs(dx) >= MIN_SHIFT * width:
            direction = "left" if dx < 0 else "right"
        out[int(ident)] = {
            "t_start": (rows[0, 0] - 1) / fps,
            "t_end": (rows[-1, 0] - 1) / fps,
            "direction": direction,
            "frames": rows[:, 0].astype(int).tolist(),
        }
    return out


def _in_window(track: dict, fps: float, lo: float, hi: float) -> bool:
    return any(lo <= (f - 1) / fps <= hi for f in track["frames"])


def _clock(s: int) -> str:
    return f"{s // 60}:{s % 60:02d}"


def _most_at_once(gt: np.ndarray, fps: float, lo: float, hi: float) -> int:
    times = (gt[:, 0] - 1) / fps
    frames = gt[(times >= lo) & (times <= hi), 0]
    return int(np.unique(frames, return_counts=True)[1].max()) if len(frames) else 0


def build() -> list[dict]:
    questions = []
    for sequence, (video, fps, width, windows) in SEQUENCES.items():
        gt = load_gt(sequence)
        tracks = tracks_of(gt, fps, width)
        for lo, hi in windows:
            present = [i for i, t in tracks.items() if _in_window(t, fps, lo, hi)]
            window = f"between {_clock(lo)} and {_clock(hi)}"
            t = f"t:{_clock(lo)}..{_clock(hi)}"
            questions.append(
                {
                    "sequence": sequence,
                    "video": video.name,
                    "question": f"how many people were there {window}?",
                    "expected_query": f"person {t}",
                    "kind": "count",
                    "window": [lo, hi],
                    "direction": None,
                    "answer": len(present),
                    "ids": sorted(present),
                }
            )
            for direction in ("left", "right"):
                ids = [i for i in present if tracks[i]["direction"] == direction]
                questions.append(
                    {
                        "sequence": sequence,
                        "video": video.name,
                        "question": f"how many people walked {direction} {window}?",
                        "expected_query": f"person dir:{direction} {t}",
                        "kind": "count",
                        "window": [lo, hi],
                        "direction": direction,
                        "answer": len(ids),
                        "ids": sorted(ids),
                    }
                )
        for lo, hi in windows:
            window = f"between {_clock(lo)} and {_clock(hi)}"
            came = [i for i, t in tracks.items() if lo <= t["t_start"] <= hi
                    and (lo > 0 or t["t_start"] >= WHOLE_TIME_S)]  # fmt: skip
            went = [i for i, t in tracks.items() if lo <= t["t_end"] <= hi]
            first = f"{_clock(lo)}" if lo else f"{_clock(int(WHOLE_TIME_S))}"
            for verb, moving, ids, query in (
                ("arrived", "came", came, f"person start>={first} start<={_clock(hi)}"),
                ("left", "went", went, f"person end>={_clock(lo)} end<={_clock(hi)}"),
            ):
                questions.append(
                    {
                        "sequence": sequence,
                        "video": video.name,
                        "question": f"how many people {verb} {window}?",
                        "expected_query": query,
                        "kind": "count",
                        "moving": moving,
                        "window": [lo, hi],
                        "direction": None,
                        "answer": len(ids),
                        "ids": sorted(ids),
                    }
                )
            questions.append(
                {
                    "sequence": sequence,
                    "video": video.name,
                    "question": f"how many people were in view at the same time {window}?",
                    "expected_query": f"person t:{_clock(lo)}..{_clock(hi)}",
                    "kind": "count",
                    "at_once": True,
                    "window": [lo, hi],
                    "direction": None,
                    "answer": _most_at_once(gt, fps, lo, hi),
                }
            )
    return questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args()
    text = json.dumps(build(), indent=1) + "\n"
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            sys.exit(f"{OUT} is stale: run python -m bench.make_questions")
        print(f"{OUT} is up to date")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {len(json.loads(text))} questions to {OUT}")


if __name__ == "__main__":
    main()
