"""Long videos (issue 17): memory, throughput, publish cost and kill/resume against length.

Looped real footage (default `highway-cctv.avi`, 748 frames at 25 fps, 320x240): the
decoded frames are written 1x, 5x, 20x over into temporary H.264 mp4 files (same encoder
for every length, so lengths differ only in how often the footage repeats). In one fresh
bench database, in one run:

1. length series: `capstone analyze VIDEO --json` (all default stages, default 60 s
   chunks) as a subprocess per length. Peak RSS is the largest sum of RSS over the
   process tree (the CLI and any worker processes), sampled every 0.1 s; the largest
   single process (`wait4` ru_maxrss) is printed too. Goal: every length peaks within
   1.15x of the 1x run.
2. single pass vs `--workers 2` on one length (`--workers-length`, default 5): frames/s.
3. kill/resume on one length (`--resume-length`, default the longest): a driver process
   calls `capstone.runtime.pipeline.analyze(..., lease_seconds=5)` (the CLI keeps the default
   120 s lease, so an immediate retry would be refused as busy), is SIGKILLed once the
   analysis row's `frames_processed` reaches `--kill-at` (0.8) of the frames expected,
   and after 6 s (the lease has expired) the same call runs again and resumes. Goal: the
   retry's wall time <= 30 % of the uninterrupted run of that length from step 1, and the
   published result equals it (tracks per class, events per type, detection rows, and a
   digest of every event's frame, type, class, track id and box).
4. projection of a 1-hour 25 fps video (90,000 frames, 60 chunks) on 1, 4, 16, 64 AWS
   Batch workers from the measured per-chunk cost, startup, and publish seconds per row
   (a projection, not a measurement: its assumptions are printed with it).

    .venv/bin/python -m bench.long_video                       # 1,5,20x (about 50 min)
    .venv/bin/python -m bench.long_video --lengths 1,2 --resume-length 2 --workers-length 2
    .venv/bin/python -m bench.long_video --write-docs          # also docs/long_video.md
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import (
    ROOT,
    VIDEOS,
    drop_database,
    fresh_database,
    machine_note,
    setup_environment,
    table,
)

DOCS = ROOT / "docs" / "long_video.md"
HOUR_FRAMES = 90_000  # 1 h at 25 fps
HOUR_FPS = 25.0
BATCH_WORKERS = (1, 4, 16, 64)
LEASE_S = 5
CODE: Path | None = None  # where the measured processes import capstone from (see snapshot)
CODE_REV = "worktree"


def snapshot(into: Path, rev: str = "HEAD") -> Path:
    """`git archive REV` of this checkout: every measured process imports this copy, so
    edits made in the working tree while the bench runs (others share it) change nothing."""
    out = into / "code"
    out.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


DRIVER = """\
import json, sys
from capstone.stages.params import AnalysisParams
from capstone.runtime.pipeline import analyze
params = AnalysisParams(**json.loads(sys.argv[4]))
r = analyze(sys.argv[1], video_id=sys.argv[2], params=params, lease_seconds=int(sys.argv[3]))
print("RESULT " + json.dumps(r.__dict__, default=str))
"""


@dataclass
class Run:
    """One subprocess: its wall time, peak memory and the analysis summary it printed."""

    label: str
    length: int
    wall_s: float = 0.0
    peak_tree_mb: float = 0.0
    peak_single_mb: float = 0.0
    returncode: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    killed_at: dict[str, Any] | None = None

    @property
    def frames(self) -> int:
        return int(self.result.get("frames_processed") or 0)

    @property
    def rows(self) -> int:
        return sum((self.result.get("counts") or {}).values())

    @property
    def timings(self) -> dict[str, float]:
        return self.result.get("timings") or {}

    @property
    def loop_s(self) -> float:
        """Seconds in the chunk loop (decode, detect, track, stages, staging) of a single
        pass: frames / the pipeline's own fps."""
        fps = float(self.result.get("fps") or 0.0)
        return self.frames / fps if fps else 0.0

    @property
    def publish_phase_s(self) -> float:
        """Stitch, the stages' publish work and the publishing transaction: the analysis's
        wall time after setup and the chunk loop."""
        wall = float(self.result.get("wall_time") or 0.0)
        return max(0.0, wall - self.timings.get("setup", 0.0) - self.loop_s)

    @property
    def startup_s(self) -> float:
        """Process start, imports and model loading: subprocess wall less the loop and publish."""
        return max(0.0, self.wall_s - self.loop_s - self.publish_phase_s)


# -- looped videos -----------------------------------------------------------------------


def looped_video(source: Path, times: int, out_dir: Path, cut: int | None = None) -> Path:
    """`source`'s decoded frames (its first `cut`) `times` over, as an H.264 mp4 (CRF 18)
    at the source's frame rate. The source is decoded again for every loop."""
    import av

    out = out_dir / f"{source.stem}-x{times}.mp4"
    if out.exists():
        return out
    tmp = out.with_name(out.stem + ".part.mp4")
    with av.open(str(source)) as src:
        first = src.streams.video[0]
        rate, width, height = first.average_rate or 25, first.width, first.height
    with av.open(str(tmp), "w") as dst:
        enc = dst.add_stream("libx264", rate=rate)
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.options = {"crf": "18", "preset": "veryfast"}
        for _ in range(times):
            with av.open(str(source)) as src:
                for n, decoded in enumerate(src.decode(video=0)):
                    if cut is not None and n >= cut:
                        break
                    frame = av.VideoFrame.from_ndarray(
                        decoded.to_ndarray(format="yuv420p"), format="yuv420p"
                    )
                    for packet in enc.encode(frame):
                        dst.mux(packet)
        for packet in enc.encode():
            dst.mux(packet)
    tmp.rename(out)
    return out


# -- measured subprocesses ---------------------------------------------------------------


def _tree_rss(root: Any) -> int:
    import psutil

    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def measure(
    label: str,
    length: int,
    argv: list[str],
    *,
    kill_when: Any = None,
    log: Path | None = None,
) -> Run:
    """Run `argv`, sampling its process tree's RSS; `kill_when()` returning a dict SIGKILLs
    the tree (the dict is kept as `killed_at`). The JSON summary comes from stdout."""
    import psutil

    run = Run(label, length)
    err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    env, cwd = os.environ.copy(), None
    if CODE is not None:  # the snapshot, not the shared (changing) working tree
        env["PYTHONPATH"], cwd = str(CODE), str(CODE)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=err, start_new_session=True, env=env, cwd=cwd
    )
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    root = psutil.Process(proc.pid)
    peak = 0
    rusage = None
    last_check = 0.0
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            run.returncode = os.waitstatus_to_exitcode(status)
            proc.returncode = run.returncode
            break
        peak = max(peak, _tree_rss(root))
        now = time.perf_counter()
        if kill_when is not None and run.killed_at is None and now - last_check >= 0.25:
            last_check = now
            state = kill_when()
            if state is not None:
                run.killed_at = {**state, "after_s": round(now - t0, 1)}
                os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.1)
    run.wall_s = time.perf_counter() - t0
    reader.join(timeout=30)
    if log:
        err.close()  # type: ignore[union-attr]
    run.peak_tree_mb = peak / 2**20
    run.peak_single_mb = (rusage.ru_maxrss / 1024) if rusage else 0.0
    out = b"".join(chunks).decode(errors="replace")
    if "RESULT " in out:
        out = out.split("RESULT ", 1)[1]
    start = out.find("{")
    if start >= 0:
        with contextlib.suppress(json.JSONDecodeError):
            run.result = json.loads(out[start:])
    return run


def cli_run(
    video: Path, video_id: str, length: int, workers: int, log: Path, chunk_s: float | None
) -> Run:
    exe = Path(sys.executable).with_name("capstone")
    argv = [str(exe), "analyze", str(video), "--video-id", video_id, "--json"]
    if chunk_s:
        argv += ["--chunk-s", str(chunk_s)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    label = f"{length}x" + (f", --workers {workers}" if workers > 1 else "")
    run = measure(label, length, argv, log=log)
    _check(run, log)
    return run


def driver_argv(video: Path, video_id: str, chunk_s: float | None) -> list[str]:
    """The same parameters as `cli_run` (the CLI's defaults), with a 5 s lease."""
    params = json.dumps({"chunk_s": chunk_s} if chunk_s else {})
    return [sys.executable, "-c", DRIVER, str(video), video_id, str(LEASE_S), params]


def _check(run: Run, log: Path) -> None:
    if run.returncode != 0 or run.result.get("status") != "completed":
        raise SystemExit(
            f"{run.label}: exit {run.returncode}, status {run.result.get('status')!r}, "
            f"error {run.result.get('error')!r} (stderr in {log})"
        )


# -- database reads ----------------------------------------------------------------------


def _engine() -> Any:
    from capstone.store.engine import get_engine

    return get_engine()


def analysis_state(video_id: str) -> dict[str, Any] | None:
    from sqlalchemy import text

    with _engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT a.id, a.frames_processed, a.chunks_done, a.chunks_total, "
                "(SELECT coalesce(sum(frames_expected), 0) FROM apps_db_analysischunk c "
                " WHERE c.analysis_id = a.id) AS expected "
                "FROM apps_db_videoanalysis a WHERE a.video_id = :v ORDER BY a.id DESC LIMIT 1"
            ),
            {"v": video_id},
        ).first()
    return dict(row._mapping) if row else None


def published(analysis_id: int) -> dict[str, Any]:
    """What an analysis published: tracks per class, events per type, rows, and a digest of
    every event (frame, type, class, track id, box rounded to 0.1 px) in a fixed order."""
    from sqlalchemy import text

    with _engine().connect() as conn:
        tracks = dict(
            conn.execute(
                text(
                    "SELECT class_name, count(*) FROM apps_db_track WHERE analysis_id = :a "
                    "GROUP BY class_name ORDER BY class_name"
                ),
                {"a": analysis_id},
            ).all()
        )
        events = dict(
            conn.execute(
                text(
                    "SELECT event_type, count(*) FROM apps_db_event WHERE analysis_id = :a "
                    "GROUP BY event_type ORDER BY event_type"
                ),
                {"a": analysis_id},
            ).all()
        )
        digest = hashlib.sha256()
        result = conn.execution_options(stream_results=True).execute(
            text(
                "SELECT frame_number, event_type, coalesce(class_name, ''), "
                "coalesce(track_id, -1), bbox FROM apps_db_event WHERE analysis_id = :a "
                "ORDER BY frame_number, event_type, track_id NULLS FIRST, class_name, bbox"
            ),
            {"a": analysis_id},
        )
        for frame, kind, cls, track, bbox in result:
            box = ",".join(f"{float(v):.1f}" for v in bbox) if bbox is not None else ""
            digest.update(f"{frame}|{kind}|{cls}|{track}|{box}\n".encode())
    return {
        "tracks": sum(tracks.values()),
        "tracks_per_class": tracks,
        "events_per_type": events,
        "detections": events.get("detection", 0),
        "event_digest": digest.hexdigest()[:16],
    }


# -- the bench ---------------------------------------------------------------------------


def kill_resume(
    video: Path, length: int, kill_at: float, log: Path, chunk_s: float | None
) -> tuple[Run, Run]:
    video_id = f"lv-x{length}-resume"

    def when() -> dict[str, Any] | None:
        state = analysis_state(video_id)
        if not state or not state["expected"]:
            return None
        if state["frames_processed"] >= kill_at * state["expected"]:
            return {k: state[k] for k in ("frames_processed", "chunks_done", "chunks_total")} | {
                "frames_expected": int(state["expected"])
            }
        return None

    killed = measure(
        f"{length}x killed", length, driver_argv(video, video_id, chunk_s), kill_when=when, log=log
    )
    if killed.killed_at is None:
        raise SystemExit(f"the run to be killed finished first (exit {killed.returncode})")
    time.sleep(LEASE_S + 1)
    retry = measure(f"{length}x retry", length, driver_argv(video, video_id, chunk_s), log=log)
    _check(retry, log)
    return killed, retry


def publish_fit(single: list[Run]) -> tuple[float, float]:
    """(fixed seconds, seconds per row) of stitch + publish, least squares over the lengths
    (one length: all of it per row)."""
    xs = [float(r.rows) for r in single]
    ys = [r.publish_phase_s for r in single]
    if len(single) < 2 or max(xs) == min(xs):
        return 0.0, ys[-1] / max(1.0, xs[-1])
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    slope = max(slope, 0.0)
    return max(0.0, my - slope * mx), slope


def projection(single: list[Run], frames_per_chunk: int) -> dict[str, Any]:
    """Wall time of a 1 h, 25 fps video on N Batch workers, from the measured runs."""
    longest = max(single, key=lambda r: r.length)
    per_frame_s = longest.loop_s / max(1, longest.frames)
    chunk_s = per_frame_s * frames_per_chunk
    chunks = math.ceil(HOUR_FRAMES / frames_per_chunk)
    warm_frames = int(2.0 * HOUR_FPS)  # a chunk whose predecessor ran elsewhere warms up 2 s
    rows_per_frame = longest.rows / max(1, longest.frames)
    fixed, per_row = publish_fit(single)
    startup = sum(r.startup_s for r in single) / len(single)
    rows = rows_per_frame * HOUR_FRAMES
    publish = fixed + per_row * rows
    out = []
    for workers in BATCH_WORKERS:
        per_worker = math.ceil(chunks / workers)
        work = startup + per_worker * chunk_s + (warm_frames * per_frame_s if workers > 1 else 0)
        stitch = (startup if workers > 1 else 0.0) + publish  # the stitch job starts cold
        out.append([workers, per_worker, work / 60, stitch / 60, (work + stitch) / 60])
    return {
        "rows": out,
        "chunk_s": chunk_s,
        "chunks": chunks,
        "startup_s": startup,
        "publish_fixed_s": fixed,
        "publish_per_row_ms": per_row * 1e3,
        "rows_per_hour": rows,
        "publish_s": publish,
        "from": longest.label,
    }


def report(
    source: Path,
    single: list[Run],
    workers: tuple[Run, Run] | None,
    resume: tuple[Run, Run, Run] | None,
    proj: dict[str, Any] | None,
    chunk_s: float,
) -> str:
    base = min(single, key=lambda r: r.length)
    lines = [
        f"bench.long_video: {source.name} looped, all default stages, {chunk_s:g} s chunks, "
        f"code {CODE_REV}; "
        f"{machine_note()}",
        "",
        "Length series (one `capstone analyze --json` process per length, single pass):",
        "",
    ]
    rows = []
    for r in single:
        rows.append(
            [
                f"{r.length}x",
                r.frames,
                r.result.get("chunks_total"),
                r.wall_s,
                r.frames / r.wall_s if r.wall_s else 0.0,
                r.peak_tree_mb,
                r.peak_tree_mb / base.peak_tree_mb if base.peak_tree_mb else 0.0,
                r.peak_single_mb,
                r.publish_phase_s,
                r.timings.get("publish", 0.0),
                r.rows,
            ]
        )
    lines.append(
        table(
            rows,
            [
                "length",
                "frames",
                "chunks",
                "wall s",
                "frames/s",
                "peak RSS MB (tree)",
                "RSS / 1x (<=1.15)",
                "largest process MB",
                "stitch+publish s",
                "publish txn s",
                "rows",
            ],
        )
    )
    worst = max(r.peak_tree_mb / base.peak_tree_mb for r in single) if base.peak_tree_mb else 0
    lines += [
        "",
        f"RSS goal (every length within 1.15x of 1x): {'met' if worst <= 1.15 else 'NOT met'} "
        f"(worst {worst:.2f}x)",
    ]
    if workers:
        one, two = workers
        ratio = (two.frames / two.wall_s) / (one.frames / one.wall_s)
        lines += [
            "",
            f"Single pass vs `--workers 2` ({one.length}x, {one.frames} frames, "
            f"{one.result.get('chunks_total')} chunks):",
            "",
            table(
                [
                    ["single pass", one.wall_s, one.frames / one.wall_s, one.peak_tree_mb],
                    ["--workers 2", two.wall_s, two.frames / two.wall_s, two.peak_tree_mb],
                ],
                ["way", "wall s", "frames/s", "peak RSS MB (tree)"],
            ),
            "",
            f"--workers 2 / single pass, frames/s: {ratio:.2f}x (on {os.cpu_count()} CPUs "
            "shared with other work; each worker loads its own models)",
        ]
    if resume:
        full, killed, retry = resume
        k = killed.killed_at or {}
        ratio = retry.wall_s / full.wall_s
        same = resume_equal(full, retry)
        lines += [
            "",
            f"Kill/resume ({full.length}x): SIGKILL when frames_processed reached "
            f"{k.get('frames_processed')} of {k.get('frames_expected')} "
            f"({100 * k.get('frames_processed', 0) / max(1, k.get('frames_expected', 1)):.0f} %), "
            f"{k.get('chunks_done')} of {k.get('chunks_total')} chunks done, after "
            f"{k.get('after_s')} s; retry after {LEASE_S + 1} s:",
            "",
            table(
                [
                    ["uninterrupted run", full.wall_s, full.result.get("chunks_total")],
                    ["killed run (until the kill)", killed.wall_s, k.get("chunks_done")],
                    [
                        "retry (resumes)",
                        retry.wall_s,
                        (k.get("chunks_total") or 0) - (k.get("chunks_done") or 0),
                    ],
                ],
                ["run", "wall s", "chunks done by it"],
            ),
            "",
            f"retry / uninterrupted: {ratio:.2f} "
            f"(goal <= 0.30: {'met' if ratio <= 0.30 else 'NOT met'})",
            f"published result equals the uninterrupted run's: {'yes' if same['equal'] else 'NO'}",
            "",
            table(
                [
                    [key, json.dumps(same["full"][key]), json.dumps(same["retry"][key])]
                    for key in (
                        "tracks",
                        "tracks_per_class",
                        "events_per_type",
                        "detections",
                        "event_digest",
                    )
                ],
                ["published", "uninterrupted", "killed + resumed"],
            ),
        ]
    if proj:
        lines += [
            "",
            "Projection (NOT measured) for a 1-hour video at 25 fps (90,000 frames, "
            f"{proj['chunks']} chunks of 60 s) on N AWS Batch workers:",
            "",
            table(
                proj["rows"],
                ["workers", "chunks per worker", "chunk jobs min", "stitch job min", "total min"],
            ),
            "",
            f"Assumptions: every worker is like this machine ({os.cpu_count()} CPUs as loaded "
            f"now); a 60 s chunk costs {proj['chunk_s']:.0f} s (the loop time per frame of the "
            f"{proj['from']} run); every job starts cold in {proj['startup_s']:.0f} s "
            "(process start, imports, model loading, as measured); a chunk whose predecessor ran "
            "on another worker re-decodes 2 s of warm-up; the stitch job publishes "
            f"{proj['rows_per_hour']:,.0f} rows (rows per frame of the {proj['from']} run) in "
            f"{proj['publish_fixed_s']:.1f} s + {proj['publish_per_row_ms']:.3f} ms per row "
            "(stitch + publish seconds against rows, a least-squares line over the lengths) = "
            f"{proj['publish_s']:.0f} s; no Batch queueing, container pull or S3 download time; "
            "the database keeps up with all workers' staging writes.",
        ]
    return "\n".join(lines)


def resume_equal(full: Run, retry: Run) -> dict[str, Any]:
    a = published(int(full.result["analysis_id"]))
    b = published(int(retry.result["analysis_id"]))
    return {"equal": a == b, "full": a, "retry": b}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="highway-cctv.avi", help="video to loop")
    parser.add_argument("--lengths", default="1,5,20", help="loop counts, e.g. 1,5,20")
    parser.add_argument("--workers-length", type=int, default=5, help="0: skip")
    parser.add_argument("--resume-length", type=int, default=None, help="0: skip; default longest")
    parser.add_argument("--kill-at", type=float, default=0.8, help="fraction of frames")
    parser.add_argument(
        "--source-frames", type=int, default=None, help="loop only the first N frames (quick runs)"
    )
    parser.add_argument("--chunk-s", type=float, default=None, help="chunk length (default 60)")
    parser.add_argument("--no-projection", action="store_true")
    parser.add_argument("--write-docs", action="store_true", help=f"also write {DOCS}")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--code",
        default="HEAD",
        help="git revision the measured processes run (a snapshot); 'worktree': this checkout",
    )
    args = parser.parse_args(argv)

    lengths = sorted({int(x) for x in args.lengths.split(",") if x.strip()})
    resume_length = lengths[-1] if args.resume_length is None else args.resume_length
    for wanted in (args.workers_length, resume_length):
        if wanted and wanted not in lengths:
            raise SystemExit(f"length {wanted} is not in --lengths {args.lengths}")
    source = Path(args.source) if Path(args.source).exists() else VIDEOS / args.source
    if not source.exists():
        raise SystemExit(f"no such video: {args.source}")

    setup_environment()
    url = fresh_database("long")
    work = Path(tempfile.mkdtemp(prefix="capstone-long-"))
    log = work / "stderr.log"
    global CODE, CODE_REV
    if args.code != "worktree":
        CODE = snapshot(work, args.code)
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", args.code],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        CODE_REV = f"{args.code} ({rev})" if rev != args.code else rev
        print(f"bench.long_video: measured processes run {CODE_REV} from {CODE}")
    name = url.partition("?")[0].rsplit("/", 1)[1]
    print(f"bench.long_video: videos, logs in {work}; database {name}", flush=True)
    try:
        videos = {n: looped_video(source, n, work, args.source_frames) for n in lengths}
        single: list[Run] = []
        for n in lengths:
            run = cli_run(videos[n], f"lv-x{n}", n, 1, log, args.chunk_s)
            single.append(run)
            print(f"  {run.label}: {run.frames} frames, {run.wall_s:.0f} s, "
                  f"peak {run.peak_tree_mb:.0f} MB, stitch+publish {run.publish_phase_s:.1f} s, "
                  f"{run.rows} rows, chunks {run.result.get('chunks_total')}",
                  flush=True)  # fmt: skip
        resume = None
        if resume_length:
            full = next(r for r in single if r.length == resume_length)
            killed, retry = kill_resume(
                videos[resume_length], resume_length, args.kill_at, log, args.chunk_s
            )
            print(f"  kill/resume: killed at {killed.killed_at}, retry {retry.wall_s:.0f} s "
                  f"({retry.wall_s / full.wall_s:.2f} of {full.wall_s:.0f} s), equal: "
                  f"{resume_equal(full, retry)['equal']}", flush=True)  # fmt: skip
            resume = (full, killed, retry)
        workers = None
        if args.workers_length:
            one = next(r for r in single if r.length == args.workers_length)
            two = cli_run(
                videos[one.length], f"lv-x{one.length}-w2", one.length, 2, log, args.chunk_s
            )
            print(f"  {two.label}: {two.wall_s:.0f} s", flush=True)
            workers = (one, two)
        frames_per_chunk = round(60.0 * HOUR_FPS)
        proj = None if args.no_projection else projection(single, frames_per_chunk)
        text = report(source, single, workers, resume, proj, args.chunk_s or 60.0)
        print("\n" + text)
        if args.write_docs:
            DOCS.write_text(
                "# Long videos: measured with `bench/long_video.py`\n\n"
                f"`.venv/bin/python -m bench.long_video {' '.join(argv or sys.argv[1:])}`\n\n"
                "```\n" + text.split("\n", 1)[0] + "\n```\n" + text.split("\n", 1)[1] + "\n"
            )
            print(f"\nwritten to {DOCS}")
        if args.json:
            dump = {
                "single": [r.__dict__ for r in single],
                "workers": [r.__dict__ for r in workers] if workers else None,
                "resume": [r.__dict__ for r in resume] if resume else None,
                "resume_equal": resume_equal(resume[0], resume[2]) if resume else None,
                "projection": proj,
            }
            args.json.write_text(json.dumps(dump, indent=2, default=str))
    finally:
        if not args.keep_db:
            drop_database(url)
        for path in work.glob("*.mp4"):
            path.unlink()


if __name__ == "__main__":
    main()
