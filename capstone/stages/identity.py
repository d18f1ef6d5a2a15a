"""The `identity` stage: offline identity repair after tracking (see `capstone.tracking.repair`).

While a chunk's frames stream by it keeps the first and last few crops of every track; at
the chunk's end it turns them into one re-id feature per track end (its chunk state), so no
crop outlives its chunk. Once every chunk is staged and stitched, `publish` links track
fragments into identities (motion continuity + re-id appearance + class) over the whole
video, stores each track's `identity_id` next to its raw tracker id, and adds interpolated
boxes for short gaps inside an identity as `detection` events with
`attributes.interpolated`.

Options (`AnalysisParams.options`): `identity_max_gap_s`, `identity_max_gap_motion_s`,
`identity_max_motion`, `identity_motion_per_s`, `identity_max_appearance`,
`identity_appearance_margin`, `identity_interpolate_max_s` (see `RepairConfig`).

`capstone eval mot --video` scores exactly this (`capstone.eval.mot.analyze_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from capstone.core.detections import Detections
from capstone.core.records import Record
from capstone.core.video import Frame
from capstone.stages.base import Number, RunContext, Stage, StageOptions, VideoResult
from capstone.tracking.repair import (
    CropAppearance,
    EndFeatures,
    Fragment,
    RepairConfig,
    default_embedder,
    repair_fragments,
)

NonNegative = Annotated[Number, Field(ge=0)]


class IdentityOptions(StageOptions):
    """Overrides of `RepairConfig` thresholds (unset: the tuned defaults)."""

    identity_max_gap_s: NonNegative | None = None
    identity_max_gap_motion_s: NonNegative | None = None
    identity_max_motion: NonNegative | None = None
    identity_motion_per_s: NonNegative | None = None
    identity_max_appearance: NonNegative | None = None
    identity_appearance_margin: NonNegative | None = None
    identity_interpolate_max_s: NonNegative | None = None


def config_from_options(options: Mapping[str, Any]) -> RepairConfig:
    """`RepairConfig` with the `identity_*` options of `AnalysisParams.options` applied.

    >>> config_from_options({"identity_max_gap_s": 2}).max_gap_s
    2.0
    """
    chosen = IdentityOptions.pick(options).model_dump(exclude_none=True)
    return RepairConfig(**{key.removeprefix("identity_"): value for key, value in chosen.items()})


def _vector(value: np.ndarray | None) -> list[float] | None:
    return None if value is None else [round(float(v), 6) for v in value]


class IdentityStage(Stage):
    name = "identity"
    Options = IdentityOptions
    emits = (Record.EVENT,)  # the boxes of short gaps, interpolated

    def __init__(self, ctx: RunContext) -> None:
        self.config = config_from_options(ctx.params.options)
        self.appearance = CropAppearance()  # the re-id model is loaded only when needed

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        if detections.tracker_id is None:
            return
        for box, track_id in zip(detections.xyxy, detections.tracker_id, strict=True):
            self.appearance.add(int(track_id), frame.image, box)

    def end_chunk(self, ctx: RunContext) -> dict[str, Any]:
        """The re-id feature of each end of each of the chunk's tracks."""
        if not self.appearance.head:
            return {"features": {}}
        self.appearance.embedder = default_embedder()
        features = self.appearance.all_end_features()
        self.appearance = CropAppearance()
        return {
            "features": {
                str(tid): {side: _vector(vec) for side, vec in ends.items()}
                for tid, ends in features.items()
            }
        }

    @classmethod
    def publish(cls, video: VideoResult) -> None:
        """Link the video's (stitched) tracks into identities; emit the gap boxes."""
        obs = video.observations
        if not len(obs):
            return
        per_staged: dict[int, dict[str, Any]] = {}
        for state in video.states(cls.name):
            for k, ends in state["features"].items():
                per_staged[int(k)] = {
                    side: None if v is None else np.asarray(v, np.float32)
                    for side, v in ends.items()
                }
        features: dict[int, dict[str, Any]] = {}
        fragments = []
        for tid, part in obs.by_track():
            summary = video.tracks[tid]
            own = obs[part]
            own.confidence = np.full(len(own), summary.mean_confidence)  # scored per track
            fragments.append(Fragment(own, summary.class_name))
            staged = video.members.get(tid, [tid])
            features[tid] = {
                "head": per_staged.get(staged[0], {}).get("head"),
                "tail": per_staged.get(staged[-1], {}).get("tail"),
            }
        config = config_from_options(video.params.options)
        appearance = EndFeatures(features) if any(
            v is not None for ends in features.values() for v in ends.values()
        ) else None  # fmt: skip
        result = repair_fragments(
            fragments, video.info.fps, appearance, config, frame_step=video.frame_step
        )
        for track_id, summary in video.tracks.items():
            summary.extra["identity_id"] = result.identity_of.get(track_id, track_id)
        filled = result.interpolated
        for frame, track_id, xyxy in zip(
            filled["frame"].tolist(),
            filled.tracker_id.tolist(),  # type: ignore[union-attr]
            filled.xyxy.tolist(),
            strict=True,
        ):
            video.emit(
                Record.EVENT,
                {
                    "frame_number": frame,
                    "timestamp": round(frame / video.info.fps, 4),
                    "event_type": "detection",
                    "class_name": video.tracks[track_id].class_name,
                    "confidence": None,
                    "bbox": [round(v, 2) for v in xyxy],
                    "track_id": track_id,
                    "attributes": {
                        "interpolated": True,
                        "identity_id": result.identity_of.get(track_id, track_id),
                    },
                },
            )
        video.timings["identity_links"] = float(len(result.links))
        video.timings["identity_camera_motion"] = float(result.camera_motion)
