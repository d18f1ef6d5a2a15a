"""Identity repair, validated honestly: before/after on real sequences and harder variants.

    .venv/bin/python -m bench.identity_repair            # build the cache once, print the table
    .venv/bin/python -m bench.identity_repair --loo      # + leave-one-out threshold choice
    .venv/bin/python -m bench.identity_repair --json out.json
    .venv/bin/python -m bench.identity_repair --loo-tracker  # + tracker settings, leave-one-out
    .venv/bin/python -m bench.identity_repair --velocity-noise  # + Kalman velocity noise, LOO

Every run also scores each tracker with our settings (`Tracker`'s defaults, what
`capstone analyze` runs) + repair against the best stock tracker of each row (issue 28).

Material (`MATERIAL`): PETS09-S2L1 (video `../shared/data/videos/pets09-s2l1.avi`) and
TUD-Campus (its own video), each as recorded (`base`), with ~20 % of the frames dropped
(`drop`, renumbered: the video simply lacks them), at a lower frame rate (`lowfps`: every
2nd / 3rd frame), and PETS09 seen through a panning and zooming crop window (`pan`,
`pan-lowfps`: a moving camera; ground truth and public detections transformed alike).

Two detection sources: `public` (the sequence's `det/det.txt`, tracker only, no images:
no appearance, no camera-motion compensation) and `ours` (YOLO11n int8 on the frames, with
OSNet re-id features of every box and BoT-SORT's GMC warps). The detector, the re-id model
and GMC run once per sequence; their outputs are cached under `.capstone/eval-cache`
(`CAPSTONE_EVAL_CACHE`), so tuning re-runs only tracking + repair + scoring.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CAPSTONE_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("CAPSTONE_EVAL_CACHE", ROOT / ".capstone" / "eval-cache"))
CACHE_VERSION = 3

SEQUENCES = {
    "PETS09-S2L1": (DATA / "mot" / "PETS09-S2L1", DATA / "videos" / "pets09-s2l1.avi"),
    "TUD-Campus": (DATA / "mot" / "TUD-Campus", DATA / "mot" / "TUD-Campus" / "TUD-Campus.mp4"),
}
LOW_STEP = {"PETS09-S2L1": 2, "TUD-Campus": 3}
DROP_FRACTION = 0.2


# ---------------------------------------------------------------------------- variants


@dataclass
class Variant:
    """A view of a sequence: which original frames it keeps, and through which camera."""

    name: str
    frames: list[int]  # original 1-based MOT frames kept, in order (renumbered 1..n)
    fps: float
    view: str = "plain"  # plain | pan | shake | small (see `view_window`)


def variants_of(seq: str, length: int, fps: float) -> list[Variant]:
    rng = np.random.default_rng(16)
    every = list(range(1, length + 1))
    keep = [f for f in every if f == 1 or rng.random() >= DROP_FRACTION]
    step = LOW_STEP[seq]
    low = every[::step]
    out = [
        Variant("base", every, fps),
        Variant("drop", keep, fps),
        Variant("lowfps", low, fps / step),
    ]
    if seq == "PETS09-S2L1":
        out += [
            Variant("pan", every, fps, "pan"),
            Variant("pan-lowfps", low, fps / step, "pan"),
            Variant("shake", every, fps, "shake"),
            Variant("shake-drop", keep, fps, "shake"),
            Variant("small", every, fps, "small"),
        ]
    return out


def view_window(
    view: str, frame: int, fps: float, width: int, height: int
) -> tuple[float, float, float, int, int] | None:
    """(x0, y0, scale, out width, out height) of the virtual camera at `frame`, or None for
    the plain view. `scale` = output px per input px.

    - `pan`: a window of 55-75 % of the view panning left-right (period 24 s), up-down
      (17 s) and zooming (31 s), scaled back to the full frame size: a slow moving camera;
    - `shake`: a window of 50-70 % moving faster and changing direction every two seconds
      or so (periods 3.7 / 4.3 / 6.1 s) and zooming (7 s): a hand-held or vehicle camera;
    - `small`: the whole view at half resolution (people half as tall).
    """
    t = (frame - 1) / fps
    if view == "plain":
        return None
    if view == "small":
        return 0.0, 0.0, 0.5, width // 2, height // 2
    if view == "pan":
        size = 0.65 + 0.10 * np.sin(2 * np.pi * t / 31.0)
        ux = 0.95 * np.sin(2 * np.pi * t / 24.0)
        uy = 0.9 * np.sin(2 * np.pi * t / 17.0 + 1.0)
    elif view == "shake":
        size = 0.6 + 0.1 * np.sin(2 * np.pi * t / 7.0)
        ux = 0.25 * np.sin(2 * np.pi * t / 3.7) + 0.25 * np.sin(2 * np.pi * t / 6.1 + 0.5)
        uy = 0.4 * np.sin(2 * np.pi * t / 4.3 + 1.0)
    else:
        raise ValueError(f"unknown view {view!r}")
    cw, ch = size * width, size * height
    cx = width / 2 + (width - cw) / 2 * ux
    cy = height / 2 + (height - ch) / 2 * uy
    return float(cx - cw / 2), float(cy - ch / 2), float(width / cw), width, height


def warp_image(image: np.ndarray, window: tuple[float, float, float, int, int]) -> np.ndarray:
    import cv2

    x0, y0, s, w, h = window
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_AREA)


def warp_boxes(
    xyxy: np.ndarray, window: tuple[float, float, float, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes through the camera window, clipped; returns (boxes, keep) where keep marks
    boxes at least half inside the window."""
    x0, y0, s, width, height = window
    out = (xyxy - np.array([x0, y0, x0, y0])) * s
    clipped = out.clip(0, [width, height, width, height])
    area = (out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1])
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (area > 0) & (inside >= 0.5 * np.maximum(area, 1e-9))
    return clipped, keep


# ---------------------------------------------------------------------------- cache


@dataclass
class Material:
    """One sequence variant, ready to track: per renumbered frame, the boxes of each source."""

    seq: str
    variant: str
    fps: float
    gt_dir: Path
    public: list[np.ndarray]  # per frame (n, 5): x1 y1 x2 y2 score
    ours: list[np.ndarray]
    features: list[np.ndarray]  # per frame (n, 512), aligned with `ours`
    warps: list[np.ndarray]  # per frame (2, 3) GMC warp from the previous kept frame
    size: tuple[int, int] = (0, 0)

    @property
    def name(self) -> str:
        return f"{self.seq}/{self.variant}"


def _gt_table(seq_dir: Path) -> np.ndarray:
    rows = [
        [float(v) for v in line.split(",")[:10]]
        for line in (seq_dir / "gt" / "gt.txt").read_text().splitlines()
        if line.strip()
    ]
    return np.asarray(rows)


def _public_table(seq_dir: Path) -> np.ndarray:
    rows = [
        [float(v) for v in line.split(",")[:7]]
        for line in (seq_dir / "det" / "det.txt").read_text().splitlines()
        if line.strip()
    ]
    return np.asarray(rows)


def _write_sequence(
    folder: Path, name: str, fps: float, length: int, gt: np.ndarray, size: tuple[int, int]
) -> None:
    (folder / "gt").mkdir(parents=True, exist_ok=True)
    lines = [
        f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},{int(r[6])},-1,-1,-1"
        for r in gt
    ]
    (folder / "gt" / "gt.txt").write_text("".join(line + "\n" for line in lines))
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate={fps:g}\nseqLength={length}\n"
        f"imWidth={size[0]}\nimHeight={size[1]}\nimExt=.jpg\n"
    )


def _transform_table(
    table: np.ndarray, variant: Variant, fps: float, size: tuple[int, int], cols: int
) -> np.ndarray:
    """MOT rows (frame, id, x, y, w, h, ...) of the kept frames, renumbered, through the
    variant's camera window."""
    renumber = {f: i + 1 for i, f in enumerate(variant.frames)}
    out = []
    for frame, new in renumber.items():
        rows = table[table[:, 0] == frame].copy()
        if len(rows) == 0:
            continue
        window = view_window(variant.view, frame, fps, *size)
        if window is not None:
            xyxy = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
            boxes, keep = warp_boxes(xyxy, window)
            rows[:, 2:4], rows[:, 4:6] = boxes[:, :2], boxes[:, 2:] - boxes[:, :2]
            rows = rows[keep]
        rows[:, 0] = new
        out.append(rows[:, :cols])
    return np.concatenate(out) if out else np.zeros((0, cols))


def _detect_pass(
    video: Path, views: Sequence[str], variants: list[Variant], fps: float
) -> dict[str, dict[str, Any]]:
    """One decode of `video`: detector + re-id on each camera view of each frame, and a
    GMC instance per variant fed exactly that variant's frames. Returns per view
    `{"dets", "feats", "warps", "size"}`."""
    from ultralytics.trackers.utils.gmc import GMC

    from capstone.core.video import iter_frames
    from capstone.models import embedders
    from capstone.models.detector import get_detector
    from capstone.stages.params import AnalysisParams
    from capstone.tracking.repair import _crop

    defaults = AnalysisParams()
    detector = get_detector(defaults.model).using(
        conf=defaults.conf, imgsz=defaults.imgsz, classes=[0]
    )
    reid = embedders.reid_embedder() or embedders.image_embedder()
    mine = [v for v in variants if v.view in views]
    out: dict[str, dict[str, Any]] = {
        view: {"dets": {}, "feats": {}, "warps": {v.name: [] for v in mine if v.view == view}}
        for view in views
    }
    gmcs = {v.name: GMC(method="sparseOptFlow") for v in mine}
    kept = {v.name: set(v.frames) for v in mine}
    for frame in iter_frames(video):
        number = frame.index + 1
        size = (frame.image.shape[1], frame.image.shape[0])
        for view in views:
            window = view_window(view, number, fps, *size)
            image = frame.image if window is None else warp_image(frame.image, window)
            found = detector([image])[0]
            boxes = np.concatenate([found.xyxy, found.confidence[:, None]], axis=1)
            crops = [_crop(image, b) for b in found.xyxy]
            good = [c for c in crops if c is not None]
            vectors = reid.embed(good) if good else np.zeros((0, 512), np.float32)
            table = np.full((len(crops), vectors.shape[1] if len(vectors) else 512), np.nan)
            table[[i for i, c in enumerate(crops) if c is not None]] = vectors
            out[view]["dets"][number] = boxes
            out[view]["feats"][number] = table.astype(np.float32)
            out[view]["size"] = size if window is None else window[3:]
            for v in mine:
                if v.view == view and number in kept[v.name]:
                    out[view]["warps"][v.name].append(gmcs[v.name].apply(image))
    return out


def _no_detections(view: str, variants: Sequence[Variant], info: Any) -> dict[str, Any]:
    size = (info.width, info.height)
    window = view_window(view, 1, info.frame_rate, *size)
    frames = range(1, info.length + 1)
    return {
        "dets": {f: np.zeros((0, 5)) for f in frames},
        "feats": {f: np.zeros((0, 512), np.float32) for f in frames},
        "warps": {v.name: [] for v in variants if v.view == view},
        "size": size if window is None else window[3:],
    }


def load_material(
    seq: str, rebuild: bool = False, *, detector: bool = True, seq_dir: Path | None = None
) -> list[Material]:
    """The variants of `seq`, from the cache (built on first use: one detector pass for
    the views not cached yet). `detector=False`: public detections only (`ours` empty),
    nothing to build: cheap enough for tests."""
    from capstone.io.mot import load_sequence

    seq_dir = seq_dir or SEQUENCES[seq][0]
    video = SEQUENCES[seq][1]
    info = load_sequence(seq_dir)
    variants = variants_of(seq, info.length, info.frame_rate)
    views = sorted({v.view for v in variants})
    paths = {view: CACHE / f"{seq}.{view}.v{CACHE_VERSION}.pkl" for view in views}
    todo = [view for view in views if detector and (rebuild or not paths[view].is_file())]
    if todo:
        started = time.perf_counter()
        built = _detect_pass(video, todo, variants, info.frame_rate)
        CACHE.mkdir(parents=True, exist_ok=True)
        for view, raw in built.items():
            paths[view].write_bytes(pickle.dumps(raw))
        elapsed = time.perf_counter() - started
        print(f"# cached {seq} {todo}: one detector pass in {elapsed:.0f} s", file=sys.stderr)
    if detector:
        raws = {view: pickle.loads(paths[view].read_bytes()) for view in views}
    else:
        raws = {view: _no_detections(view, variants, info) for view in views}
    size = tuple(raws["plain"]["size"])
    gt, public = _gt_table(seq_dir), _public_table(seq_dir)
    out = []
    for v in variants:
        raw = raws[v.view]
        name = f"{seq}-{v.name}"
        gt_dir = CACHE / "seqs" / name
        table = _transform_table(gt, v, info.frame_rate, size, 7)
        _write_sequence(gt_dir, name, v.fps, len(v.frames), table, tuple(raw["size"]))
        pub = _transform_table(public, v, info.frame_rate, size, 7)
        per_frame_public = []
        for i in range(1, len(v.frames) + 1):
            rows = pub[pub[:, 0] == i]
            per_frame_public.append(
                np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6], rows[:, 6:7]], axis=1)
            )
        out.append(
            Material(
                seq,
                v.name,
                v.fps,
                gt_dir,
                per_frame_public,
                [raw["dets"][f] for f in v.frames],
                [raw["feats"][f] for f in v.frames],
                raw["warps"][v.name],
                tuple(raw["size"]),
            )
        )
    return out


# ---------------------------------------------------------------------------- track, repair


class _CachedGMC:
    """BoT-SORT's GMC replaced by precomputed warps (identity when there are none)."""

    method = "cached"

    def __init__(self, warps: Sequence[np.ndarray] | None) -> None:
        self.warps, self.i = warps, 0

    def apply(self, raw_frame: Any, detections: Any = None) -> np.ndarray:
        warp = np.eye(2, 3) if self.warps is None else self.warps[self.i]
        self.i += 1
        return warp

    def reset_params(self) -> None:
        self.i = 0


@dataclass
class Tracked:
    rows: list[Any]
    features: np.ndarray | None  # one per row (NaN where unknown), None without appearance
    extra: dict[str, Any] = field(default_factory=dict)


def track(
    material: Material, source: str, kind: str, overrides: dict[str, Any] | None = None
) -> Tracked:
    from capstone.core.detections import Detections
    from capstone.core.geometry import box_iou
    from capstone.io.mot import PERSON, MotRow
    from capstone.tracking.reassociation import ReassociationCheck
    from capstone.tracking.tracker import Tracker

    # no overrides: the stock tracker; else ours (`TUNED`) with these overrides, and the
    # re-association check (its settings under "reassociation"; None: off) on the cached
    # re-id features in place of crops
    settings = {"stock": True} if overrides is None else dict(overrides)
    cut = settings.pop("reassociation", {}) if overrides is not None else None
    tracker = Tracker(kind, frame_rate=material.fps, reassociation=False, **settings)
    check = (
        ReassociationCheck(np.asarray, forget_after=tracker.config.track_buffer + 1, **cut)
        if cut is not None and source == "ours"
        else None
    )
    if kind == "botsort":
        tracker._tracker.gmc = _CachedGMC(material.warps if source == "ours" else None)
    frames = material.ours if source == "ours" else material.public
    rows: list[MotRow] = []
    feats: list[np.ndarray] = []
    # the tracker reads only the shape of the image; the cached GMC ignores its pixels
    dummy = np.zeros((1, 1, 3), np.uint8) if kind == "botsort" and source == "ours" else None
    for i, boxes in enumerate(frames):
        dets = Detections(
            boxes[:, :4].astype(np.float64),
            boxes[:, 4].astype(np.float64),
            np.zeros(len(boxes), np.int64),
            None,
            PERSON,
        )
        out = tracker.update(dets, dummy)
        if len(out) == 0:
            continue
        if source == "ours":
            if len(boxes):
                best = box_iou(out.xyxy, boxes[:, :4]).argmax(axis=1)
                own = material.features[i][best]
            else:
                own = np.full((len(out), 512), np.nan)
            feats.extend(own)
            if check is not None:
                out = check.update(
                    i, out, lambda k, own=own: None if np.isnan(own[k]).any() else own[k]
                )
        for (x1, y1, x2, y2), tid, conf in zip(
            out.xyxy, out.tracker_id, out.confidence, strict=True
        ):
            rows.append(MotRow(i + 1, int(tid), x1, y1, x2 - x1, y2 - y1, float(conf)))
    features = np.asarray(feats, np.float32) if source == "ours" else None
    return Tracked(rows, features, {"cuts": len(check.cuts) if check is not None else 0})


def repair(material: Material, tracked: Tracked, config: Any = None) -> tuple[list[Any], Any]:
    from capstone.tracking.repair import FeatureRows, repair_mot_rows

    appearance = None
    if tracked.features is not None:
        from capstone.io.mot import mot_rows_to_detections

        appearance = FeatureRows(mot_rows_to_detections(tracked.rows), tracked.features, window=4)
    return repair_mot_rows(tracked.rows, material.fps, appearance=appearance, config=config)


# ---------------------------------------------------------------------------- table


KEYS = ("IDF1", "MOTA", "HOTA", "IDSW")


def run(
    materials: Iterable[Material],
    config: Any = None,
    sources: Sequence[str] = ("public", "ours"),
    kinds: Sequence[str] = ("bytetrack", "botsort"),
    cache: dict[Any, Any] | None = None,
    *,
    hota: bool = True,
    overrides: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Before/after metrics per material x source x tracker. `cache` keeps the tracked
    rows and the before-repair scores between calls (tuning); `hota=False` is faster.
    `overrides`: None for the stock trackers, else `Tracker` settings over ours (`{}`:
    what `capstone analyze` uses); the `before` rows are then that tracker's."""
    from capstone.eval.mot import evaluate_many

    cache = {} if cache is None else cache
    results = []
    for m in materials:
        for source in sources:
            for kind in kinds:
                key = (m.name, source, kind, json.dumps(overrides, sort_keys=True))
                if key not in cache:
                    cache[key] = track(m, source, kind, overrides)
                tracked = cache[key]
                after, result = repair(m, tracked, config)
                if (*key, "before", hota) not in cache:
                    cache[(*key, "before", hota)] = evaluate_many(
                        m.gt_dir, {"before": tracked.rows}, hota=hota
                    )["before"]
                before = cache[(*key, "before", hota)]
                scored = evaluate_many(m.gt_dir, {"after": after}, hota=hota)["after"]
                results.append(
                    {
                        "sequence": m.seq,
                        "variant": m.variant,
                        "source": source,
                        "tracker": kind,
                        "links": len(result.links),
                        "camera_motion": round(result.camera_motion, 3),
                        "before": {k: before[k] for k in KEYS},
                        "after": {k: scored[k] for k in KEYS},
                    }
                )
    return results


def summary(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    gains = [100 * (r["after"]["IDF1"] - r["before"]["IDF1"]) for r in results]
    mota = [100 * (r["after"]["MOTA"] - r["before"]["MOTA"]) for r in results]
    return {
        "mean_idf1_gain": float(np.mean(gains)) if gains else 0.0,
        "worst_idf1_gain": float(np.min(gains)) if gains else 0.0,
        "worst_mota_gain": float(np.min(mota)) if mota else 0.0,
        "harmed": sum(g < -0.5 or m < -0.5 for g, m in zip(gains, mota, strict=True)),
    }


def versus_stock(
    results: Sequence[dict[str, Any]], kind: str, ours: Sequence[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Per sequence x variant x source: `kind` + repair (a default candidate; from `ours`,
    the rows of our tracker settings, else from `results`) against the best stock tracker
    on the same detections in `results` (the one with the higher IDF1 before repair; MOTA
    is compared with that tracker's and with the best stock MOTA)."""
    groups: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["sequence"], r["variant"], r["source"]), {})[r["tracker"]] = r
    candidate = {
        (r["sequence"], r["variant"], r["source"]): r
        for r in (results if ours is None else ours)
        if r["tracker"] == kind
    }
    out = []
    for (seq, variant, source), by_kind in groups.items():
        if (seq, variant, source) not in candidate:
            continue
        best_kind = max(by_kind, key=lambda k: by_kind[k]["before"]["IDF1"])
        best = by_kind[best_kind]["before"]
        mine = candidate[(seq, variant, source)]["after"]
        out.append(
            {
                "sequence": seq,
                "variant": variant,
                "source": source,
                "best_stock": best_kind,
                "stock_IDF1": best["IDF1"],
                "stock_MOTA": best["MOTA"],
                "IDF1": mine["IDF1"],
                "MOTA": mine["MOTA"],
                "dIDF1": 100 * (mine["IDF1"] - best["IDF1"]),
                "dMOTA": 100 * (mine["MOTA"] - best["MOTA"]),
                "dMOTA_best": 100
                * (mine["MOTA"] - max(v["before"]["MOTA"] for v in by_kind.values())),
            }
        )
    return out


def versus_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {}
    d = [r["dIDF1"] for r in rows]
    m = [r["dMOTA"] for r in rows]
    return {
        "rows": len(rows),
        "mean_dIDF1": float(np.mean(d)),
        "worst_dIDF1": float(np.min(d)),
        "mean_dMOTA": float(np.mean(m)),
        "worst_dMOTA": float(np.min(m)),
        "worst_dMOTA_best": float(np.min([r["dMOTA_best"] for r in rows])),
        "rows_below": sum(x < -0.5 or y < -0.5 for x, y in zip(d, m, strict=True)),
    }


def print_versus(
    results: Sequence[dict[str, Any]],
    kind: str,
    title: str = "",
    ours: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    rows = versus_stock(results, kind, ours)
    print(f"\n## {title or f'{kind} + repair against the best stock tracker'}\n")
    print("| sequence | variant | detections | best stock | IDF1 stock → ours | Δ IDF1 | Δ MOTA |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['sequence']} | {r['variant']} | {r['source']} | {r['best_stock']} | "
            f"{r['stock_IDF1']:.3f} → {r['IDF1']:.3f} | {r['dIDF1']:+.1f} | {r['dMOTA']:+.1f} |"
        )
    s = versus_summary(rows)
    if not s:
        return s
    print(
        f"\n{kind} + repair vs best stock over {s['rows']} rows: mean Δ IDF1 "
        f"{s['mean_dIDF1']:+.2f} (worst {s['worst_dIDF1']:+.2f}), mean Δ MOTA "
        f"{s['mean_dMOTA']:+.2f} (worst {s['worst_dMOTA']:+.2f}; vs the best stock MOTA "
        f"{s['worst_dMOTA_best']:+.2f}); rows below −0.5 pt: {s['rows_below']}"
    )
    return s


def print_table(results: Sequence[dict[str, Any]], title: str = "") -> None:
    if title:
        print(f"\n## {title}\n")
    print(
        "| sequence | variant | detections | tracker | links | IDF1 before → after | "
        "MOTA before → after | HOTA before → after | IDSW |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        b, a = r["before"], r["after"]
        d = 100 * (a["IDF1"] - b["IDF1"])
        print(
            f"| {r['sequence']} | {r['variant']} | {r['source']} | {r['tracker']} | {r['links']} | "
            f"{b['IDF1']:.3f} → {a['IDF1']:.3f} ({d:+.1f}) | {b['MOTA']:.3f} → {a['MOTA']:.3f} | "
            f"{b['HOTA']:.3f} → {a['HOTA']:.3f} | {b['IDSW']} → {a['IDSW']} |"
        )
    s = summary(results)
    print(
        f"\nmean IDF1 gain {s['mean_idf1_gain']:+.2f} pts, worst {s['worst_idf1_gain']:+.2f}; "
        f"worst MOTA change {s['worst_mota_gain']:+.2f}; rows harmed (> 0.5 pt): {s['harmed']}"
    )


# coordinate descent over these, starting from the defaults (`RepairConfig`)
GRID: dict[str, tuple[float, ...]] = {
    "max_motion": (0.15, 0.25, 0.4),
    "motion_per_s": (0.1, 0.2, 0.35, 0.6),
    "max_appearance": (0.15, 0.25, 0.35),
    "appearance_margin": (0.0, 0.05, 0.1),
    "ambiguity": (1.5, 2.0, 3.0),
    "max_gap_s": (1.5, 3.0, 6.0),
    "max_gap_motion_s": (0.5, 1.0, 2.0),
    "camera_max": (0.3, 1.0, 2.0),
    "interpolate_max_s": (0.0, 0.3, 0.6),
}


def objective(results: Sequence[dict[str, Any]]) -> float:
    """Mean IDF1 gain (points), minus 10 per row that repair harmed by more than 0.5 pt."""
    s = summary(results)
    return s["mean_idf1_gain"] - 10.0 * s["harmed"]


def tune(
    materials: Sequence[Material],
    cache: dict[Any, Any],
    rounds: int = 1,
    log: Any = None,
) -> tuple[Any, float]:
    """Thresholds chosen on `materials` only: coordinate descent over `GRID`."""
    from dataclasses import replace

    from capstone.tracking.repair import RepairConfig

    best = RepairConfig()
    best_score = objective(run(materials, best, cache=cache, hota=False))
    for _ in range(rounds):
        for name, values in GRID.items():
            for value in values:
                if getattr(best, name) == value:
                    continue
                trial = replace(best, **{name: value})
                score = objective(run(materials, trial, cache=cache, hota=False))
                if log:
                    print(f"#   {name}={value}: {score:+.2f}", file=log, flush=True)
                if score > best_score + 0.05:
                    best, best_score = trial, score
    return best, best_score


# tracker settings tried by `--loo-tracker` (over ours, `TUNED`)
TRACKER_GRID: dict[str, tuple[float, ...]] = {
    "new_track_thresh": (0.25, 0.4, 0.5, 0.6, 0.7),
    "match_thresh": (0.8, 0.9),
}


def _objective(rows: Sequence[dict[str, Any]]) -> float:
    """What the leave-one-out choices maximise over `rows` (of `versus_stock`): the mean
    IDF1 gain over the best stock tracker, minus 10 per row more than 0.5 pt below it."""
    s = versus_summary(rows)
    return s["mean_dIDF1"] - 10 * s["rows_below"]


def tracker_loo(
    materials: Sequence[Material],
    sources: Sequence[str],
    kinds: Sequence[str],
    cache: dict[Any, Any],
    stock: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Tracker + settings chosen on one sequence (objective: mean IDF1 gain over the best
    stock tracker, minus 10 per row more than 0.5 pt below it in IDF1 or MOTA), scored on
    the other; each trial is our settings (`TUNED`, the velocity noise included) with the
    `TRACKER_GRID` values over them; repair with its defaults throughout."""
    import itertools

    from capstone.tracking.tracker import TUNED

    names = list(TRACKER_GRID)
    trials = [
        (kind, {**TUNED[kind], **dict(zip(names, values, strict=True))})
        for kind in kinds
        for values in itertools.product(*TRACKER_GRID.values())
    ]
    out: dict[str, Any] = {}
    for train in sorted({m.seq for m in materials}):
        fit = [m for m in materials if m.seq == train]
        held = [m for m in materials if m.seq != train]
        if not held:
            continue
        scored = []
        for kind, settings in trials:
            rows = versus_stock(
                stock, kind, run(fit, None, sources, (kind,), cache, hota=False, overrides=settings)
            )
            scored.append((_objective(rows), kind, settings))
            print(f"#   {train}: {kind} {settings}: {scored[-1][0]:+.2f}", file=sys.stderr)
        _, kind, settings = max(scored, key=lambda t: t[0])
        held_rows = run(held, None, sources, (kind,), cache, overrides=settings)
        title = f"leave-one-out: {kind} {settings} chosen on {train}, scored on the rest"
        summary = print_versus(stock, kind, title, held_rows)
        out[f"chosen_on_{train}"] = {"tracker": kind, "settings": settings, "held_out": summary}
    return out


def _by_sequence(
    rows: Sequence[dict[str, Any]], materials: Sequence[Material]
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """`versus_summary` of all `rows` (sequence None), then of each sequence's."""
    for seq in (None, *sorted({m.seq for m in materials})):
        yield seq, versus_summary([r for r in rows if seq in (None, r["sequence"])])


def _cells(s: dict[str, Any]) -> str:
    """A `versus_summary`'s Δ columns as the end of a Markdown table row."""
    return (
        f"{s['mean_dIDF1']:+.2f} | {s['worst_dIDF1']:+.2f} | {s['mean_dMOTA']:+.2f} | "
        f"{s['worst_dMOTA']:+.2f} | {s['rows_below']} |"
    )


def _chosen_on(train: str, rows_of: dict[Any, list[dict[str, Any]]]) -> Any:
    """The key of `rows_of` (a setting) with the best `_objective` on sequence `train`."""
    return max(rows_of, key=lambda k: _objective([r for r in rows_of[k] if r["sequence"] == train]))


# exponents of the frame-rate scaling of the Kalman filter's velocity noise tried by
# `--velocity-noise` (`capstone.tracking.tracker.velocity_noise_scale`; 0: Ultralytics')
VELOCITY_NOISE_GRID = (0.0, 0.25, 0.5, 0.625, 0.75, 1.0)


def velocity_noise_loo(
    materials: Sequence[Material],
    sources: Sequence[str],
    kinds: Sequence[str],
    stock: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Each exponent of `VELOCITY_NOISE_GRID` with our other settings, + repair, against
    the best stock tracker: every row, per sequence, and leave-one-out (the exponent with
    the best objective of `tracker_loo` on one sequence, scored on the other)."""
    from capstone.tracking.tracker import VELOCITY_NOISE_FPS

    out: dict[str, Any] = {}
    print(
        f"\n## velocity noise: ({VELOCITY_NOISE_FPS:g} / fps) ** exponent below "
        f"{VELOCITY_NOISE_FPS:g} fps, our settings + repair vs best stock\n"
    )
    print(
        "| tracker | exponent | rows | mean Δ IDF1 | worst Δ IDF1 | mean Δ MOTA | worst Δ MOTA |"
        " rows below −0.5 pt |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        rows_of = {}
        for exponent in VELOCITY_NOISE_GRID:
            overrides = {"velocity_noise_exponent": exponent}
            rows_of[exponent] = versus_stock(
                stock,
                kind,
                run(materials, None, sources, (kind,), {}, hota=False, overrides=overrides),
            )
            for seq, s in _by_sequence(rows_of[exponent], materials):
                out[f"{kind} {exponent} {seq or 'all'}"] = s
                where = "" if seq is None else " · " + seq
                print(f"| {kind}{where} | {exponent} | {s['rows']} | {_cells(s)}", flush=True)
        for train in sorted({m.seq for m in materials}):
            chosen = _chosen_on(train, rows_of)
            held = [r for r in rows_of[chosen] if r["sequence"] != train]
            s = versus_summary(held)
            out[f"{kind} chosen_on_{train}"] = {"exponent": chosen, "held_out": s}
            print(
                f"\nleave-one-out, {kind}: exponent {chosen} chosen on {train}; held out "
                f"({s['rows']} rows): mean Δ IDF1 {s['mean_dIDF1']:+.2f} (worst "
                f"{s['worst_dIDF1']:+.2f}), worst Δ MOTA {s['worst_dMOTA']:+.2f}, rows below "
                f"−0.5 pt: {s['rows_below']}"
            )
    return out


# (min_gap frames, max_distance) of `ReassociationCheck` tried by `--reassociation`
REASSOCIATION_GRID = tuple((g, d) for g in (2, 4, 6) for d in (0.35, 0.4, 0.45))


def reassociation_loo(materials: Sequence[Material], stock: Sequence[dict[str, Any]]) -> dict:
    """Our BoT-SORT + repair with the re-association check off and at each point of
    `REASSOCIATION_GRID`, against the best stock tracker on our detector's rows (public
    rows have no appearance: the check never runs there); leave-one-out as `tracker_loo`."""
    out: dict[str, Any] = {}
    print("\n## re-association check: our BoT-SORT + repair vs best stock, our detector\n")
    print(
        "| min_gap | max_distance | cuts | sequence | rows | mean Δ IDF1 | worst Δ IDF1 |"
        " mean Δ MOTA | worst Δ MOTA | rows below −0.5 pt |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows_of: dict[Any, list[dict[str, Any]]] = {}
    for point in (None, *REASSOCIATION_GRID):
        cut = None if point is None else {"min_gap": point[0], "max_distance": point[1]}
        cache: dict[Any, Any] = {}
        ours = run(
            materials,
            None,
            ("ours",),
            ("botsort",),
            cache,
            hota=False,
            overrides={"reassociation": cut},
        )
        cuts = sum(v.extra.get("cuts", 0) for v in cache.values() if isinstance(v, Tracked))
        rows_of[point] = versus_stock(stock, "botsort", ours)
        for seq, s in _by_sequence(rows_of[point], materials):
            out[f"{point} {seq or 'all'}"] = {**s, "cuts": cuts}
            gap, dist = ("off", "") if point is None else point
            print(f"| {gap} | {dist} | {cuts} | {seq or 'all'} | {s['rows']} | {_cells(s)}")
    for train in sorted({m.seq for m in materials}):
        chosen = _chosen_on(train, rows_of)
        s = versus_summary([r for r in rows_of[chosen] if r["sequence"] != train])
        off = versus_summary([r for r in rows_of[None] if r["sequence"] != train])
        out[f"chosen_on_{train}"] = {"point": chosen, "held_out": s, "off": off}
        print(
            f"\nleave-one-out: {chosen or 'off'} chosen on {train}; held out ({s['rows']} rows):"
            f" mean Δ IDF1 {s['mean_dIDF1']:+.2f} (off {off['mean_dIDF1']:+.2f}), worst "
            f"{s['worst_dIDF1']:+.2f}, worst Δ MOTA {s['worst_dMOTA']:+.2f}, rows below "
            f"−0.5 pt: {s['rows_below']}"
        )
    return out


def _changed(config: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from capstone.tracking.repair import RepairConfig

    default = asdict(RepairConfig())
    return {k: v for k, v in asdict(config).items() if default[k] != v}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the detector cache")
    parser.add_argument("--sequences", nargs="*", default=list(SEQUENCES))
    parser.add_argument("--sources", nargs="*", default=["public", "ours"])
    parser.add_argument("--trackers", nargs="*", default=["bytetrack", "botsort"])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--velocity-noise",
        action="store_true",
        help="compare the Kalman filter's velocity-noise exponents, leave-one-out",
    )
    parser.add_argument(
        "--reassociation",
        action="store_true",
        help="compare the re-association check's settings, leave-one-out",
    )
    parser.add_argument(
        "--loo", action="store_true", help="choose thresholds on one sequence, report the other"
    )
    parser.add_argument(
        "--loo-tracker",
        action="store_true",
        help="choose tracker settings on one sequence, report the other (against stock)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    materials = [m for seq in args.sequences for m in load_material(seq, args.rebuild)]
    started = time.perf_counter()
    cache: dict[Any, Any] = {}
    results = run(materials, sources=args.sources, kinds=args.trackers, cache=cache)
    print_table(results, "identity repair, default settings, stock trackers")
    ours = run(materials, sources=args.sources, kinds=args.trackers, cache=cache, overrides={})
    print_table(ours, "identity repair, default settings, our tracker settings")
    report: dict[str, Any] = {"default": results, "ours": ours}
    for kind in args.trackers:
        report[f"versus_{kind}_stock_settings"] = print_versus(
            results, kind, f"stock {kind} + repair against the best stock tracker"
        )
        report[f"versus_{kind}"] = print_versus(
            results, kind, f"our {kind} + repair against the best stock tracker", ours
        )
    if args.velocity_noise:
        report["velocity_noise"] = velocity_noise_loo(
            materials, args.sources, args.trackers, results
        )
    if args.reassociation:
        report["reassociation"] = reassociation_loo(materials, results)
    if args.loo_tracker:
        report["tracker_loo"] = tracker_loo(materials, args.sources, args.trackers, cache, results)
    if args.loo:
        for train in args.sequences:
            tests = [m for m in materials if m.seq != train]
            if not tests:
                continue
            chosen, _ = tune([m for m in materials if m.seq == train], cache, log=sys.stderr)
            held_out = run(tests, chosen, args.sources, args.trackers, cache)
            changed = _changed(chosen) or "defaults"
            title = f"leave-one-out: thresholds chosen on {train} ({changed}), scored on the rest"
            print_table(held_out, title)
            report[f"chosen_on_{train}"] = {"changed": _changed(chosen), "results": held_out}
    print(f"\n# tracking + repair + scoring in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
