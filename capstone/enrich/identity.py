"""The `identity` stage: offline identity repair after tracking (see `capstone.identity`).

While frames stream by it keeps the first and last few crops of every track; at the end it
links track fragments into identities (motion continuity + re-id appearance + class),
stores each track's `identity_id` next to its raw tracker id, and adds interpolated boxes
for short gaps inside an identity as `detection` events with `attributes.interpolated`.

Options (`AnalysisParams.options`): `identity_max_gap_s`, `identity_max_gap_motion_s`,
`identity_max_motion`, `identity_motion_per_s`, `identity_max_appearance`,
`identity_appearance_margin`, `identity_interpolate_max_s` (see `RepairConfig`).

`capstone eval mot --video` scores exactly this (`capstone.evaluate.analyze_rows`).
"""

from __future__ import annotations

from capstone.detections import Detections
from capstone.identity import (
    CropAppearance,
    Observation,
    RepairConfig,
    default_embedder,
    repair_identities,
)
from capstone.media import Frame
from capstone.stage import Rows, RunContext

_OPTION_FIELDS = {
    "identity_max_gap_s": "max_gap_s",
    "identity_max_gap_motion_s": "max_gap_motion_s",
    "identity_max_motion": "max_motion",
    "identity_motion_per_s": "motion_per_s",
    "identity_max_appearance": "max_appearance",
    "identity_appearance_margin": "appearance_margin",
    "identity_interpolate_max_s": "interpolate_max_s",
}


def config_from_options(options: dict) -> RepairConfig:
    """`RepairConfig` with the `identity_*` options of `AnalysisParams.options` applied."""
    return RepairConfig(
        **{field: float(options[key]) for key, field in _OPTION_FIELDS.items() if key in options}
    )


def stage_observations(tracks: dict) -> list[Observation]:
    """The observations the stage repairs: every track's stored (clipped) boxes, with the
    track's mean confidence."""
    return [
        Observation(frame, summary.track_id, xyxy, summary.mean_confidence, summary.class_name)
        for summary in tracks.values()
        for frame, _, xyxy in summary.observations
    ]


class IdentityStage:
    name = "identity"

    def __init__(self, ctx: RunContext) -> None:
        self.config = config_from_options(ctx.params.options)
        self.appearance = CropAppearance()  # the re-id model is loaded only when needed
        self.step = max(1, round(ctx.info.fps / ctx.sample_fps))

    def process(self, frame: Frame, detections: Detections, ctx: RunContext) -> None:
        if detections.tracker_id is None:
            return
        for box, track_id in zip(detections.xyxy, detections.tracker_id, strict=True):
            self.appearance.add(int(track_id), frame.image, box)

    def finish(self, ctx: RunContext) -> Rows:
        observations = stage_observations(ctx.tracks)
        if not observations:
            return {}
        self.appearance.embedder = default_embedder()
        result = repair_identities(
            observations, ctx.info.fps, self.appearance, self.config, frame_step=self.step
        )
        for track_id, summary in ctx.tracks.items():
            summary.extra["identity_id"] = result.identity_of.get(track_id, track_id)
        class_of = {s.track_id: s.class_name for s in ctx.tracks.values()}
        events = [
            {
                "frame_number": o.frame,
                "timestamp": round(o.frame / ctx.info.fps, 4),
                "event_type": "detection",
                "class_name": class_of.get(o.track_id, o.class_name),
                "confidence": None,
                "bbox": [round(v, 2) for v in o.xyxy],
                "track_id": o.track_id,
                "attributes": {
                    "interpolated": True,
                    "identity_id": result.identity_of.get(o.track_id, o.track_id),
                },
            }
            for o in result.interpolated
        ]
        ctx.timings["identity_links"] = float(len(result.links))
        ctx.timings["identity_camera_motion"] = float(result.camera_motion)
        return {"apps_db_event": events}
