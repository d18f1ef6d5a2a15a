"""Publish: stitch an analysis's staged chunks into one result and make it visible at once.

Once every chunk is `done`, this step (run by whoever holds the analysis's lease):

1. stitches the chunks' tracks over their overlaps (`capstone.core.chunks.match_overlap`) and
   numbers the stitched tracks 1, 2, ... in order of appearance;
2. merges each stitched track's chunk summaries (first/last box, length, best crop, depth);
3. reads every staged tracked box back as column arrays (`VideoResult.observations`) and
   runs the stages' `publish` (identity repair, events, trails, heatmap, text embeddings);
4. in ONE transaction, fenced by the lease: replaces the analysis's result rows with the
   staged rows (track ids mapped, every tracked box labelled with its track's class) plus
   what step 3 made, drops the staging, and marks the analysis completed. Until that
   commit every reader sees the previous result.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from capstone.core.chunks import Stitcher, match_overlap
from capstone.core.records import Record, TrackSummary
from capstone.core.video import VideoInfo
from capstone.stages.base import REGISTRY, Stage, VideoResult, publish_order
from capstone.stages.params import AnalysisParams
from capstone.store import analyses, reuse, staging
from capstone.store.engine import session_scope

# Track columns every analysis may fill; stages add theirs (`Stage.track_extras`).
CORE_TRACK_EXTRAS = ("best_crop",)


@dataclass
class Published:
    counts: dict[str, int]
    frames: int
    tracks_per_class: dict[str, int]
    events_per_type: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)


def stitch(cores: Iterable[dict[str, Any]], staged_ids: list[int]) -> dict[int, int]:
    """Staged track id -> the staged id of the first fragment of its stitched track, from
    the chunks' core states (their tail and warm-up boxes), in chunk order."""
    stitcher = Stitcher()
    for before, after in pairwise(cores):
        for later, earlier in match_overlap(before["tail"], after["warm"]).items():
            stitcher.link(later, earlier)
    return {tid: stitcher.root(tid) for tid in staged_ids}


def _merge(
    fragments: list[tuple[int, dict[str, Any], bytes | None]],
    final_id: int,
    stages: Sequence[type[Stage]] = (),
) -> TrackSummary:
    """One track from its chunk fragments (chunk order): sums add up, the best box and
    its crop come from the fragment where it scored best, the class is the majority's."""
    summaries = [s for _, s, _ in fragments]
    classes = Counter()
    for s in summaries:
        classes[(s["class_id"], s["class_name"])] += s["length"]
    (class_id, class_name), _ = classes.most_common(1)[0]
    first, last = summaries[0], summaries[-1]
    track = TrackSummary(
        final_id,
        class_id,
        class_name,
        first["first_frame"],
        last["last_frame"],
        first["first_timestamp"],
        last["last_timestamp"],
        length=sum(s["length"] for s in summaries),
        confidence_sum=sum(s["confidence_sum"] for s in summaries),
    )
    best = max(range(len(fragments)), key=lambda k: summaries[k]["best_score"])
    b = summaries[best]
    track.best_score, track.best_frame, track.best_bbox = (
        b["best_score"],
        b["best_frame"],
        b["best_bbox"],
    )
    extra = dict(b.get("extra", {}))
    if fragments[best][2] is not None:
        extra["best_crop"] = fragments[best][2]
    extras = [s.get("extra", {}) for s in summaries]
    for stage in stages:
        extra.update(stage.merge_track_extras(extras))
    track.extra = extra
    return track


def _track_row(t: TrackSummary, columns: Sequence[str]) -> dict[str, Any]:
    return {
        "track_id": t.track_id,
        "identity_id": t.extra.get("identity_id"),
        "class_name": t.class_name,
        "first_frame": t.first_frame,
        "last_frame": t.last_frame,
        "first_timestamp": round(t.first_timestamp, 4),
        "last_timestamp": round(t.last_timestamp, 4),
        "length": t.length,
        "mean_confidence": round(t.mean_confidence, 4),
        "best_frame": t.best_frame,
        "best_bbox": t.best_bbox,
        **{k: t.extra[k] for k in columns if k in t.extra},
    }


def publish_analysis(
    lease: analyses.Lease,
    *,
    video_id: str,
    info: VideoInfo,
    params: AnalysisParams,
    step: int,
    summary: dict[str, Any],
    fail_after: str | None = None,
) -> Published:
    """Stitch, finish and publish the analysis held by `lease` (see the module docstring).
    `summary` is stored with the completed row (counts and per-class/type totals are added)."""
    stages = [REGISTRY[name] for name in publish_order(params.optional_stages())]
    columns = CORE_TRACK_EXTRAS + tuple(c for stage in stages for c in stage.track_extras)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    records = staging.chunk_records(lease.analysis_id, step)
    staged = staging.staged_tracks(lease.analysis_id)
    firsts, lasts = [], []
    frame_log: tuple[list[int], list[float]] | None = ([], [])  # None: a chunk logged none

    def cores() -> Iterator[dict[str, Any]]:
        nonlocal frame_log
        for core in staging.chunk_states(lease.analysis_id, "core"):
            firsts.append(core["first_frame"])
            lasts.append(core["last_frame"])
            if frame_log is not None and "frames" in core:
                frame_log[0].extend(core["frames"])
                frame_log[1].extend(core["times"])
            else:
                frame_log = None
            yield core

    root_of = stitch(cores(), [tid for _, tid, _, _ in staged])
    groups: dict[int, list[tuple[int, dict[str, Any], bytes | None]]] = {}
    for _, tid, track_summary, crop in staged:
        groups.setdefault(root_of[tid], []).append((tid, track_summary, crop))
    order = sorted(groups, key=lambda r: (groups[r][0][1]["first_frame"], r))
    final_of_root = {root: n for n, root in enumerate(order, start=1)}
    track_map = {tid: final_of_root[root] for tid, root in root_of.items()}
    tracks = {final_of_root[r]: _merge(groups[r], final_of_root[r], stages) for r in order}
    members = {final_of_root[r]: [tid for tid, _, _ in groups[r]] for r in order}
    observations = (
        staging.staged_observations(lease.analysis_id).with_tracker_ids(track_map).sorted_by_track()
    )
    frames = sum(r.frames_processed for r in records)
    firsts = [f for f in firsts if f is not None]
    lasts = [f for f in lasts if f is not None]
    video = VideoResult(
        video_id,
        info,
        params,
        info.fps / step,
        step,
        tracks,
        observations,
        lambda name: staging.chunk_states(lease.analysis_id, name),
        min(firsts, default=0),
        max(lasts, default=0),
        final_id_of=track_map,
        members=members,
        timings=timings,
    )
    timings["stitch"] = time.perf_counter() - t0
    for stage in stages:
        t = time.perf_counter()
        stage.publish(video)
        timings[stage.name] = time.perf_counter() - t
    rows = dict(video.rows)
    rows[Record.TRACK] = [_track_row(t, columns) for t in tracks.values()]
    tracks_per_class = dict(Counter(t.class_name for t in tracks.values()))
    t = time.perf_counter()
    with session_scope() as session:
        counts = staging.publish(
            session,
            lease,
            video_id=video_id,
            track_map=track_map,
            rows=rows,
            track_classes={t.track_id: t.class_name for t in tracks.values()},
            fail_after=fail_after,
        )
        if frame_log is not None:  # what a later run with other derived options reuses
            reuse.write_basis(
                session,
                lease.analysis_id,
                video_id=video_id,
                upstream_hash=params.upstream_hash(),
                frames=frame_log[0],
                timestamps=frame_log[1],
                confidence_sums={t.track_id: t.confidence_sum for t in tracks.values()},
            )
        else:
            reuse.drop_basis(session, lease.analysis_id)
        events_per_type = staging.events_per_type(session, lease.analysis_id)
        fps = summary.get("fps", 0.0)
        analyses.mark_completed(
            session,
            lease,
            frames_processed=frames,
            fps=fps,
            summary={
                **summary,
                "frames_processed": frames,
                "counts": counts,
                "tracks_per_class": tracks_per_class,
                "events_per_type": events_per_type,
                "chunks": len(records),
            },
        )
    timings["publish"] = time.perf_counter() - t
    return Published(counts, frames, tracks_per_class, events_per_type, timings)
