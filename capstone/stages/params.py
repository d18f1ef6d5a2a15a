"""Analysis parameters: validated, canonical, hashed. (`video_id`, `params_hash`) names a result.

Stage options are checked here, when the parameters are made (a CLI call, an HTTP
request, a queue message, a notebook), against each stage's `Options` model: an unknown
key or a bad value is a `ValidationError` that names the option, never a failure when a
chunk starts.

>>> AnalysisParams(options={"anchor": "top"})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for AnalysisParams
options
  Value error, option 'anchor' (events): Input should be 'bottom' or 'center' [type=value_error, ...
>>> AnalysisParams(options={"no_such_option": 1})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for AnalysisParams
options
  Value error, unknown option 'no_such_option' (known: anchor, ...
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from capstone.stages.base import REGISTRY
from capstone.tracking.tracker import REVISION as TRACKING_REVISION
from capstone.tracking.tracker import TRACKERS

CORE_STAGES = ("detect", "track")
# Stored `params_hash` values list the stages in this order; stages added later follow it
# in name order (the order only makes the hash canonical, it is not a registry).
_HASH_ORDER = ("depth", "events", "display", "embed", "identity")


def optional_stage_names() -> tuple[str, ...]:
    """Every registered optional stage, in canonical order."""
    known = [n for n in _HASH_ORDER if n in REGISTRY]
    return (*known, *sorted(n for n in REGISTRY if n not in _HASH_ORDER))


OPTIONAL_STAGES = optional_stage_names()
ALL_STAGES = CORE_STAGES + OPTIONAL_STAGES


# Parameters read only by derived stages (`Stage.derived`), beside their options.
DERIVED_FIELDS = ("confirm_s",)


def derived_stage_names() -> tuple[str, ...]:
    """The registered stages whose result is recomputed from stored rows (`Stage.derived`)."""
    return tuple(n for n in optional_stage_names() if REGISTRY[n].derived)


def derived_option_keys() -> frozenset[str]:
    """Option keys read only by derived stages (a key another stage reads is upstream)."""
    derived = set(derived_stage_names())
    theirs = {k for n in derived for k in REGISTRY[n].Options.model_fields}
    others = {k for n, st in REGISTRY.items() if n not in derived for k in st.Options.model_fields}
    return frozenset(theirs - others)


def check_options(options: dict[str, Any]) -> None:
    """Raise `ValueError` naming the first unknown option or bad value."""
    owners: dict[str, list[str]] = {}
    for name, stage in REGISTRY.items():
        for key in stage.Options.model_fields:
            owners.setdefault(key, []).append(name)
    for key in options:
        if key not in owners:
            close = difflib.get_close_matches(str(key), owners, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown option {key!r}{hint} (known: {', '.join(sorted(owners))})")
    for name, stage in REGISTRY.items():
        try:
            stage.options_from(options)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            where = f"option {key!r} ({name})" if key else f"{name} options"
            raise ValueError(f"{where}: {msg}") from None


class AnalysisParams(BaseModel):
    """Everything that changes the result of an analysis.

    >>> AnalysisParams(stride=2).params_hash() == AnalysisParams(stride=2).params_hash()
    True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default="yolo11n", description="detector name or path")
    stride: int = Field(default=1, ge=1, le=1000, description="keep every Nth frame")
    target_fps: float | None = Field(
        default=None, gt=0, le=240, description="sample about this many frames per second"
    )
    tracker: str = Field(default="botsort", description="botsort or bytetrack")
    classes: tuple[str, ...] | None = Field(default=None, description="keep only these classes")
    conf: float = Field(default=0.25, ge=0.01, le=1.0, description="detector confidence")
    imgsz: int = Field(default=640, ge=32, le=4096)
    stages: tuple[str, ...] = Field(default=ALL_STAGES, description="stages to run")
    max_frames: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="stop after N sampled frames"
    )
    confirm_s: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="a track becomes an object (events, counts) once seen this long"
        " and in at least 3 samples",
    )
    detect_every: int | Literal["auto"] = Field(
        default=1,
        description="run the detector on every Nth sampled frame (1..30) and carry the"
        " tracks between detections by optical flow, or 'auto': when the picture changes,"
        " at least every 4th frame",
    )
    chunk_s: float = Field(
        default=60.0,
        ge=1.0,
        le=86400.0,
        description="seconds of video per chunk: rows are staged per chunk, a killed run"
        " resumes at its last staged chunk, and chunks can run on several workers",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="stage options (lines, zones, keyframe interval, ...)"
    )

    @field_validator("tracker")
    @classmethod
    def _known_tracker(cls, value: str) -> str:
        if value not in TRACKERS:
            raise ValueError(f"tracker must be one of {', '.join(TRACKERS)}")
        return value

    @field_validator("detect_every", mode="before")
    @classmethod
    def _detect_every(cls, value: Any) -> int | str:
        if value == "auto":
            return "auto"
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 30:
            raise ValueError("detect_every must be an integer from 1 to 30, or 'auto'")
        return value

    @field_validator("options")
    @classmethod
    def _valid_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_options(value)
        return value

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in ALL_STAGES]
        if unknown:
            raise ValueError(
                f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(ALL_STAGES)}"
            )
        return tuple(s for s in ALL_STAGES if s in value or s == "detect")

    @model_validator(mode="after")
    def _one_sampling(self) -> AnalysisParams:
        if self.target_fps is not None and self.stride != 1:
            raise ValueError("give either stride or target_fps, not both")
        return self

    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def params_hash(self) -> str:
        """The name of the result: the parameters, the tracking revision and the revisions
        of its stages (`Stage.revision`), so results made by an earlier tracker or stage are
        never served as results of the current one."""
        return _hash(self.canonical())

    def upstream(self) -> dict[str, Any]:
        """The part of `canonical()` that decides the stored detections, tracks and every
        stage that needs pixels: without the `derived` stages (`Stage.derived`: events),
        their options and `DERIVED_FIELDS`. Two analyses of a video with equal `upstream()`
        have the same detection and track rows, so one can reuse the other's.

        >>> base = AnalysisParams().upstream_hash()
        >>> line = {"lines": [{"name": "A", "points": [[0, 5], [9, 5]]}]}
        >>> AnalysisParams(options=line, confirm_s=2).upstream_hash() == base
        True
        >>> AnalysisParams(conf=0.5).upstream_hash() == base
        False
        >>> AnalysisParams(stages=("track", "events")).upstream_hash() == (
        ...     AnalysisParams(stages=("track",)).upstream_hash())
        True
        """
        data = self.canonical()
        derived = derived_stage_names()
        for name in DERIVED_FIELDS:
            data.pop(name, None)
        data["stages"] = [s for s in data["stages"] if s not in derived]
        keys = derived_option_keys()
        data["options"] = {k: v for k, v in data["options"].items() if k not in keys}
        return data

    def upstream_hash(self) -> str:
        """The hash of `upstream()` (stored beside `params_hash` with each result)."""
        return _hash(self.upstream())

    def derived_stages(self) -> tuple[str, ...]:
        """The enabled stages recomputed from stored rows when upstream rows are reused."""
        return tuple(s for s in self.optional_stages() if s in derived_stage_names())

    def runs(self, stage: str) -> bool:
        return stage in self.stages

    def optional_stages(self) -> tuple[str, ...]:
        """The enabled stages beyond detect and track, in canonical order."""
        return tuple(s for s in self.stages if s in REGISTRY)


def _hash(data: dict[str, Any]) -> str:
    if TRACKING_REVISION > 1:
        data = {**data, "tracking_revision": TRACKING_REVISION}
    revisions = {
        n: REGISTRY[n].revision
        for n in data.get("stages", ())
        if n in REGISTRY and REGISTRY[n].revision > 1
    }
    if revisions:
        data = {**data, "stage_revisions": revisions}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
