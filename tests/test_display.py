"""Display stage and keyframe choice, through the real pipeline and database."""

from __future__ import annotations

import io
from collections import Counter

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from capstone.core.detections import Detections
from capstone.core.video import iter_frames
from capstone.runtime.pipeline import analyze
from capstone.stages.display import annotate_thumbnail, downsample_trail
from capstone.stages.keyframes import KeyframeSelector
from capstone.stages.params import AnalysisParams
from tests.conftest import VIDEOS, require

PETS = VIDEOS / "pets09-s2l1.avi"
BIKES = VIDEOS / "bikes.mp4"


def _rows(url: str, sql: str, **params: object) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).all()
    engine.dispose()
    return rows


def test_keyframes_every_interval_and_on_scene_cuts() -> None:
    selector = KeyframeSelector.from_options({"keyframe_every_s": 2.0})
    chosen = [
        (f.index, f.timestamp)
        for f in iter_frames(require(BIKES))
        if selector.is_keyframe(f.timestamp, f.image)
    ]
    assert chosen[0][0] == 0 and selector.reasons[0] == "first"
    gaps = np.diff([t for _, t in chosen])
    assert gaps.max() <= 2.0 + 1e-6  # never more than the interval between keyframes
    # bikes.mp4 has scene cuts: some keyframes come from them, off the 2 s grid
    assert "scene" in selector.reasons
    # a static camera yields only interval keyframes
    static = KeyframeSelector()
    picks = [static.is_keyframe(f.timestamp, f.image) for f in iter_frames(PETS, max_frames=60)]
    assert sum(picks) == 3 and set(static.reasons) == {"first", "interval"}  # 0, 2, 4 s at 10 fps


def test_thumbnail_is_scaled_and_trail_keeps_ends() -> None:
    image = np.zeros((576, 768, 3), np.uint8)
    dets = Detections(
        np.array([[100, 100, 200, 300]]), np.array([0.9]), np.array([0]), np.array([7]),
        {0: "person"},
    )  # fmt: skip
    thumb, scale = annotate_thumbnail(image, dets, 320)
    assert thumb.shape == (240, 320, 3) and scale == pytest.approx(320 / 768)
    assert thumb.sum() > 0  # the box and label were drawn
    assert image.sum() == 0  # on a copy
    points = [(float(i), 0.0, i) for i in range(100)]
    trail = downsample_trail(points, 10.0)
    assert trail[0][2] == 0 and trail[-1][2] == 99 and len(trail) == 11


@pytest.mark.slow
def test_display_rows_in_database(db_url: str) -> None:
    result = analyze(
        require(PETS),
        video_id="pets-display",
        params=AnalysisParams(stages=("detect", "track", "display"), max_frames=50),
    )
    assert result.status == "completed", result.error
    assert "display" in result.timings
    aid = result.analysis_id
    kinds = Counter(
        r[0]
        for r in _rows(db_url, "SELECT kind FROM apps_db_displaydata WHERE analysis_id=:a", a=aid)
    )
    assert kinds == {"thumbnail": 3, "trails": 1, "heatmap": 1, "counts": 1}  # 0, 2, 4 s

    thumbs = _rows(
        db_url,
        "SELECT frame_number, image, data FROM apps_db_displaydata "
        "WHERE analysis_id=:a AND kind='thumbnail' ORDER BY frame_number",
        a=aid,
    )
    assert [t[0] for t in thumbs] == [0, 20, 40]
    for frame_number, jpeg, data in thumbs:
        assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape == (240, 320, 3) and len(jpeg) < 40_000
        stored = _rows(
            db_url,
            "SELECT count(*) FROM apps_db_event WHERE analysis_id=:a AND frame_number=:f "
            "AND event_type='detection'",
            a=aid,
            f=frame_number,
        )[0][0]
        assert len(data["objects"]) == stored == sum(data["counts"].values())

    detections = _rows(
        db_url,
        "SELECT class_name, count(*) FROM apps_db_event WHERE analysis_id=:a "
        "AND event_type='detection' GROUP BY class_name",
        a=aid,
    )
    per_class = {c: n for c, n in detections}
    (heat,) = _rows(
        db_url,
        "SELECT data, image FROM apps_db_displaydata WHERE analysis_id=:a AND kind='heatmap'",
        a=aid,
    )
    data, png = heat
    assert (data["grid_w"], data["grid_h"]) == (64, 48)
    assert np.array(data["counts"]).shape == (48, 64)
    assert int(np.sum(data["counts"])) == sum(per_class.values())
    assert {k: int(np.sum(v)) for k, v in data["per_class"].items()} == per_class
    assert Image.open(io.BytesIO(png)).format == "PNG"

    ((counts,),) = _rows(
        db_url, "SELECT data FROM apps_db_displaydata WHERE analysis_id=:a AND kind='counts'", a=aid
    )
    assert sum(counts["frames"]) == 50 and counts["t"][:2] == [0.0, 1.0]
    for cls, n in per_class.items():
        total = sum(m * f for m, f in zip(counts["mean"][cls], counts["frames"], strict=True))
        assert total == pytest.approx(n, abs=0.01 * len(counts["t"]))

    ((trails,),) = _rows(
        db_url, "SELECT data FROM apps_db_displaydata WHERE analysis_id=:a AND kind='trails'", a=aid
    )
    tracks = {r[0]: (r[1], r[2]) for r in _rows(
        db_url, "SELECT track_id, first_frame, last_frame FROM apps_db_track WHERE analysis_id=:a",
        a=aid,
    )}  # fmt: skip
    assert {t["track_id"] for t in trails["tracks"]} == set(tracks)
    for t in trails["tracks"]:
        assert (t["points"][0][2], t["points"][-1][2]) == tracks[t["track_id"]]
        assert all(0 <= x <= 768 and 0 <= y <= 576 for x, y, _ in t["points"])


def test_bad_display_option_is_refused_before_the_analysis_starts() -> None:
    """A bad option is a configuration error when the parameters are made (the CLI's exit
    2, the API's 422), named in one line: no analysis starts that could only fail."""
    with pytest.raises(ValueError) as err:
        AnalysisParams(stages=("detect", "display"), max_frames=2, options={"heatmap_grid": "big"})
    reason = err.value.errors()[0]["msg"]  # type: ignore[attr-defined]
    assert "heatmap_grid" in reason
    assert "\n" not in reason
