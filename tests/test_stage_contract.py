"""The stage contract (`capstone.stages.base`) and stage options checked at submission."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from capstone.core.records import Record
from capstone.stages.base import REGISTRY, Stage, StageOptions, publish_order, unregister
from capstone.stages.params import ALL_STAGES, AnalysisParams
from capstone.store.bulk import TABLE_OF
from tests.conftest import ROOT

# A stored result is named by (video_id, params_hash): these hashes must not change by
# accident (a refactor, a new stage registered beside them). Each case names its stages
# and tracker, so adding a default stage does not touch them; a deliberate change of what
# tracking does bumps `tracking.tracker.REVISION`, and the hashes with it.
_EVENTS = ("detect", "track", "events")
STORED_HASHES = {
    "events": ({"stages": _EVENTS}, "9e373d333f0aac6f5d3e8f4899a3681e"),
    "stride": ({"stages": _EVENTS, "stride": 2}, "c68431c41a98161b03c5994af7db8c38"),
    "a line": (
        {"stages": _EVENTS, "options": {"lines": [{"name": "A", "points": [[0, 0], [1, 1]]}]}},
        "56ae63d8b323913ea51f26d650872d91",
    ),
    "stage order": (
        {"stages": ("detect", "track", "identity", "events", "display")},
        "9a59a1e5a3a1ec08a139102a69c1dd4f",
    ),
    "attributes revision 6": (
        {"stages": ("detect", "track", "attributes")},
        "0b8081e9fd3868061be20514bc019237",
    ),
}
# Results stored by earlier tracking revisions (1: Ultralytics' trackers as shipped,
# ByteTrack by default): the current tracker would track them differently, so they are
# not current.
EARLIER_TRACKER_HASHES = {
    "defaults": ({}, "a919c21a37ae78d4b1b9d37c587adca3"),
    "events only": (
        {"stages": _EVENTS, "tracker": "bytetrack"},
        "e259d794cd0aad6272ba72658d2ebc95",
    ),
    # revision 2: our settings, but the Kalman filter's velocity noise of a 30 fps stream
    # at every frame rate
    "revision 2, events": (
        {"stages": _EVENTS, "tracker": "botsort"},
        "8b8a9722c07d6c9a6cefc3470692c056",
    ),
    "revision 2, stride": (
        {"stages": _EVENTS, "tracker": "botsort", "stride": 2},
        "f13d44016e59e010feb502bfc99090d8",
    ),
    # revision 3: the velocity noise of the box sizes scaled with that of the positions
    "revision 3, events": (
        {"stages": _EVENTS, "tracker": "botsort"},
        "522d747eb554ee44b4883dbf022ce862",
    ),
    "revision 3, stride": (
        {"stages": _EVENTS, "tracker": "botsort", "stride": 2},
        "ab9137966bac51fb8e7e3039f8f8b82a",
    ),
    # revision 4: no re-association check (a track given back to someone else after a gap)
    "revision 4, events": (
        {"stages": _EVENTS, "tracker": "botsort"},
        "b83e97f544ebab967d502b6e28ae71e4",
    ),
    "revision 4, stride": (
        {"stages": _EVENTS, "tracker": "botsort", "stride": 2},
        "0ce3a16a04ca9ec9fa4bfd855af6bf88",
    ),
}


# Attributes stored by revision 1 of the stage (colours read without the frame's levels).
ATTRIBUTES_REVISION_1 = (
    {"stages": ("detect", "track", "attributes"), "tracker": "botsort"},
    "4c65bdb947d4822476879ddaf47f58c6",
    "e03cc5346f34d13b47ae20e8305b74d6",
)


@pytest.mark.parametrize("case", sorted(STORED_HASHES))
def test_params_hash_of_stored_results_is_unchanged(case: str) -> None:
    fields, expected = STORED_HASHES[case]
    assert AnalysisParams(tracker="botsort", **fields).params_hash() == expected


@pytest.mark.parametrize("case", sorted(EARLIER_TRACKER_HASHES))
def test_results_of_an_earlier_tracker_are_not_current(case: str) -> None:
    fields, stored = EARLIER_TRACKER_HASHES[case]
    assert AnalysisParams(**fields).params_hash() != stored


def test_results_of_an_earlier_stage_revision_are_not_current_nor_reused() -> None:
    fields, params_hash, upstream_hash = ATTRIBUTES_REVISION_1
    params = AnalysisParams(**fields)
    assert params.params_hash() != params_hash
    assert params.upstream_hash() != upstream_hash
    # revision 2: each track's own movement (3: the movement of its repaired identity)
    assert params.params_hash() != "f6d3c3286a2526f76dea2831bb1b047d"
    # revision 3: no direction for a track too brief to move half its height
    current = AnalysisParams(stages=("detect", "track", "attributes"), tracker="botsort")
    assert current.params_hash() != "d31a1a8a5934a4a9a679b77fe9a6c5d7"
    # revision 4: no `pause_s`
    assert current.params_hash() != "23e083889a79a0a50a1bdb64f61bcbe9"
    # revision 5: no `pause_heat` (tracking revision 5)
    assert current.params_hash() != "cd7f6bdc96c4b281596c42b916bf17fe"
    # a revision of a stage that is not enabled changes nothing
    assert (
        AnalysisParams(stages=_EVENTS, tracker="botsort").params_hash()
        == (STORED_HASHES["events"][1])
    )


def test_every_stage_declares_options_dependencies_and_records() -> None:
    assert set(ALL_STAGES) == {"detect", "track", *REGISTRY}
    for name, stage in REGISTRY.items():
        assert stage.name == name
        assert issubclass(stage.Options, StageOptions)
        assert stage.Options() == stage.options_from({})  # defaults need no option
        assert stage.emits and all(kind in TABLE_OF for kind in stage.emits)
        assert set(stage.after) <= set(REGISTRY)
    order = publish_order(REGISTRY)
    for name, stage in REGISTRY.items():
        assert all(order.index(before) < order.index(name) for before in stage.after)


def test_one_class_registers_a_stage_and_its_options_are_checked() -> None:
    class HeatOptions(StageOptions):
        heat_gain: float = 1.0

    class Heat(Stage):
        name = "heat_test"
        Options = HeatOptions
        after = ("events",)
        emits = (Record.EVENT,)

    try:
        assert "heat_test" in REGISTRY
        assert AnalysisParams(options={"heat_gain": 2.0}).options == {"heat_gain": 2.0}
        with pytest.raises(ValidationError, match="heat_gain"):
            AnalysisParams(options={"heat_gain": "hot"})
        order = publish_order(["heat_test", "events", "identity"])
        assert order.index("events") < order.index("heat_test")
    finally:
        unregister("heat_test")
    with pytest.raises(ValidationError, match="unknown option 'heat_gain'"):
        AnalysisParams(options={"heat_gain": 2.0})


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"anchor": "top"}, "'anchor'"),
        ({"no_such_option": 1}, "unknown option 'no_such_option'"),
        ({"ancor": "bottom"}, "did you mean 'anchor'"),
        ({"depth_every_s": -1}, "'depth_every_s'"),
        ({"heatmap_grid": [0, 48]}, "'heatmap_grid"),
        ({"embed_tracks": "yes"}, "'embed_tracks'"),
        ({"count_every_s": True}, "'count_every_s'"),
        ({"identity_max_gap_s": "long"}, "'identity_max_gap_s'"),
        ({"lines": [{"name": "A"}]}, "line 'A'"),
    ],
)
def test_bad_options_are_refused_when_the_parameters_are_made(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        AnalysisParams(options=options)


def test_options_of_disabled_stages_are_checked_too() -> None:
    with pytest.raises(ValidationError, match="'anchor'"):
        AnalysisParams(stages=("detect", "track"), options={"anchor": "top"})


@pytest.mark.parametrize(
    ("options", "named"),
    [('{"anchor": "top"}', "'anchor'"), ('{"no_such_option": 1}', "'no_such_option'")],
)
def test_cli_refuses_bad_options_before_reading_the_video(
    tmp_path: Any, options: str, named: str
) -> None:
    """Exit 2 and one line naming the option; the video (here: none) is never opened."""
    path = tmp_path / "options.json"
    path.write_text(options)
    env = {**os.environ, "CAPSTONE_HOME": str(tmp_path / "home")}
    argv = ["analyze", str(tmp_path / "none.mp4"), "--options", str(path)]
    done = subprocess.run(
        [sys.executable, "-m", "capstone", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "pgdata").exists()  # refused before any database work
