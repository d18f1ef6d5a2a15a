"""One object, one track: duplicate vehicle tracks before/after cross-class suppression.

    .venv/bin/python -m bench.vehicle_duplicates                 # highway-cctv.avi
    .venv/bin/python -m bench.vehicle_duplicates --video other.mp4 --json out.json

The detector's NMS is per class, so one van can be a `car` box and a `truck` box at once,
and each starts a track: two tracks alive at the same time over the same vehicle. This
runs the default detector (every class, default confidence) over the video once (cached
under `.capstone/eval-cache`), then tracks it with each tracker four ways (`MODES`):
stock (every box starts a track, the class of the latest box), stock settings with
class-agnostic suppression among vehicle classes
(`capstone.tracking.tracker.suppress_cross_class`) and the class vote, our settings
without them, and ours (the defaults of `Tracker`). Printed per row:

- `tracks`: vehicle tracks of at least `--min-len` boxes;
- `duplicate pairs`: pairs of such tracks alive together for at least `--min-len` frames
  whose boxes overlap by IoU >= 0.5 in at least half of those frames (same place, same time);
- `multi-class`: tracks whose boxes carry more than one class;
- the IoU of cross-class vehicle box pairs in one frame (why `VEHICLE_IOU` is 0.7).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.identity_repair import CACHE, DATA

VIDEO = DATA / "videos" / "highway-cctv.avi"
VEHICLE_IDS = {2: "car", 5: "bus", 7: "truck"}
# `Tracker` settings per mode: Ultralytics' as shipped; stock settings with suppression and
# the class vote; our settings (`TUNED`: new tracks only from confident boxes) without
# them; ours, all of it (what `capstone analyze` runs)
MODES: dict[str, dict[str, Any]] = {
    "stock": {"stock": True},
    "stock+suppress+vote": {"new_track_thresh": 0.25},
    "ours-no-suppress": {"vehicle_iou": None, "class_vote": False},
    "ours": {},
}


def detections_of(video: Path, rebuild: bool = False) -> tuple[list[Any], float, dict[int, str]]:
    """Per-frame detector output (every class), cached: ([(xyxy, conf, cls)], fps, names)."""
    from capstone.core.video import iter_frames, probe
    from capstone.models.detector import get_detector
    from capstone.stages.params import AnalysisParams

    path = CACHE / f"{video.stem}.dets.v1.pkl"
    if path.is_file() and not rebuild:
        return pickle.loads(path.read_bytes())
    started = time.perf_counter()
    defaults = AnalysisParams()
    detector = get_detector(defaults.model).using(conf=defaults.conf, imgsz=defaults.imgsz)
    frames = []
    for _, dets in detector.stream(iter_frames(video)):
        frames.append((dets.xyxy.copy(), dets.confidence.copy(), dets.class_id.copy()))
    out = (frames, probe(video).fps, dict(detector.class_names))
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    print(f"# detected {video.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


def cross_class_ious(frames: Sequence[Any]) -> np.ndarray:
    """Best IoU of each vehicle box with a vehicle box of another class in its frame."""
    from capstone.core.geometry import box_iou

    out = []
    for xyxy, _, cls in frames:
        vehicle = np.isin(cls, list(VEHICLE_IDS))
        if vehicle.sum() < 2:
            continue
        boxes, kinds = xyxy[vehicle], cls[vehicle]
        iou = box_iou(boxes, boxes)
        iou[kinds[:, None] == kinds[None, :]] = 0.0
        out.extend(iou.max(axis=1)[iou.max(axis=1) > 0].tolist())
    return np.asarray(out)


def track_video(
    frames: Sequence[Any], fps: float, names: dict[int, str], kind: str, mode: str
) -> list[tuple[int, int, np.ndarray, int]]:
    """(frame, track id, xyxy, class id) rows; `mode` one of `MODES`."""
    from capstone.core.detections import Detections
    from capstone.tracking.tracker import Tracker

    tracker = Tracker(kind, frame_rate=fps, gmc_method="none", **MODES[mode])
    rows = []
    for i, (xyxy, conf, cls) in enumerate(frames):
        out = tracker.update(Detections(xyxy, conf, cls, None, names))
        for box, tid, c in zip(out.xyxy, out.tracker_id, out.class_id, strict=True):  # type: ignore[arg-type]
            rows.append((i, int(tid), box.astype(np.float64), int(c)))
    return rows


def count_duplicates(
    rows: Sequence[tuple[int, int, np.ndarray, int]], min_len: int = 5, iou: float = 0.5
) -> dict[str, int]:
    """Vehicle tracks, same-place duplicate pairs and multi-class tracks (see the module)."""
    from capstone.core.geometry import box_iou

    boxes: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    classes: dict[int, set[int]] = defaultdict(set)
    for frame, tid, box, cls in rows:
        if cls in VEHICLE_IDS:
            boxes[tid][frame] = box
            classes[tid].add(cls)
    tracks = [t for t, b in boxes.items() if len(b) >= min_len]
    pairs = 0
    duplicated: set[int] = set()
    for k, a in enumerate(tracks):
        for b in tracks[k + 1 :]:
            common = sorted(boxes[a].keys() & boxes[b].keys())
            if len(common) < min_len:
                continue
            ba = np.array([boxes[a][f] for f in common])
            bb = np.array([boxes[b][f] for f in common])
            same = np.diag(box_iou(ba, bb)) >= iou
            if same.mean() >= 0.5:
                pairs += 1
                duplicated.add(b if len(boxes[b]) <= len(boxes[a]) else a)
    return {
        "tracks": len(tracks),
        "duplicate_pairs": pairs,
        "duplicate_tracks": len(duplicated),
        "multi_class": sum(len(classes[t]) > 1 for t in tracks),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--min-len", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    frames, fps, names = detections_of(args.video, args.rebuild)
    ious = cross_class_ious(frames)
    print(f"## {args.video.name}: {len(frames)} frames at {fps:g} fps\n")
    if len(ious):
        bins = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01]
        hist, _ = np.histogram(ious, bins)
        cells = " | ".join(f"{n}" for n in hist)
        print("best cross-class IoU of a vehicle box (car/bus/truck), count per bin:\n")
        heads = [f"{a:.1f}-{min(b, 1.0):.1f}" for a, b in itertools.pairwise(bins)]
        print("| " + " | ".join(heads) + " |")
        print("|" + "---|" * (len(bins) - 1))
        print(f"| {cells} |\n")
    print("| tracker | mode | vehicle tracks | duplicate pairs | duplicate tracks | multi-class |")
    print("|---|---|---|---|---|---|")
    report = []
    for kind in ("bytetrack", "botsort"):
        for mode in MODES:
            counts = count_duplicates(track_video(frames, fps, names, kind, mode), args.min_len)
            report.append({"tracker": kind, "mode": mode, **counts})
            print(
                f"| {kind} | {mode} | {counts['tracks']} | {counts['duplicate_pairs']} | "
                f"{counts['duplicate_tracks']} | {counts['multi_class']} |"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
