"""A first `capstone analyze` on a fresh machine prints our progress and summary only
(issue 20): no Ultralytics settings notice, no transformers config warning, and the
Ultralytics settings file lives under CAPSTONE_HOME, not in the user's home.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, VIDEOS, require

THIRD_PARTY_NOISE = (
    "Ultralytics Settings",  # "Creating new Ultralytics Settings v0.0.8 file ✅"
    "yolo settings",  # "View Ultralytics Settings with 'yolo settings' ..."
    "docs.ultralytics.com",
    "loss_type",  # "[transformers] `loss_type=None` was set in the config but ..."
    "[transformers]",
    "Warning:",  # any Python warning (UserWarning:, FutureWarning:, ...)
)


@pytest.mark.slow  # every stage's models load (about 35 s here), for 3 frames
def test_first_analyze_prints_no_third_party_noise(db_url: str, tmp_path: Path) -> None:
    clip = require(VIDEOS / "bikes.mp4")
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    drop = ("YOLO_CONFIG_DIR", "XDG_CONFIG_HOME", "YOLO_VERBOSE", "TRANSFORMERS_VERBOSITY")
    drop += ("CAPSTONE_MODEL_CACHE",)  # a first run: every model is converted
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "CAPSTONE_DEBUG"}
    env.update(HOME=str(home), CAPSTONE_HOME=str(state), DATABASE_URL=db_url)
    result = subprocess.run(
        [sys.executable, "-m", "capstone", "analyze", str(clip), "--max-frames", "3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed[-3000:]
    assert "analysis" in result.stdout and "completed" in result.stdout, printed
    for noise in THIRD_PARTY_NOISE:
        assert noise not in printed, printed
    assert (state / "Ultralytics" / "settings.json").is_file()
    assert not list(home.rglob("settings.json"))
    assert not (home / ".config" / "Ultralytics").exists()
