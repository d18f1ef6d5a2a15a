"""CPU-seconds of the commands people wait on (issue 26), for one or two checkouts.

    .venv/bin/python -m bench.cli_speed                          # this checkout
    .venv/bin/python -m bench.cli_speed --before /path/to/old    # and an older checkout, same run

Each command runs in a fresh interpreter (`python -c "from capstone.cli import main ..."` with
the checkout first on `PYTHONPATH`), `--repeat` times; the best CPU time (user + system,
from `resource.getrusage(RUSAGE_CHILDREN)`) is printed, and the ratio before/after when both
sides ran. Both sides use the same `CAPSTONE_HOME` (database, model caches) so only the code
differs; the first run of the hybrid search may convert MiniLM once (not counted: warm-up).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = "import sys; from capstone.cli import main; sys.argv = ['capstone', *sys.argv[1:]]; main()"
COMMANDS = {
    "--help": ["--help"],
    "videos": ["videos"],
    "events": ["events", "{video}", "--limit", "20"],
    "search (text)": ["search", "a cyclist on the street", "--mode", "text"],
    "search (hybrid)": ["search", "a cyclist on the street"],
}


def cpu_seconds(checkout: Path, argv: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-c", RUN, *argv],
        cwd=checkout,
        env={**env, "PYTHONPATH": str(checkout)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def first_video(env: dict[str, str]) -> str:
    import json

    out = subprocess.run(
        [sys.executable, "-c", RUN, "videos", "--json"],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
    )  # fmt: skip
    try:
        return json.loads(out.stdout)["items"][0]["video_id"]
    except (ValueError, KeyError, IndexError):
        return "no-such-video"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="an older checkout to measure alike")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("CAPSTONE_HOME", str(ROOT / ".capstone"))
    env.setdefault("CAPSTONE_MODELS_DIR", str(ROOT.parent / "shared" / "models"))
    video = first_video(env)
    sides = {"after": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    for side in sides.values():  # warm-up: page cache, the MiniLM IR cache
        cpu_seconds(side, COMMANDS["search (hybrid)"], env)
    print(f"CPU-seconds, best of {args.repeat}; os.cpu_count()={os.cpu_count()}")
    print(f"{'command':<18}" + "".join(f"{name:>10}" for name in sides) + "   before/after")
    for name, argv in COMMANDS.items():
        argv = [a.format(video=video) for a in argv]
        best = {
            side: min(cpu_seconds(path, argv, env) for _ in range(args.repeat))
            for side, path in sides.items()
        }
        ratio = f"{best['before'] / best['after']:>8.1f}x" if "before" in best else ""
        print(f"{name:<18}" + "".join(f"{v:>10.2f}" for v in best.values()) + f"   {ratio}")


if __name__ == "__main__":
    main()
