"""Launch to first processed frame (issue 26): how long `capstone analyze` takes, from the
interpreter starting, until the first frame has been detected and tracked, step by step.

    .venv/bin/python -m bench.first_frame            # bikes.mp4, warm caches, best of 3

Each run is a fresh interpreter (`python -c`, so the interpreter's own start is counted)
that analyzes one frame of the video with every default stage and prints, against the
process start time: imports done, the first progress report (the first frame detected,
tracked and through every stage), and the analysis returned (published). Run it once
before to warm the caches (OpenVINO's compiled model, the page cache).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import SHARED, machine_note

CHILD = r"""
import json, os, sys, time
import psutil
started = psutil.Process().create_time()
from capstone.runtime.pipeline import analyze
from capstone.stages.params import AnalysisParams
imported = time.time()
first = []
def progress(done, total):
    if done >= 1 and not first:
        first.append(time.time())
result = analyze(sys.argv[1], video_id="bench-first-frame", params=AnalysisParams(max_frames=1),
                 progress=progress, reuse=False)
finished = time.time()
print(json.dumps({"imports": imported - started, "first_frame": (first or [finished])[0] - started,
                  "returned": finished - started, "status": result.status,
                  "timings": result.timings}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED / "data" / "videos" / "bikes.mp4")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.setdefault("CAPSTONE_MODELS_DIR", str(SHARED / "models"))
    runs = []
    for _ in range(args.repeat + 1):  # the first one warms the caches
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.video)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        time.sleep(0.5)
    best = min(runs[1:], key=lambda r: r["first_frame"])
    print(f"launch to first processed frame, best of {args.repeat} (warm caches):")
    print(f"  imports done        {best['imports']:6.2f} s")
    print(f"  first frame done    {best['first_frame']:6.2f} s")
    print(f"  analysis returned   {best['returned']:6.2f} s  ({best['status']})")
    steps = {k: v for k, v in best["timings"].items() if v >= 0.01 and "." not in k}
    print("  inside analyze():   " + ", ".join(f"{k} {v:.2f} s" for k, v in steps.items()))
    print(machine_note())


if __name__ == "__main__":
    main()
