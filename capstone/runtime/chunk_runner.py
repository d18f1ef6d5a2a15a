"""Running chunks: decode -> detect -> track -> stages, rows streamed to staging.

`work_chunks` claims chunks of an analysis one after the other and runs each over one
frame stream: a claimed chunk whose successor is free claims it too when the stream enters
the successor's warm-up, and warms the successor's fresh tracker on the same frames (and
the same detections), so a single worker decodes and detects every frame once. A chunk
whose predecessor ran elsewhere opens its own stream at its warm-up.

Per chunk the pipeline keeps only the chunk's track summaries (no observations), the boxes
of its last `overlap_s` seconds (its tail, to stitch with the next chunk) and of its
warm-up; every row leaves through `RunContext.emit` into a `StagingSink`.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from capstone.config import get_settings
from capstone.core.chunks import ChunkSpan, staged_id
from capstone.core.detections import Detections
from capstone.core.records import Record, TrackSummary
from capstone.core.video import Frame, StreamEnd, VideoInfo, iter_frames
from capstone.errors import BudgetExceededError
from capstone.models.detector import Detector
from capstone.runtime.heartbeat import Heartbeat
from capstone.stages.base import REGISTRY, RunContext, Stage
from capstone.stages.params import AnalysisParams
from capstone.store import analyses, staging
from capstone.tracking.propagate import BoxPropagator, DetectionSchedule, selective_stream
from capstone.tracking.tracker import Tracker

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
PROGRESS_INTERVAL_S = 1.0


def build_stages(ctx: RunContext) -> list[Stage]:
    """The enabled optional stages, in the order of `AnalysisParams.stages`."""
    return [REGISTRY[name](ctx) for name in ctx.params.optional_stages()]


class _ChunkTracks:
    """The chunk's detection rows and track summaries; raw tracker ids become staged ids
    (chunk-unique, in order of first sight, so the same input gives the same ids)."""

    def __init__(self, ctx: RunContext, span: ChunkSpan, tail_from: int | None) -> None:
        self.ctx, self.span, self.tail_from = ctx, span, tail_from
        self.ids: dict[int, int] = {}
        self.tail: list[list[float]] = []
        self.warm: list[list[float]] = []
        self.first_frame: int | None = None
        self.last_frame: int | None = None
        # every sampled frame the stages saw and its exact timestamp (the stored frame log
        # that derived stages replay from when a later run reuses this one's tracks)
        self.frames: list[int] = []
        self.times: list[float] = []

    def _clip(self, dets: Detections) -> np.ndarray:
        width, height = self.ctx.info.width, self.ctx.info.height
        return dets.xyxy.clip(0, [width, height, width, height])

    def relabel(self, dets: Detections) -> Detections:
        if dets.tracker_id is None:
            return dets
        ids = []
        for raw in dets.tracker_id.tolist():
            if raw not in self.ids:
                self.ids[raw] = staged_id(self.span.index, len(self.ids) + 1)
            ids.append(self.ids[raw])
        return Detections(
            dets.xyxy, dets.confidence, dets.class_id, np.array(ids, np.int64), dets.class_names
        )

    def warm_up(self, frame: Frame, dets: Detections) -> None:
        dets = self.relabel(dets)
        if dets.tracker_id is None:
            return
        for box, tid in zip(self._clip(dets).tolist(), dets.tracker_id.tolist(), strict=True):
            self.warm.append([frame.index, tid, *(round(v, 2) for v in box)])

    def add(self, frame: Frame, dets: Detections, propagated: bool = False) -> Detections:
        dets = self.relabel(dets)
        if self.first_frame is None:
            self.first_frame = frame.index
        self.last_frame = frame.index
        self.frames.append(frame.index)
        self.times.append(frame.timestamp)
        tracked = dets.tracker_id is not None
        clipped = np.round(self._clip(dets), 2).tolist()
        names = [dets.class_names.get(int(c), str(c)) for c in dets.class_id.tolist()]
        confidences = dets.confidence.tolist()
        tids = dets.tracker_id.tolist() if tracked else [None] * len(dets)  # type: ignore[union-attr]
        in_tail = self.tail_from is not None and frame.index >= self.tail_from
        timestamp = round(frame.timestamp, 4)
        flag = {"attributes": {"propagated": True}} if propagated else {}
        for box, cls, name, conf, tid in zip(
            clipped, dets.class_id.tolist(), names, confidences, tids, strict=True
        ):
            self.ctx.emit(
                Record.EVENT,
                {
                    "frame_number": frame.index,
                    "timestamp": timestamp,
                    "event_type": "detection",
                    "class_name": name,
                    "confidence": None if propagated else round(conf, 4),
                    "bbox": box,
                    "track_id": tid,
                    **flag,
                },
            )
            if tid is None:
                continue
            if in_tail:
                self.tail.append([frame.index, tid, *box])
            summary = self.ctx.tracks.get(tid)
            if summary is None:
                summary = self.ctx.tracks[tid] = TrackSummary(
                    tid, int(cls), name, frame.index, frame.index, frame.timestamp,
                    frame.timestamp,
                )  # fmt: skip
            summary.last_frame, summary.last_timestamp = frame.index, frame.timestamp
            # the tracker's class vote settles along the track: its latest answer is the
            # track's class (a first box saying `car` under a `truck` must not name it)
            summary.class_id, summary.class_name = int(cls), name
            summary.length += 1
            summary.confidence_sum += conf
            score = conf * (((box[2] - box[0]) * (box[3] - box[1])) ** 0.5)
            if score > summary.best_score and not propagated:
                summary.best_score, summary.best_frame, summary.best_bbox = score, frame.index, box
        return dets

    def state(self) -> dict[str, Any]:
        return {
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "tail": self.tail,
            "warm": self.warm,
            "frames": self.frames,
            "times": self.times,
        }

    def track_records(self) -> list[tuple[int, dict[str, Any], bytes | None]]:
        out = []
        for t in self.ctx.tracks.values():
            extra = {k: _jsonable(v) for k, v in t.extra.items() if k != "best_crop"}
            summary = {
                "class_id": t.class_id,
                "class_name": t.class_name,
                "first_frame": t.first_frame,
                "last_frame": t.last_frame,
                "first_timestamp": t.first_timestamp,
                "last_timestamp": t.last_timestamp,
                "length": t.length,
                "confidence_sum": t.confidence_sum,
                "best_score": t.best_score,
                "best_frame": t.best_frame,
                "best_bbox": t.best_bbox,
                "extra": extra,
            }
            out.append((t.track_id, summary, t.extra.get("best_crop")))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [float(v) for v in value.reshape(-1)]
    if isinstance(value, np.generic):
        return value.item()
    return value


class ChunkRun:
    """One chunk in progress: its tracker, stages, tracks and sink."""

    def __init__(
        self,
        span: ChunkSpan,
        lease: staging.ChunkLease,
        job: ChunkJob,
        last: bool,
    ) -> None:
        self.span, self.lease, self.last = span, lease, last
        info, params = job.info, job.params
        self.sink = staging.StagingSink(job.video_id, lease)
        self.ctx = RunContext(
            job.video_id,
            info,
            params,
            info.fps / job.step,
            job.detector.class_names,
            emit=self.sink.emit,
            chunk_index=span.index,
        )
        self.tracker = (
            Tracker(params.tracker, frame_rate=self.ctx.sample_fps)
            if params.runs("track")
            else None
        )
        self.stages = build_stages(self.ctx)
        tail_from = None if last else job.spans[span.index + 1].warm_start
        self.core = _ChunkTracks(self.ctx, span, tail_from)
        self.frames = 0
        self.timings: Counter[str] = Counter()
        self.propagator = (
            None if DetectionSchedule.of(params.detect_every).always else BoxPropagator()
        )

    def _track(self, frame: Frame, dets: Detections | None) -> Detections:
        """Tracked boxes of a frame; `dets` None: carried from the last frame."""
        t = time.perf_counter()
        if dets is None:
            assert self.propagator is not None
            dets = self.propagator.propagate(frame.image)
        if self.propagator is not None:
            self.propagator.observe(frame.image, dets)
            self.timings["propagate"] += time.perf_counter() - t
            t = time.perf_counter()
        if self.tracker is not None:
            dets = self.tracker.update(dets, frame.image)
        self.timings["track"] += time.perf_counter() - t
        return dets

    def warm_up(self, frame: Frame, dets: Detections | None) -> None:
        if self.tracker is not None:
            self.core.warm_up(frame, self._track(frame, dets))

    def add(self, frame: Frame, dets: Detections | None) -> None:
        propagated = dets is None
        dets = self.core.add(frame, self._track(frame, dets), propagated)
        for stage in self.stages:
            t = time.perf_counter()
            stage.process(frame, dets, self.ctx)
            self.timings[stage.name] += time.perf_counter() - t
        self.frames += 1

    def complete(self) -> None:
        """Stage the chunk's last rows, its tracks and state; the chunk is done."""
        states: dict[str, Any] = {}
        for stage in self.stages:
            t = time.perf_counter()
            states[stage.name] = stage.end_chunk(self.ctx)
            self.timings[stage.name] += time.perf_counter() - t
        states["core"] = self.core.state()
        if self.tracker is not None:
            self.timings["reassociation_cuts"] += self.tracker.cuts
        t = time.perf_counter()
        staging.complete_chunk(self.sink, self.core.track_records(), states, self.frames)
        self.timings["stage_rows"] += time.perf_counter() - t
        for key, value in self.ctx.timings.items():
            self.timings[key] += value


class ChunkJob:
    """What every chunk of one analysis shares: the video, the settings, the detector."""

    def __init__(
        self,
        *,
        analysis_id: int,
        video_id: str,
        info: VideoInfo,
        params: AnalysisParams,
        spans: Sequence[ChunkSpan],
        detector: Detector,
        owner: str,
        heartbeat: Heartbeat,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.analysis_id, self.video_id, self.info, self.params = (
            analysis_id,
            video_id,
            info,
            params,
        )
        self.spans, self.detector, self.owner, self.heartbeat = spans, detector, owner, heartbeat
        self.progress = progress
        self.step = spans[0].step if spans else 1
        self.expected = sum(s.expected for s in spans)
        self.frames = 0  # sampled frames this worker processed
        self.frames_before = 0  # of chunks that were done when it started
        self.timings: Counter[str] = Counter()
        self.loop_time = 0.0
        self.last_done = -1
        # MAX_VIDEO_DURATION_S in frames: what is decoded counts, not what the header says
        self.max_index = math.ceil(get_settings().max_video_duration_s * info.fps)

    def claim(self, prefer: int, only: Sequence[int] | None) -> staging.ChunkLease | None:
        return staging.claim_chunk(
            self.analysis_id,
            self.owner,
            prefer=prefer,
            only=only,
            lease_seconds=self.heartbeat.seconds,
        )

    def work(self, only: Sequence[int] | None = None, prefer: int = 0) -> None:
        """Claim and run chunks until none is left to claim (`only`: just these)."""
        while True:
            self.heartbeat.check()
            lease = self.claim(prefer, only)
            if lease is None:
                return
            try:
                prefer = self._run_from(lease, only) + 1
            except analyses.LeaseLostError as exc:
                if self.heartbeat.lease is not None and self.heartbeat.lost.is_set():
                    raise
                log.warning("%s; going on with the next chunk", exc)
                for held in self.heartbeat.held():
                    self.heartbeat.drop(held.chunk_index)

    def _run_from(self, lease: staging.ChunkLease, only: Sequence[int] | None) -> int:
        """Run the claimed chunk and, on the same stream, its successors while they can be
        claimed; returns the index of the last chunk run."""
        last_index = len(self.spans) - 1
        current = self._start(lease, last_index)
        upcoming: ChunkRun | None = None
        asked_next = False
        end = StreamEnd()
        frames = iter_frames(
            self.info.path,
            stride=self.step,
            start=current.span.warm_start,
            stop_at=self.spans[-1].end if self.params.max_frames else None,
            end=end,
        )
        detected = selective_stream(
            self.detector,
            frames,
            DetectionSchedule.of(self.params.detect_every),
            step=self.step,
            restarts=[s.warm_start for s in self.spans],
        )
        loop_start = last_report = time.perf_counter()
        try:
            while True:
                t = time.perf_counter()
                item = next(detected, None)
                self.timings["detect"] += time.perf_counter() - t
                if item is None:
                    break
                frame, dets = item
                self.heartbeat.check()
                self._check_chunk(current)
                if frame.index >= self.max_index:
                    seconds = frame.index / self.info.fps
                    raise BudgetExceededError(
                        f"{self.info.path}: frame {frame.index} is {seconds:.0f} s into the "
                        f"video; at most {get_settings().max_video_duration_s:g} s of video per "
                        "analysis (MAX_VIDEO_DURATION_S)"
                    )
                if frame.index < current.span.start:
                    current.warm_up(frame, dets)
                    continue
                if not current.last and frame.index >= current.span.end:
                    self._complete(current)
                    if upcoming is None:
                        current = None  # type: ignore[assignment]
                        break
                    current, upcoming, asked_next = upcoming, None, False
                nxt = current.span.index + 1
                if (
                    not asked_next
                    and not current.last
                    and frame.index >= self.spans[nxt].warm_start
                ):
                    asked_next = True
                    if only is None or nxt in only:
                        lease_next = self.claim(nxt, [nxt])
                        if lease_next is not None:
                            upcoming = self._start(lease_next, last_index)
                current.add(frame, dets)
                if upcoming is not None:
                    upcoming.warm_up(frame, dets)
                self.frames += 1
                if self.progress:
                    self.progress(self.frames_before + self.frames, self.expected)
                if time.perf_counter() - last_report >= PROGRESS_INTERVAL_S:
                    last_report = time.perf_counter()
                    self.heartbeat.beat()  # progress for the API and dashboard
        finally:
            detected.close()  # type: ignore[attr-defined]
            self.loop_time += time.perf_counter() - loop_start
        for run in (current, upcoming):
            if run is not None:  # the stream ended (the last chunk, or a truncated file)
                self._complete(run)
        if end.complete:  # the real end: later chunks (a header's claim) are empty, never run
            skipped = staging.complete_chunks_past_end(self.analysis_id, end.decoded)
            if skipped:
                log.info(
                    "analysis %s: the video ends at frame %d; %d chunks past it completed empty",
                    self.analysis_id, end.decoded, skipped,
                )  # fmt: skip
        return self.last_done

    def _start(self, lease: staging.ChunkLease, last_index: int) -> ChunkRun:
        try:
            run = ChunkRun(
                self.spans[lease.chunk_index], lease, self, lease.chunk_index == last_index
            )
        except BaseException:  # e.g. a stage refusing its options: give the chunk back now
            staging.release_chunk(lease)
            raise
        self.heartbeat.hold(lease, run)
        return run

    def _check_chunk(self, run: ChunkRun) -> None:
        if run.span.index in self.heartbeat.lost_chunks:
            self.heartbeat.lost_chunks.discard(run.span.index)
            raise analyses.LeaseLostError(
                f"chunk {run.span.index} of analysis {self.analysis_id} was taken over"
            )

    def _complete(self, run: ChunkRun) -> None:
        run.complete()
        self.last_done = run.span.index
        self.heartbeat.drop(run.span.index)
        self.timings.update(run.timings)
