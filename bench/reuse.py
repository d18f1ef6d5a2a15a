"""Moving one line: a second analysis that reuses the stored tracks, against full runs; and
the export of many events.

Part 1 (one process, one fresh database): analyze the video with every default stage and
line L1 (A, the first run of the process: model loading included, as a CLI run pays it),
then with line L2 (B: reuses A's detections and tracks, recomputes the events and their
text embeddings), then with L2 again and `reuse=False` (C: a full run, models already
loaded). Printed: wall times, B/A and B/C, and whether B's rows equal C's (apart from ids).
Target: B/A <= 0.10.

Part 2 (before any model is loaded, so the process's peak memory shows the export's):
`--events` synthetic event rows of one analysis (made in SQL), exported as CSV (`COPY ...
TO STDOUT`), Parquet and MOT (server-side cursor). Target: 1M events in <= 10 s.

    .venv/bin/python -m bench.reuse                         # whole pets09 clip, 1M events
    .venv/bin/python -m bench.reuse --max-frames 200 --events 200000   # quicker
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import VIDEOS, drop_database, fresh_database, machine_note, setup_environment, table

L1 = {"name": "L1", "points": [[0, 350], [768, 350]]}
L2 = {"name": "L2", "points": [[400, 0], [400, 576]]}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_analysis(n: int) -> int:
    """A completed analysis of video `bench-export` holding `n` event rows (made in SQL)."""
    from sqlalchemy import text

    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses
    from capstone.store.engine import lift_timeouts, session_scope

    lease = analyses.claim_analysis("bench-export", AnalysisParams(), analyses.worker_id())
    with session_scope() as session:
        lift_timeouts(session, 0)
        session.execute(
            text(
                "INSERT INTO apps_db_event (video_id, analysis_id, frame_number, timestamp, "
                "event_type, class_name, confidence, bbox, track_id, attributes, description) "
                "SELECT 'bench-export', :a, g / 8, (g / 8) / 25.0, CASE WHEN g % 10 = 0 THEN "
                "'line_cross' ELSE 'detection' END, 'person', 0.5 + (g % 50) / 100.0, "
                "ARRAY[g % 700, g % 500, g % 700 + 40, g % 500 + 90]::float8[], 1 + g % 997, "
                'CASE WHEN g % 10 = 0 THEN \'{"line": "A", "direction": "in"}\'::jsonb '
                "END, CASE WHEN g % 10 = 0 THEN 'person ' || (1 + g % 997) || ' crossed line A' "
                "END FROM generate_series(0, :n - 1) AS g"
            ),
            {"a": lease.analysis_id, "n": n},
        )
        analyses.mark_completed(session, lease, frames_processed=n // 8, fps=0.0, summary={})
    return lease.analysis_id


def bench_export(n: int) -> list[list[Any]]:
    from capstone.store import transfer

    t = time.perf_counter()
    analysis = synthetic_analysis(n)
    print(f"made {n} event rows in {time.perf_counter() - t:.1f} s")
    import pyarrow.parquet  # noqa: F401  (loaded before the memory is measured)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("csv", "parquet", "mot"):
            before = _rss_mb()
            t = time.perf_counter()
            (path,) = transfer.export(
                "bench-export", fmt, Path(tmp), analysis_id=analysis, tables=["events"]
            )
            seconds = time.perf_counter() - t
            size = path.stat().st_size / 1e6
            rows.append([fmt, n, seconds, size, _rss_mb() - before])
    return rows


def _snapshot(analysis_id: int) -> dict[str, list[str]]:
    """Every result row of an analysis without ids, as sorted text (for equality)."""
    from sqlalchemy import text

    from capstone.store.engine import session_scope

    out = {}
    tables = ("apps_db_event", "apps_db_track", "apps_db_depthdata", "apps_db_displaydata",
              "frame_embeddings")  # fmt: skip
    with session_scope() as session:
        for name in tables:
            rows = session.execute(
                text(f"SELECT * FROM {name} WHERE analysis_id = :a"), {"a": analysis_id}
            ).mappings()
            skip = {"id", "analysis_id", "description_tsv"}
            out[name] = sorted(repr(sorted((k, v) for k, v in r.items() if k not in skip))
                               for r in rows)  # fmt: skip
    return out


def bench_line(video: Path, max_frames: int | None) -> tuple[list[list[Any]], bool]:
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    def params(line: dict[str, Any]) -> AnalysisParams:
        return AnalysisParams(max_frames=max_frames, options={"lines": [line]})

    runs = []
    for label, line, reuse in (("A: line L1 (first run)", L1, True),
                               ("B: line L2, reuse", L2, True),
                               ("C: line L2, --no-reuse", L2, False)):  # fmt: skip
        t = time.perf_counter()
        result = analyze(video, video_id="bench-line", params=params(line), reuse=reuse)
        seconds = time.perf_counter() - t
        assert result.status == "completed", result.error
        runs.append((label, seconds, result))
        if label.startswith("B"):
            reused = _snapshot(result.analysis_id)
    equal = _snapshot(runs[2][2].analysis_id) == reused
    rows = [
        [label, r.frames_run, seconds, r.reused_from or "", ", ".join(r.recomputed)]
        for label, seconds, r in runs
    ]
    return rows, equal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="pets09-s2l1.avi")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-line", action="store_true")
    args = parser.parse_args()
    setup_environment()
    url = fresh_database("reuse")
    try:
        if not args.skip_export:
            rows = bench_export(args.events)
            print(table(rows, ["export", "events", "seconds", "MB", "peak RSS growth MB"]))
        if args.skip_line:
            return
        rows, equal = bench_line(VIDEOS / args.video, args.max_frames)
        print(table(rows, ["run", "frames decoded", "seconds", "reused from", "recomputed"]))
        a, b, c = (r[2] for r in rows)
        print(f"B/A = {b / a:.3f} (target <= 0.10), B/C = {b / c:.3f}; "
              f"B's rows equal C's: {equal}")  # fmt: skip
        print(machine_note())
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
