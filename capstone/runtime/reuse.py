"""Reuse stored detections and tracks when only derived options change.

An analysis's parameters split in two (`AnalysisParams.upstream` / `upstream_hash`):
what decides the detections, the tracks and every stage that needs pixels (model,
sampling, conf, classes, tracker, detect_every, max_frames, chunk_s, and the identity,
depth, display and embed stages with their options), and what only *derived* stages read
(`Stage.derived`: the events stage, with its lines, zones, dwell, count and anchor options,
and `confirm_s`). A run whose upstream part equals that of a completed analysis of the same
video does not decode the video: it

1. reads the source analysis's stored tracks, its detection boxes (as compact arrays, like
   the publish step reads staged boxes) and its basis (the sampled frames with their exact
   timestamps, each track's exact confidence sum);
2. replays each derived stage's chunk state from them (`Stage.replay_state`: the events'
   count buckets) and runs the `publish` of the derived stages and of the stages that
   publish after one of them (embed: the text embeddings of the new event descriptions);
3. in ONE transaction fenced by its lease, copies the source's upstream rows with
   `INSERT ... SELECT` and adds the recomputed rows (`capstone.store.reuse.publish_reused`).

Its rows equal a full run's with the same parameters, apart from ids.

>>> from capstone.stages.params import AnalysisParams
>>> recomputed(AnalysisParams())
['events', 'embed']
>>> recomputed(AnalysisParams(stages=("track", "display")))
[]
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np

from capstone.core.records import Record, TrackSummary
from capstone.core.video import VideoInfo
from capstone.runtime.publish import Published
from capstone.stages.base import REGISTRY, FrameLog, VideoResult, publish_order
from capstone.stages.params import AnalysisParams
from capstone.store import analyses, reuse, staging
from capstone.store.engine import session_scope

# The event types the upstream part makes (chunk detections, identity's interpolated
# boxes); every other event type is made by a derived stage and is recomputed.
UPSTREAM_EVENT_TYPES = ("detection",)


def recomputed(params: AnalysisParams) -> list[str]:
    """The enabled stages a reuse runs `publish` of, in publish order: the derived ones and
    those that publish after a derived one (they read its rows)."""
    derived = set(params.derived_stages())
    order = publish_order(params.optional_stages())
    return [n for n in order if n in derived or derived.intersection(REGISTRY[n].after)]


def find_source(video_id: str, params: AnalysisParams, analysis_id: int) -> int | None:
    """A completed analysis of `video_id` whose stored rows this analysis can reuse."""
    return reuse.find_source(video_id, params.upstream_hash(), exclude=analysis_id)


def _tracks(source_id: int, basis: reuse.Basis) -> dict[int, TrackSummary]:
    tracks = {}
    for row in reuse.stored_tracks(source_id):
        tid = int(row["track_id"])
        summary = TrackSummary(
            tid,
            0,
            row["class_name"],
            row["first_frame"],
            row["last_frame"],
            row["first_timestamp"],
            row["last_timestamp"],
            length=row["length"],
            confidence_sum=basis.confidence_sums.get(
                tid, float(row["mean_confidence"]) * row["length"]
            ),
            best_frame=row["best_frame"],
            best_bbox=row["best_bbox"],
        )
        if row["identity_id"] is not None:
            summary.extra["identity_id"] = int(row["identity_id"])
        tracks[tid] = summary
    return tracks


def publish_reused(
    lease: analyses.Lease,
    *,
    video_id: str,
    info: VideoInfo,
    params: AnalysisParams,
    source_id: int,
    step: int,
    summary: dict[str, Any],
    fail_after: str | None = None,
) -> Published:
    """Recompute the derived stages from the source analysis's stored rows and publish
    the result as the analysis held by `lease` (see the module docstring)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    source = reuse.stored_summary(source_id)  # read first: the copy checks it is unchanged
    basis = reuse.load_basis(source_id)
    if basis is None:
        raise RuntimeError(f"analysis {source_id} keeps no basis to reuse")
    staging.discard(lease.analysis_id)  # a killed full run's chunks: not needed now
    tracks = _tracks(source_id, basis)
    boxes = reuse.stored_boxes(source_id)
    tracked = boxes[boxes.tracker_id >= 0]  # type: ignore[operator]
    observations = tracked.sorted_by_track()
    observations.class_id = np.zeros(len(observations), np.int64)
    observations.class_names = {}
    frames = FrameLog(basis.frames, basis.timestamps, boxes)
    replayed: dict[str, dict[str, Any]] = {}
    video = VideoResult(
        video_id,
        info,
        params,
        info.fps / step,
        step,
        tracks,
        observations,
        lambda name: iter([replayed[name]] if name in replayed else []),
        min(basis.frames, default=0),
        max(basis.frames, default=0),
        timings=timings,
    )
    timings["reuse.read"] = time.perf_counter() - t0
    names = recomputed(params)
    for name in names:
        stage = REGISTRY[name]
        t = time.perf_counter()
        if stage.derived:
            replayed[name] = stage.replay_state(video, frames)
        stage.publish(video)
        timings[name] = time.perf_counter() - t
    rows = dict(video.rows)
    rows.pop(Record.TRACK, None)
    t = time.perf_counter()
    tracks_per_class = dict(Counter(t.class_name for t in tracks.values()))
    with session_scope() as session:
        counts = reuse.publish_reused(
            session,
            lease,
            source_id=source_id,
            video_id=video_id,
            keep_event_types=UPSTREAM_EVENT_TYPES,
            rows=rows,
            source_finished_at=source.get("finished_at"),
            fail_after=fail_after,
        )
        events_per_type = staging.events_per_type(session, lease.analysis_id)
        frames_processed = int(source.get("frames_processed") or len(basis.frames))
        analyses.mark_completed(
            session,
            lease,
            frames_processed=frames_processed,
            fps=float(source.get("fps") or 0.0),
            summary={
                **summary,
                "frames_expected": source.get("frames_expected", frames_processed),
                "analysed_s": source.get("analysed_s"),
                "frames_processed": frames_processed,
                "counts": counts,
                "tracks_per_class": tracks_per_class,
                "events_per_type": events_per_type,
                "chunks": 0,
                "reuse": {
                    "from_analysis": source_id,
                    "reused": ["detect", "track", *upstream_stages(params)],
                    "recomputed": names,
                },
            },
        )
    timings["publish"] = time.perf_counter() - t
    return Published(counts, frames_processed, tracks_per_class, events_per_type, timings)


def upstream_stages(params: AnalysisParams) -> list[str]:
    """The enabled optional stages whose stored rows a reuse copies."""
    derived = set(params.derived_stages())
    return [n for n in params.optional_stages() if n not in derived]
