"""End-to-end analysis throughput: `capstone analyze` against the naive reference loop.

For each video, in one process run (same model, same frames, same stride):

- naive: the original system's loop, `YOLO(path, task="detect").track(source, stream=True,
  tracker="bytetrack.yaml")`, with every box inserted through the ORM and committed row by
  row, into a fresh database;
- ours: `capstone.runtime.pipeline.analyze(video, params=AnalysisParams(stride=...))` into another
  fresh database (probe + sha256, decode thread, async detector, tracker, stages, COPY store);
- detector only, on the same frames already decoded in memory: Ultralytics `predict()` per
  frame, and our OpenVINO async detector (`Detector.stream`).

Both detector models, and the embedding models the stages use, are loaded and compiled
before anything is timed (the load time is printed). Targets: naive / ours >= 1.5;
ours / detector-only <= 1.15 (denominator: the faster detector-only figure) for the core
stages; with enrichment stages on, naive / ours >= 1.5 (the ratio to the detector alone is
still printed).

    .venv/bin/python -m bench.pipeline
    .venv/bin/python -m bench.pipeline --videos highway-cctv.avi --max-frames 200
    .venv/bin/python -m bench.pipeline --stages all     # adds per-stage cost
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import (
    VIDEOS,
    drop_database,
    fresh_database,
    machine_note,
    setup_environment,
    table,
)

DEFAULT_VIDEOS = ("pets09-s2l1.avi", "highway-cctv.avi")


@dataclass
class VideoRun:
    video: str
    frames: int = 0
    naive_s: float = float("inf")
    ours_s: float = float("inf")
    detector_ultralytics_s: float = float("inf")
    detector_async_s: float = float("inf")
    ours_cpu_s: float = float("inf")
    detector_async_cpu_s: float = float("inf")
    naive_rows: int = 0
    ours_rows: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def detector_best_s(self) -> float:
        return min(self.detector_ultralytics_s, self.detector_async_s)

    def ratios(self) -> dict[str, float]:
        return {
            "naive_over_ours": self.naive_s / self.ours_s,
            "ours_over_detector_best": self.ours_s / self.detector_best_s,
            "ours_over_detector_async": self.ours_s / self.detector_async_s,
            "ours_over_detector_ultralytics": self.ours_s / self.detector_ultralytics_s,
            "ours_over_detector_async_cpu": self.ours_cpu_s / self.detector_async_cpu_s,
        }


def _video_path(name: str) -> Path:
    path = Path(name)
    if path.exists():
        return path
    if (VIDEOS / name).exists():
        return VIDEOS / name
    raise SystemExit(f"no such video: {name} (looked in . and {VIDEOS})")


def _ultralytics_model(model_path: Path) -> Any:
    import numpy as np
    from ultralytics import YOLO

    model = YOLO(str(model_path), task="detect")
    model.predict(np.zeros((480, 640, 3), dtype=np.uint8), verbose=False)  # compile
    return model


def run_naive(
    model_path: Path, video: Path, stride: int, max_frames: int | None, fps: float
) -> tuple[float, int, int]:
    """The reference loop. Returns (seconds, frames, rows inserted)."""
    from sqlmodel import Session

    from capstone.stages.params import AnalysisParams
    from capstone.store import analyses
    from capstone.store.engine import get_engine
    from capstone.store.tables import Event

    url = fresh_database("naive")
    try:
        video_id = "bench-naive"
        analysis_id = analyses.claim_analysis(
            video_id, AnalysisParams(), analyses.worker_id()
        ).analysis_id
        model = _ultralytics_model(model_path)
        frames = rows = 0
        t = time.perf_counter()
        with Session(get_engine()) as session:
            results = model.track(
                source=str(video),
                stream=True,
                tracker="bytetrack.yaml",
                vid_stride=stride,
                verbose=False,
            )
            for result in results:
                frame_number = frames * stride
                boxes = result.boxes
                ids = boxes.id.int().tolist() if boxes.id is not None else [None] * len(boxes)
                for xyxy, conf, cls, track_id in zip(
                    boxes.xyxy.tolist(),
                    boxes.conf.tolist(),
                    boxes.cls.int().tolist(),
                    ids,
                    strict=True,
                ):
                    session.add(
                        Event(
                            video_id=video_id,
                            analysis_id=analysis_id,
                            frame_number=frame_number,
                            timestamp=frame_number / fps,
                            event_type="detection",
                            class_name=result.names[cls],
                            confidence=conf,
                            bbox=[round(v, 2) for v in xyxy],
                            track_id=track_id,
                        )
                    )
                    session.commit()
                    rows += 1
                frames += 1
                if max_frames and frames >= max_frames:
                    break
        seconds = time.perf_counter() - t
    finally:
        drop_database(url)
    return seconds, frames, rows


def run_ours(
    detector: Any, video: Path, stride: int, max_frames: int | None, stages: tuple[str, ...]
) -> tuple[float, Any]:
    """`capstone.runtime.pipeline.analyze` end to end. Returns (seconds, AnalysisResult)."""
    from capstone.runtime.pipeline import analyze
    from capstone.stages.params import AnalysisParams

    url = fresh_database("ours")
    try:
        params = AnalysisParams(stride=stride, max_frames=max_frames, stages=stages)
        t, c = time.perf_counter(), time.process_time()
        result = analyze(video, params=params, detector=detector)
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
    finally:
        drop_database(url)
    if result.status != "completed":
        raise SystemExit(f"analysis of {video} failed: {result.error}")
    return seconds, cpu, result


def preload_stage_models(stages: tuple[str, ...]) -> float:
    """Load the enrichment models the stages use, as the detectors are loaded, before
    anything is timed (a service process keeps them loaded). Returns the seconds it took."""
    from capstone.models import embedders

    t = time.perf_counter()
    if "embed" in stages:
        embedders.image_embedder()
        embedders.text_embedder()
    if "embed" in stages or "identity" in stages:
        embedders.reid_embedder() or embedders.image_embedder()
    return time.perf_counter() - t


def decode_all(video: Path, stride: int, max_frames: int | None) -> list[Any]:
    from capstone.core.video import iter_frames

    return [f.image for f in iter_frames(video, stride=stride, max_frames=max_frames)]


def time_ultralytics_predict(model: Any, images: list[Any]) -> float:
    t = time.perf_counter()
    for image in images:
        model.predict(image, verbose=False)
    return time.perf_counter() - t


def time_async_detector(detector: Any, images: list[Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for our detector on in-memory frames."""
    t, c = time.perf_counter(), time.process_time()
    for _ in detector.stream(images):
        pass
    return time.perf_counter() - t, time.process_time() - c


def _stage_names(spec: str) -> tuple[str, ...]:
    from capstone.stages.params import ALL_STAGES, CORE_STAGES

    if spec == "core":
        return CORE_STAGES
    if spec == "all":
        return ALL_STAGES
    return tuple(s.strip() for s in spec.split(",") if s.strip())


def bench_video(
    name: str,
    *,
    stride: int,
    max_frames: int | None,
    stages: tuple[str, ...],
    repeat: int,
    detector: Any,
    predict_model: Any,
) -> VideoRun:
    from capstone.core.video import probe

    video = _video_path(name)
    info = probe(video)
    out = VideoRun(video.name)
    images = decode_all(video, stride, max_frames)
    out.frames = len(images)
    # Best of `repeat` for every side (the CPUs are shared). The two sides of the tight
    # ratio (ours vs our detector alone) run back to back, so they see the same load.
    for _ in range(repeat):
        seconds, cpu = time_async_detector(detector, images)
        out.detector_async_s = min(out.detector_async_s, seconds)
        out.detector_async_cpu_s = min(out.detector_async_cpu_s, cpu)
        seconds, cpu, result = run_ours(detector, video, stride, max_frames, stages)
        out.ours_cpu_s = min(out.ours_cpu_s, cpu)
        if seconds < out.ours_s:
            out.ours_s, out.timings = seconds, dict(result.timings)
        out.ours_rows = result.counts.get("apps_db_event", 0)
        out.detector_ultralytics_s = min(
            out.detector_ultralytics_s, time_ultralytics_predict(predict_model, images)
        )
        seconds, frames, rows = run_naive(
            Path(detector.model_path), video, stride, max_frames, info.fps
        )
        if frames != out.frames:
            print(f"note: naive loop saw {frames} frames, decode gave {out.frames}")
        out.naive_s, out.naive_rows = min(out.naive_s, seconds), rows
    del images
    gc.collect()
    return out


def report(runs: list[VideoRun], stages: tuple[str, ...], stride: int) -> None:
    print(f"\nbench.pipeline: stride {stride}, stages {','.join(stages)}; {machine_note()}")
    rows = []
    for r in runs:
        for way, seconds in (
            ("naive: YOLO.track + per-row ORM commit", r.naive_s),
            ("ours: capstone analyze", r.ours_s),
            ("detector only: Ultralytics predict()", r.detector_ultralytics_s),
            ("detector only: our OpenVINO async", r.detector_async_s),
        ):
            rows.append([r.video, way, r.frames, seconds, r.frames / seconds])
    print(table(rows, ["video", "way", "frames", "seconds", "frames/s"]))
    print()
    ratio_rows = []
    for r in runs:
        q = r.ratios()
        ratio_rows.append(
            [
                r.video,
                q["naive_over_ours"],
                q["ours_over_detector_best"],
                q["ours_over_detector_async"],
                q["ours_over_detector_ultralytics"],
                q["ours_over_detector_async_cpu"],
                r.naive_rows,
                r.ours_rows,
            ]
        )
    print(
        table(
            ratio_rows,
            [
                "video",
                "naive/ours (>=1.5)",
                "ours/detector best (<=1.15)",
                "ours/async det",
                "ours/predict()",
                "ours/async det, CPU s",
                "naive rows",
                "our rows",
            ],
        )
    )
    print(
        "CPU s: this process's CPU time (decoder thread, OpenVINO threads, Python); other\n"
        "users of the machine disturb it far less than wall time. The database server's CPU\n"
        "is not in it."
    )
    from capstone.stages.params import CORE_STAGES

    core_only = set(stages) <= set(CORE_STAGES)
    for r in runs:
        q = r.ratios()
        fast = q["naive_over_ours"] >= 1.5
        if core_only:  # decode, track and store must hide behind the detector
            ok = fast and q["ours_over_detector_best"] <= 1.15
            print(f"{r.video}: targets (naive/ours >= 1.5, ours/detector <= 1.15) "
                  f"{'met' if ok else 'NOT met'}")  # fmt: skip
        else:  # the enrichment stages add model work the detector bound does not cover
            print(f"{r.video}: throughput target with these stages (naive/ours >= 1.5) "
                  f"{'met' if fast else 'NOT met'}")  # fmt: skip
    print("\nour per-stage seconds (AnalysisResult.timings; detect includes waiting on decode):")
    keys = sorted({k for r in runs for k in r.timings})
    print(
        table([[r.video, *(r.timings.get(k, 0.0) for k in keys)] for r in runs], ["video", *keys])
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", nargs="+", default=list(DEFAULT_VIDEOS))
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--max-frames", type=int, default=None, help="quick runs")
    parser.add_argument(
        "--stages", default="core", help="core (detect,track), all, or a comma list"
    )
    parser.add_argument("--model", default="yolo11n")
    parser.add_argument("--repeat", type=int, default=1, help="best of N for every side")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    setup_environment()
    from capstone.models.detector import Detector

    stages = _stage_names(args.stages)
    detector = Detector(args.model)
    if detector.backend != "openvino":
        print(f"note: {detector.model_path} is not an OpenVINO export; using Ultralytics predict")
    import numpy as np

    detector([np.zeros((480, 640, 3), dtype=np.uint8)])  # compile before timing
    predict_model = _ultralytics_model(Path(detector.model_path))
    load_s = preload_stage_models(stages)
    if load_s:
        print(f"stage models loaded in {load_s:.1f} s before timing (once per process)")
    runs = [
        bench_video(
            name,
            stride=args.stride,
            max_frames=args.max_frames,
            stages=stages,
            repeat=max(1, args.repeat),
            detector=detector,
            predict_model=predict_model,
        )
        for name in args.videos
    ]
    report(runs, stages, args.stride)
    if args.json:
        args.json.write_text(
            json.dumps([{**r.__dict__, **r.ratios()} for r in runs], indent=2, default=float)
        )


if __name__ == "__main__":
    main()
