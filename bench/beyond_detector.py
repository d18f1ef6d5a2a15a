"""Faster than the detector (issue 18): `detect_every` N in {1, 2, 3, 4, auto}, speed against
accuracy, and the cold start of `capstone analyze`.

For each video (default PETS09-S2L1, TUD-Campus, highway-cctv) and each mode, in one run
and one fresh bench database, `capstone.runtime.pipeline.analyze(video, params=AnalysisParams(
detect_every=N, stages=("detect", "track", "identity", "events")))`:

- loop frames/s (`AnalysisResult.fps`: decode, detect, propagate, track and the stages'
  per-frame work) and its ratio to N=1 of the same repeat; CPU seconds per frame (the
  process's user+system time over the call: what a shared machine's load changes least);
- MOTA / IDF1 / HOTA of the stored person tracks (repaired identities) on the MOT
  sequences (`capstone.eval.mot.mot_rows_from_database` + `evaluate_many`);
- on highway-cctv, `line_cross` events on a line across both carriageways
  (y = 120 of 240, `--line-y`) against N=1.

Every (video, mode) runs `--repeats` times (default 2), the mode order reversed on odd
repeats; ratios are per repeat (N and N=1 of the same repeat) and the table shows their
median. Before timing, every video runs once for `--warm-frames` frames (models loaded and
compiled, caches warm; not timed). Then, on `--all-stages-video` (default highway-cctv,
first `--all-stages-frames` frames), all default stages for N=1 against N=3.

Cold start: a fresh `python -c` driver process per try records `time.monotonic()` as its
first statement, imports `capstone.runtime.pipeline` and calls `analyze(..., max_frames=1)`; the
progress callback stamps the first frame processed. Reported: process launch (measured by
this process around `Popen`) -> first frame, and inside the driver imports / analyze call
-> first frame. The first try fills the caches; "warm" is the median of the others.

Every measured process imports a `git archive` snapshot of the checkout (default HEAD,
`--rev`), so edits made in the shared working tree while it runs change nothing.

    .venv/bin/python -m bench.beyond_detector                       # about 21 min on 2 shared CPUs
    .venv/bin/python -m bench.beyond_detector --videos TUD-Campus --modes 1,3 --repeats 1
    .venv/bin/python -m bench.beyond_detector --write-docs          # also docs/beyond_detector.*
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import (
    ROOT,
    SHARED,
    VIDEOS,
    drop_database,
    fresh_database,
    machine_note,
    setup_environment,
    table,
)

DOCS = ROOT / "docs" / "beyond_detector.md"
PLOT = ROOT / "docs" / "beyond_detector.png"
MOT = SHARED / "data" / "mot"
# name -> (video, MOT sequence folder or None)
SOURCES: dict[str, tuple[Path, Path | None]] = {
    "PETS09-S2L1": (VIDEOS / "pets09-s2l1.avi", MOT / "PETS09-S2L1"),
    "TUD-Campus": (MOT / "TUD-Campus" / "TUD-Campus.mp4", MOT / "TUD-Campus"),
    "highway-cctv": (VIDEOS / "highway-cctv.avi", None),
}
LINES_VIDEO = "highway-cctv"
STAGES = ("detect", "track", "identity", "events")
GOAL_AUTO_RATIO = 2.0
GOAL_N3_RATIO = 2.5
GOAL_MOTA_LOSS = 0.01  # 1 point
GOAL_LINES = 0.02
GOAL_COLD_S = 3.0


def snapshot(into: Path, rev: str = "HEAD") -> Path:
    """`git archive REV` of this checkout, for every measured process to import."""
    out = into / "code"
    out.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    # this bench itself as it is here (it may be newer than REV)
    (out / "bench" / Path(__file__).name).write_bytes(Path(__file__).read_bytes())
    return out


def _mode(text: str) -> int | str:
    return "auto" if text == "auto" else int(text)


# -- the measuring process (runs from the snapshot) -------------------------------------


def _line_counts(video_id: str, analysis_id: int) -> dict[str, int]:
    """`line_cross` events of one analysis per direction (and `total`)."""
    from sqlmodel import select

    from capstone.store.engine import session_scope
    from capstone.store.tables import Event

    with session_scope() as session:
        attrs = session.exec(
            select(Event.attributes)
            .where(Event.video_id == video_id)
            .where(Event.analysis_id == analysis_id)
            .where(Event.event_type == "line_cross")
        ).all()
    counts: dict[str, int] = {"total": len(attrs)}
    for a in attrs:
        key = str((a or {}).get("direction"))
        counts[key] = counts.get(key, 0) + 1
    return counts


def _one(
    name: str, mode: int | str, repeat: int, stages: tuple[str, ...], cfg: dict[str, Any]
) -> dict[str, Any]:
    from capstone.eval import mot as evaluate
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    video, seq = SOURCES[name]
    options = {}
    if name == LINES_VIDEO:
        y = cfg["line_y"]
        options = {"lines": [{"name": "A", "points": [[0, y], [320, y]]}]}
    params = AnalysisParams(
        detect_every=mode,
        stages=stages,
        options=options,
        max_frames=cfg.get("max_frames"),
    )
    video_id = f"{name.lower()}-{cfg['tag']}-r{repeat}"
    cpu0 = os.times()
    result = analyze(video, video_id=video_id, params=params)
    cpu1 = os.times()
    if result.status != "completed":
        raise RuntimeError(f"{name} N={mode}: {result.status} {result.error}")
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    out: dict[str, Any] = {
        "video": name,
        "mode": mode,
        "repeat": repeat,
        "stages": list(stages),
        "frames": result.frames_processed,
        "fps": result.fps,
        "wall_s": result.wall_time,
        "cpu_s": cpu,
        "timings": result.timings,
        "events": result.events_per_type,
        "load": os.getloadavg()[0],
    }
    if seq is not None and cfg.get("score") and repeat == 0:
        rows = evaluate.mot_rows_from_database(video_id, result.analysis_id, identities=True)
        metrics = evaluate.evaluate_many(seq, {"run": rows})["run"]
        out["mot"] = {k: metrics[k] for k in ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN")}
    if name == LINES_VIDEO and "events" in stages:
        out["lines"] = _line_counts(video_id, result.analysis_id)
    print(
        f"  {name} N={mode} r{repeat}: {result.frames_processed} frames, {result.fps:.1f} fps,"
        f" cpu {cpu:.1f} s" + (f", MOTA {out['mot']['MOTA']:.3f}" if "mot" in out else ""),
        file=sys.stderr,
        flush=True,
    )
    return out


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Every timed analysis of one bench run, in this process (models loaded once)."""
    from capstone.stages.params import ALL_STAGES

    modes = [_mode(m) for m in cfg["modes"]]
    runs: list[dict[str, Any]] = []
    warm = {**cfg, "tag": "warm", "max_frames": cfg["warm_frames"], "score": False}
    t0 = time.perf_counter()
    for name in cfg["videos"]:
        _one(name, 1, 0, STAGES, warm)
    _one(cfg["all_stages_video"], 1, 0, ALL_STAGES, warm)  # the enrichment models too
    warm_s = time.perf_counter() - t0
    main_cfg = {**cfg, "tag": "m", "score": True}
    for repeat in range(cfg["repeats"]):
        order = modes if repeat % 2 == 0 else modes[::-1]
        for name in cfg["videos"]:
            for mode in order:
                runs.append(_one(name, mode, repeat, STAGES, main_cfg))
    all_cfg = {**cfg, "tag": "all", "max_frames": cfg["all_stages_frames"], "score": False}
    all_runs = []
    for repeat in range(cfg["repeats"]):
        for mode in (1, 3) if repeat % 2 == 0 else (3, 1):
            all_runs.append(_one(cfg["all_stages_video"], mode, repeat, ALL_STAGES, all_cfg))
    return {"runs": runs, "all_stages": all_runs, "warm_s": warm_s}


COLD_DRIVER = """\
import time
t0 = time.monotonic()
import json, sys
from capstone.stages.params import AnalysisParams
from capstone.runtime.pipeline import analyze
t_import = time.monotonic()
first = []
def progress(done, total):
    if not first:
        first.append(time.monotonic())
params = AnalysisParams(max_frames=1, stages=tuple(sys.argv[3].split(",")))
t_call = time.monotonic()
r = analyze(sys.argv[1], video_id=sys.argv[2], params=params, progress=progress)
t_end = time.monotonic()
print("RESULT " + json.dumps({"t0": t0, "import_s": t_import - t0,
    "call_to_first_s": first[0] - t_call, "start_to_first_s": first[0] - t0,
    "end_s": t_end - t0, "status": r.status, "timings": r.timings}))
"""


def cold_start(code: Path, video: Path, stages: str, tries: int, tag: str) -> list[dict[str, Any]]:
    """`tries` fresh driver processes; launch -> first frame as seen from here, too."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = []
    for i in range(tries):
        t_launch = time.monotonic()  # CLOCK_MONOTONIC: the same clock in the child
        proc = subprocess.run(
            [sys.executable, "-c", COLD_DRIVER, str(video), f"cold-{tag}-{i}", stages],
            capture_output=True,
            text=True,
            env=env,
            cwd=code,
            timeout=600,
        )
        if "RESULT " not in proc.stdout:
            raise RuntimeError(f"cold start driver failed:\n{proc.stderr[-3000:]}")
        r = json.loads(proc.stdout.split("RESULT ", 1)[1])
        r["interpreter_s"] = r["t0"] - t_launch
        r["launch_to_first_s"] = r["start_to_first_s"] + r["interpreter_s"]
        r["try"] = i
        out.append(r)
        print(
            f"  cold {stages} #{i}: launch -> first frame {r['launch_to_first_s']:.2f} s"
            f" (imports {r['import_s']:.2f} s, analyze -> first frame"
            f" {r['call_to_first_s']:.2f} s)",
            file=sys.stderr,
            flush=True,
        )
    return out


IMPORT_SHOWN_US = 200_000
# One fresh process, step by step: what the first frame waits for (wall s, CPU s).
CHAIN = """\
import json, os, sys, time
def now():
    c = os.times()
    return time.monotonic(), c.user + c.system
steps, last = [], now()
def step(name):
    global last
    t = now()
    steps.append((name, t[0] - last[0], t[1] - last[1]))
    last = now()
import capstone.runtime.pipeline
step("import capstone.runtime.pipeline")
import openvino as ov
step("import openvino")
import torch
step("import torch (the detector's NMS)")
import torchvision
step("import torchvision (NMS tie-breaking as predict())")
from ultralytics.utils import nms, ops
step("import ultralytics.utils.nms, ops")
from capstone.models.weights import resolve_model
xml = next(resolve_model("yolo11n").glob("*.xml"))
core = ov.Core()
step("resolve model, ov.Core()")
for label, cfg in (("no cache", {}), ("CACHE_DIR, first", {"CACHE_DIR": sys.argv[1]}),
                   ("CACHE_DIR, cached", {"CACHE_DIR": sys.argv[1]})):
    model = core.read_model(str(xml))
    core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", **cfg})
    step(f"OpenVINO read + compile ({label})")
print("RESULT " + json.dumps(steps))
"""


def profile_cold(code: Path, video: Path, stages: str, into: Path) -> dict[str, Any]:
    """One warm driver under `-X importtime` and cProfile: the slowest imports (cumulative,
    top-level packages) and the slowest calls of analyze() up to the first frame."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    prof = into / "cold.prof"
    # importtime: a separate process that only imports (the profile above adds overhead)
    imp = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import capstone.runtime.pipeline"],
        capture_output=True,
        text=True,
        env=env,
        cwd=code,
        timeout=300,
    )
    imports = []  # the import tree's heavy nodes, in order, indented as importtime does
    for line in imp.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if cumulative.strip().isdigit() and int(cumulative) >= IMPORT_SHOWN_US:
            imports.append((name.rstrip(), int(cumulative) / 1e6))
    chain = subprocess.run(
        [sys.executable, "-c", CHAIN, str(into / "ov-cache")],
        capture_output=True,
        text=True,
        env=env,
        cwd=code,
        timeout=300,
        check=True,
    )
    steps = json.loads(chain.stdout.split("RESULT ", 1)[1])
    # cProfile of the analyze() call, in its own driver
    prof_driver = COLD_DRIVER.replace(
        "r = analyze(sys.argv[1], video_id=sys.argv[2], params=params, progress=progress)",
        "import cProfile, pstats\npr = cProfile.Profile()\npr.enable()\n"
        "r = analyze(sys.argv[1], video_id=sys.argv[2], params=params, progress=progress)\n"
        "pr.disable()\npr.dump_stats(" + repr(str(prof)) + ")",
    )
    subprocess.run(
        [sys.executable, "-c", prof_driver, str(video), "cold-prof", stages],
        capture_output=True,
        text=True,
        env=env,
        cwd=code,
        timeout=600,
        check=True,
    )
    import pstats

    stats = pstats.Stats(str(prof))
    calls = []
    for (file, line, func), (_, _, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "capstone" in file or "openvino" in file or "ultralytics" in file:
            short = file.split("site-packages/")[-1].split("/code/")[-1]
            calls.append((f"{short}:{line} {func}", cum))
    calls.sort(key=lambda c: -c[1])
    return {"imports": imports, "calls": calls[:15], "steps": steps}


# -- report ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(data: dict[str, Any], modes: list[str]) -> list[dict[str, Any]]:
    """One row per (video, mode): median fps, median per-repeat ratio to N=1, accuracy."""
    runs = data["runs"]
    rows = []
    for name in dict.fromkeys(r["video"] for r in runs):
        mine = [r for r in runs if r["video"] == name]
        base = {r["repeat"]: r for r in mine if r["mode"] == 1}
        base_mot = next((r.get("mot") for r in mine if r["mode"] == 1 and "mot" in r), None)
        base_lines = next((r.get("lines") for r in mine if r["mode"] == 1 and "lines" in r), None)
        for mode in [_mode(m) for m in modes]:
            these = [r for r in mine if r["mode"] == mode]
            ratios = [r["fps"] / base[r["repeat"]]["fps"] for r in these if r["repeat"] in base]
            cpu_ratios = [
                (base[r["repeat"]]["cpu_s"] / base[r["repeat"]]["frames"])
                / (r["cpu_s"] / r["frames"])
                for r in these
                if r["repeat"] in base
            ]
            mot = next((r["mot"] for r in these if "mot" in r), None)
            lines = next((r["lines"] for r in these if "lines" in r), None)
            det = [r["timings"].get("detect", 0.0) for r in these]
            row: dict[str, Any] = {
                "video": name,
                "mode": str(mode),
                "frames": these[0]["frames"],
                "fps": _median([r["fps"] for r in these]),
                "fps_runs": [round(r["fps"], 2) for r in these],
                "ratio": _median(ratios),
                "ratio_runs": [round(x, 2) for x in ratios],
                "cpu_ms": _median([1000 * r["cpu_s"] / r["frames"] for r in these]),
                "cpu_ratio": _median(cpu_ratios),
                "detect_s": _median(det),
                "propagate_s": _median([r["timings"].get("propagate", 0.0) for r in these]),
                "mot": mot,
                "mota_delta": (mot["MOTA"] - base_mot["MOTA"]) if mot and base_mot else None,
                "lines": lines,
                "lines_delta": (
                    (lines["total"] - base_lines["total"]) / base_lines["total"]
                    if lines and base_lines and base_lines["total"]
                    else None
                ),
            }
            rows.append(row)
    return rows


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:+.1f} %"


def main_table(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        mot = r["mot"] or {}
        lines = r["lines"] or {}
        body.append(
            [
                r["video"],
                r["mode"],
                r["frames"],
                f"{r['fps']:.1f}",
                f"{r['ratio']:.2f}x (" + ", ".join(f"{x:.2f}" for x in r["ratio_runs"]) + ")",
                f"{r['cpu_ms']:.0f} ({r['cpu_ratio']:.2f}x)",
                f"{mot['MOTA']:.3f}" if mot else "",
                f"{mot['IDF1']:.3f}" if mot else "",
                f"{mot['HOTA']:.3f}" if mot else "",
                "" if r["mota_delta"] is None else f"{100 * r['mota_delta']:+.1f}",
                (f"{lines['total']} ({_pct(r['lines_delta'])})" if lines else ""),
            ]
        )
    from tabulate import tabulate

    return tabulate(  # as `bench.table`, but the cells exactly as formatted here
        body,
        tablefmt="github",
        disable_numparse=True,
        headers=[
            "video",
            "N",
            "frames",
            "loop fps",
            "vs N=1 (per repeat)",
            "CPU ms/frame (vs N=1)",
            "MOTA",
            "IDF1",
            "HOTA",
            "ΔMOTA pt",
            "line A crossings (vs N=1)",
        ],
    )


def all_stages_table(data: dict[str, Any]) -> str:
    runs = data["all_stages"]
    body = []
    base = {r["repeat"]: r for r in runs if r["mode"] == 1}
    for mode in (1, 3):
        these = [r for r in runs if r["mode"] == mode]
        ratios = [r["fps"] / base[r["repeat"]]["fps"] for r in these if r["repeat"] in base]
        stage_t = {
            k: _median([r["timings"].get(k, 0.0) for r in these])
            for k in sorted({k for r in these for k in r["timings"]})
            if k not in ("setup",)
        }
        slow = ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(stage_t.items(), key=lambda x: -x[1])[:6]
        )
        body.append(
            [
                these[0]["video"],
                mode,
                these[0]["frames"],
                f"{_median([r['fps'] for r in these]):.1f}",
                f"{_median(ratios):.2f}x",
                slow,
            ]
        )
    return table(body, ["video", "N", "frames", "loop fps", "vs N=1", "largest timings (s)"])


def cold_table(cold: dict[str, list[dict[str, Any]]]) -> str:
    body = []
    for stages, tries in cold.items():
        warm = tries[1:] or tries
        body.append(
            [
                stages,
                f"{tries[0]['launch_to_first_s']:.2f}",
                f"{_median([t['launch_to_first_s'] for t in warm]):.2f}",
                f"{_median([t['interpreter_s'] for t in warm]):.2f}",
                f"{_median([t['import_s'] for t in warm]):.2f}",
                f"{_median([t['call_to_first_s'] for t in warm]):.2f}",
            ]
        )
    return table(
        body,
        [
            "stages",
            "first try (s)",
            "warm: launch -> first frame (s)",
            "interpreter start (s)",
            "import capstone.runtime.pipeline (s)",
            "analyze() -> first frame (s)",
        ],
    )


def goals(rows: list[dict[str, Any]], cold: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = []
    for r in rows:
        if r["mode"] == "auto":
            ok = r["ratio"] >= GOAL_AUTO_RATIO
            out.append(
                f"- {r['video']} auto frames/s {r['ratio']:.2f}x N=1 (goal >= {GOAL_AUTO_RATIO}x):"
                f" {'met' if ok else 'NOT met'}"
            )
            if r["mota_delta"] is not None:
                ok = r["mota_delta"] >= -GOAL_MOTA_LOSS
                out.append(
                    f"- {r['video']} auto MOTA {100 * r['mota_delta']:+.1f} pt"
                    f" (goal loss <= 1 pt): {'met' if ok else 'NOT met'}"
                )
            if r["lines_delta"] is not None:
                ok = abs(r["lines_delta"]) <= GOAL_LINES
                out.append(
                    f"- {r['video']} auto line crossings {_pct(r['lines_delta'])}"
                    f" (goal within 2 %): {'met' if ok else 'NOT met'}"
                )
        if r["mode"] == "3":
            ok = r["ratio"] >= GOAL_N3_RATIO
            out.append(
                f"- {r['video']} N=3 frames/s {r['ratio']:.2f}x N=1 (goal >= {GOAL_N3_RATIO}x):"
                f" {'met' if ok else 'NOT met'}"
            )
    for stages, tries in cold.items():
        warm = _median([t["launch_to_first_s"] for t in (tries[1:] or tries)])
        out.append(
            f"- cold start ({stages}), warm cache: {warm:.2f} s launch -> first frame"
            f" (goal < {GOAL_COLD_S} s): {'met' if warm < GOAL_COLD_S else 'NOT met'}"
        )
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    """Left: frames/s ratio against N per video. Right: ratio against MOTA (MOT sequences)
    and against line crossings relative to N=1 (highway-cctv)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    videos = list(dict.fromkeys(r["video"] for r in rows))
    for name in videos:
        mine = [r for r in rows if r["video"] == name]
        xs = list(range(len(mine)))
        (line,) = left.plot(xs, [r["ratio"] for r in mine], marker="o", label=name)
        left.set_xticks(xs, [r["mode"] for r in mine])
        if mine[0]["mot"]:
            pts = [(100 * r["mot"]["MOTA"], r["ratio"], r["mode"]) for r in mine]
            right.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{name} (MOTA)")
        elif mine[0]["lines"]:
            base = mine[0]["lines"]["total"] or 1
            pts = [(100 * r["lines"]["total"] / base, r["ratio"], r["mode"]) for r in mine]
            right.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker="s",
                linestyle="--",
                color=line.get_color(),
                label=f"{name} (line crossings, % of N=1)",
            )
        else:
            continue
        for x, y, mode in pts:
            right.annotate(
                f"N={mode}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8
            )
    for ax in (left, right):
        ax.axhline(GOAL_AUTO_RATIO, color="grey", linewidth=0.8, linestyle=":")
        ax.grid(alpha=0.3)
    left.axhline(GOAL_N3_RATIO, color="grey", linewidth=0.8, linestyle="-.")
    left.set_xlabel("detect_every")
    left.set_ylabel("loop frames/s vs N=1")
    left.set_title("speed")
    left.legend(fontsize=8)
    right.set_xlabel("MOTA (%) / line crossings (% of N=1)")
    right.set_ylabel("loop frames/s vs N=1")
    right.set_title("speed against accuracy")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def profile_text(prof: dict[str, Any]) -> str:
    imports = "\n".join(f"    {s:6.2f} s {m}" for m, s in prof["imports"])
    steps = "\n".join(f"    {w:6.2f} s wall {c:6.2f} s CPU  {n}" for n, w, c in prof["steps"])
    calls = "\n".join(f"    {s:6.2f} s  {name}" for name, s in prof["calls"])
    return (
        "a fresh process, step by step (what the first frame waits for):\n"
        f"{steps}\n"
        "`import capstone.runtime.pipeline` under `-X importtime`: modules >= "
        f"{IMPORT_SHOWN_US / 1e6}"
        " s cumulative, as a tree:\n"
        f"{imports}\n"
        "slowest calls inside analyze() of a warm 1-frame run (cProfile, cumulative):\n"
        f"{calls}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", default=",".join(SOURCES), help="of " + ", ".join(SOURCES))
    parser.add_argument("--modes", default="1,2,3,4,auto")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-frames", type=int, default=None, help="per timed analysis")
    parser.add_argument("--warm-frames", type=int, default=30)
    parser.add_argument("--line-y", type=int, default=120, help="highway-cctv line (of 240)")
    parser.add_argument("--all-stages-video", default="highway-cctv")
    parser.add_argument("--all-stages-frames", type=int, default=300)
    parser.add_argument("--cold-tries", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true", help="cold start only")
    parser.add_argument("--rev", default="HEAD", help="git revision the processes run")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the snapshot's worker
    args = parser.parse_args(argv)

    if args.measure:  # inside the snapshot: measure, write JSON
        cfg = json.loads(Path(args.measure).read_text())
        Path(cfg["out"]).write_text(json.dumps(measure(cfg)))
        return

    setup_environment()
    os.environ["CAPSTONE_SHARED"] = str(SHARED)  # the data, for the snapshot's processes
    modes = args.modes.split(",")
    if modes[0] != "1":
        parser.error("--modes must start with 1 (the baseline)")
    videos = args.videos.split(",")
    unknown = [v for v in [*videos, args.all_stages_video] if v not in SOURCES]
    if unknown:
        parser.error(f"unknown video(s) {unknown}; known: {', '.join(SOURCES)}")
    print(f"machine: {platform.processor() or platform.machine()}; {machine_note()}")
    url = fresh_database("beyond")
    started = time.perf_counter()
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="beyond-") as tmp:
            code = snapshot(Path(tmp), args.rev)
            rev = subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", args.rev],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            print(f"code: git archive {args.rev} ({rev}) -> {code}", flush=True)
            data: dict[str, Any] = {"runs": [], "all_stages": [], "warm_s": 0.0}
            if not args.skip_speed:
                cfg = {
                    "videos": videos,
                    "modes": modes,
                    "repeats": args.repeats,
                    "max_frames": args.max_frames,
                    "warm_frames": args.warm_frames,
                    "line_y": args.line_y,
                    "all_stages_video": args.all_stages_video,
                    "all_stages_frames": args.all_stages_frames,
                    "out": str(Path(tmp) / "result.json"),
                }
                Path(tmp, "cfg.json").write_text(json.dumps(cfg))
                subprocess.run(
                    [sys.executable, "-m", "bench.beyond_detector", "--measure", f"{tmp}/cfg.json"],
                    env={**os.environ, "PYTHONPATH": str(code)},
                    cwd=code,
                    check=True,
                )
                data = json.loads(Path(cfg["out"]).read_text())
            video = SOURCES["highway-cctv"][0]
            cold = {
                stages: cold_start(code, video, stages, args.cold_tries, str(i))
                for i, stages in enumerate(("detect,track", ",".join(_all_stages(code))))
            }
            prof = profile_cold(code, video, "detect,track", Path(tmp))
    finally:
        drop_database(url)
    load_after = os.getloadavg()
    conditions = (
        f"{os.cpu_count()} CPU(s) ({platform.processor() or platform.machine()}), shared;"
        f" load average {load_before[0]:.1f} before, {load_after[0]:.1f} after;"
        f" code {rev}; {time.perf_counter() - started:.0f} s in all"
    )

    parts = [f"Conditions: {conditions}.", ""]
    rows: list[dict[str, Any]] = []
    if data["runs"]:
        rows = summarize(data, modes)
        parts += [
            f"Stages {', '.join(STAGES)}; {args.repeats} repeat(s), mode order reversed on odd"
            " repeats; ratios per repeat (median shown, each repeat in brackets); MOTA/IDF1/HOTA"
            " of repaired person identities (first repeat); line A on highway-cctv:"
            f" y = {args.line_y} across both carriageways. CPU ms/frame: the process's"
            " user+system time over the whole analyze() call (setup and publish included)"
            " per frame.",
            "",
            main_table(rows),
            "",
            f"All default stages on {args.all_stages_video} (first {args.all_stages_frames}"
            " frames):",
            "",
            all_stages_table(data),
            "",
        ]
    parts += [
        "Cold start (highway-cctv, `max_frames=1`; launch -> first frame processed):",
        "",
        cold_table(cold),
        "",
        "```",
        profile_text(prof),
        "```",
        "",
        "Goals:",
        "",
        *goals(rows, cold),
    ]
    text = "\n".join(parts)
    print(text)
    if args.write_docs:
        plotted = rows and plot(rows, PLOT)
        DOCS.write_text(
            "# Faster than the detector: measured with `bench/beyond_detector.py`\n\n"
            f"`.venv/bin/python -m bench.beyond_detector {' '.join(argv or sys.argv[1:])}`\n\n"
            + (f"![frames/s ratio against accuracy]({PLOT.name})\n\n" if plotted else "")
            + text
            + "\n\n<details><summary>raw runs</summary>\n\n```json\n"
            + json.dumps({**data, "cold": cold}, indent=1, default=str)
            + "\n```\n\n</details>\n"
        )
        print(f"wrote {DOCS}" + (f" and {PLOT}" if plotted else ""))


def _all_stages(code: Path) -> tuple[str, ...]:
    """The snapshot's default stages (`AnalysisParams().stages`)."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from capstone.stages.params import AnalysisParams;"
            " print(','.join(AnalysisParams().stages))",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(code)},
        cwd=code,
        check=True,
    )
    return tuple(out.stdout.strip().split(","))


if __name__ == "__main__":
    main()
