"""Identity repair on real trajectories: ground-truth tracks of PETS09-S2L1 and TUD-Campus
cut into fragments, merged back, and their gaps interpolated (slow tier: reads ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capstone.core.geometry import box_iou
from capstone.io.mot import MotRow, load_mot_gt, load_sequence, mot_rows_to_detections
from capstone.tracking.repair import RepairConfig, repair_identities
from tests.conftest import MOT, require

OFFSET = 10_000  # the id of a track's second half: its own id + OFFSET


def _cut(sequence: str, gap_s: float) -> tuple[list[MotRow], dict[tuple[int, int], MotRow], float]:
    """Every ground-truth track long enough loses `gap_s` seconds in its middle; the part
    after the gap gets a new id. Returns the rows, the removed rows by (id, frame), fps."""
    seq = load_sequence(require(MOT / sequence))
    by_id: dict[int, list[MotRow]] = {}
    for row in load_mot_gt(seq.root):
        by_id.setdefault(row.track_id, []).append(row)
    gap = max(2, round(gap_s * seq.frame_rate))
    rows: list[MotRow] = []
    removed: dict[tuple[int, int], MotRow] = {}
    for tid, own in by_id.items():
        own.sort(key=lambda r: r.frame)
        if len(own) < 2 * gap + 6:
            rows += own
            continue
        mid = len(own) // 2
        rows += own[:mid]
        removed.update({(tid, r.frame): r for r in own[mid : mid + gap]})
        rows += [r._replace(track_id=tid + OFFSET) for r in own[mid + gap :]]
    return rows, removed, seq.frame_rate


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sequence", "gap_s", "min_merged"),
    [("PETS09-S2L1", 0.3, 1.0), ("PETS09-S2L1", 0.6, 0.9), ("TUD-Campus", 0.6, 0.1)],
)
def test_cut_real_tracks_merge_back_with_no_wrong_link(
    sequence: str, gap_s: float, min_merged: float
) -> None:
    """Motion alone (no appearance): every link joins the two halves of one person, and on
    PETS09 (people apart) nearly every cut is mended; on TUD-Campus (a crowd walking side
    by side) most cuts are ambiguous and left alone rather than guessed."""
    rows, removed, fps = _cut(sequence, gap_s)
    cuts = {tid for tid, _ in removed}
    result = repair_identities(mot_rows_to_detections(rows), fps)
    assert all(a % OFFSET == b % OFFSET for a, b, _ in result.links), result.links
    merged = {a % OFFSET for a, _, _ in result.links}
    assert len(merged) >= min_merged * len(cuts), (len(merged), len(cuts))


@pytest.mark.slow
@pytest.mark.parametrize("smooth_s", [0.0, 0.5])
def test_gaps_of_real_tracks_are_filled_where_the_person_was(smooth_s: float) -> None:
    """The boxes interpolated into the cut gaps (linear, and Gaussian-smoothed) overlap the
    ground-truth box of that frame: IoU >= 0.5 for every one, 0.9 on average."""
    rows, removed, fps = _cut("PETS09-S2L1", 0.6)
    config = RepairConfig(interpolate_max_s=1.0, interpolate_smooth_s=smooth_s)
    filled = repair_identities(mot_rows_to_detections(rows), fps, config=config).interpolated
    ious = []
    for frame, tid, box in zip(
        filled["frame"].tolist(),
        filled.tracker_id.tolist(),  # type: ignore[union-attr]
        filled.xyxy,
        strict=True,
    ):
        truth = removed[(tid % OFFSET, frame)]
        truth_box = np.array([truth.x, truth.y, truth.x + truth.w, truth.y + truth.h])
        ious.append(float(box_iou(box[None], truth_box[None])[0, 0]))
    assert len(ious) >= 0.9 * len(removed)
    assert min(ious) >= 0.5 and np.mean(ious) >= 0.9, (min(ious), np.mean(ious))


@pytest.mark.slow
def test_our_botsort_and_repair_beat_the_best_stock_tracker_on_public_variants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Public detections of both sequences and their variants (11 rows): BoT-SORT with our
    settings + repair against the better stock tracker of each row. One known loss:
    TUD-Campus at a third of its frame rate (24 frames at 8.3 fps), where stock ByteTrack
    tracks better than BoT-SORT before any repair (IDF1 0.605 against 0.571; ours 0.583
    after repair, -2.1 pt; README, "Which tracker, and why")."""
    import bench.identity_repair as bench

    monkeypatch.setattr(bench, "CACHE", tmp_path)
    materials = [
        m
        for sequence in ("PETS09-S2L1", "TUD-Campus")
        for m in bench.load_material(sequence, detector=False, seq_dir=require(MOT / sequence))
    ]
    cache: dict = {}
    stock = bench.run(materials, sources=("public",), cache=cache, hota=False)
    ours = bench.run(
        materials, sources=("public",), kinds=("botsort",), cache=cache, hota=False, overrides={}
    )
    rows = bench.versus_stock(stock, "botsort", ours)
    assert len(rows) == 11
    below = [f"{r['sequence']}/{r['variant']}" for r in rows if min(r["dIDF1"], r["dMOTA"]) < -0.5]
    assert below in ([], ["TUD-Campus/lowfps"]), below
    assert np.mean([r["dIDF1"] for r in rows]) >= 1.0
    assert min(r["dMOTA"] for r in rows) >= -0.5
