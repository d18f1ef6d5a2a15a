"""Light commands stay light (issue 26): what `capstone --help`, `videos`, `events` and a
hybrid `search` import, and CLI tables that fit an 80-column terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from tests.conftest import ROOT

TRAINING_STACK = {"torch", "torchvision", "transformers", "sentence_transformers", "ultralytics"}
HEAVY = TRAINING_STACK | {"openvino", "cv2", "scipy", "pandas", "onnxruntime"}

# runs one command in a fresh interpreter and prints the top-level modules it imported
PROBE = """
import json, sys
from capstone.cli import main
sys.argv = ["capstone", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
print("\\nMODULES " + json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def imported_by(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("MODULES "), result.stdout + result.stderr
    return set(json.loads(line.removeprefix("MODULES ")))


def test_help_imports_neither_models_nor_settings_nor_the_database() -> None:
    loaded = imported_by("--help")
    assert not loaded & (HEAVY | {"numpy", "sqlalchemy", "psycopg", "pydantic_settings"})
    assert not loaded & HEAVY, imported_by("analyze", "--help")


def test_listing_commands_import_no_model_runtime(db_url: str) -> None:
    for argv in (("videos",), ("events", "no-such-video")):
        loaded = imported_by(*argv, env={"DATABASE_URL": db_url})
        assert "sqlalchemy" in loaded  # it did reach the database
        assert not loaded & HEAVY, (argv, loaded & HEAVY)


@pytest.mark.usefixtures("cold_model_cache")
def test_hybrid_search_embeds_text_without_the_training_stack(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capstone.config import get_settings
    from capstone.models import embedders

    home = tmp_path / "home"
    monkeypatch.setenv("CAPSTONE_HOME", str(home))
    get_settings.cache_clear()
    try:
        first = embedders.TextEmbedder()  # converts the encoder once and caches its IR
        assert first.backend == "openvino"
        light = embedders.TextEmbedder()  # a later process: tokenizer.json + the IR
        assert light.backend == "openvino" and light.model is None
        texts = ["a cyclist on the street", "word " * 400]  # the second is truncated
        assert (light.embed(texts) * first.embed(texts)).sum(axis=1).min() > 0.9999
    finally:
        get_settings.cache_clear()
    env = {"DATABASE_URL": db_url, "CAPSTONE_HOME": str(home)}
    loaded = imported_by("search", "a cyclist on the street", env=env)
    assert "openvino" in loaded and "tokenizers" in loaded  # it did embed the text
    assert not loaded & TRAINING_STACK, loaded & TRAINING_STACK


def test_the_help_lists_every_registered_stage() -> None:
    from capstone.cli.analyze import STAGE_NAMES
    from capstone.stages.params import ALL_STAGES

    assert STAGE_NAMES == ALL_STAGES


def test_tables_fit_80_columns_one_line_per_row() -> None:
    from capstone.cli.browse import EVENT_COLUMNS, VIDEO_COLUMNS
    from capstone.cli.tables import table

    long = "car 17 crossed line entrance-north northbound at 00:12.4 " * 3
    events = [
        {
            "frame_number": 100 + k,
            "timestamp": 3723.25,
            "event_type": "line_cross",
            "class_name": "motorcycle",
            "track_id": 12345,
            "confidence": 0.87,
            "bbox": [1234.5, 567.25, 1400.0, 700.75],
            "description": long,
        }
        for k in range(5)
    ]
    videos = [
        {
            "video_id": "cctv-entrance-2026-12-05",
            "title": "Entrance camera, morning " * 4,
            "status": "completed",
            "duration": 3600.0,
            "fps": 29.97,
            "width": 1920,
            "height": 1080,
            "created_at": "2026-12-05 18:00:00.123456+00:00",
        }
        for _ in range(3)
    ]
    for width in (80, 100, 160):
        for rows, columns in ((events, EVENT_COLUMNS), (videos, VIDEO_COLUMNS)):
            console = Console(width=width, file=io.StringIO())
            console.print(table("t", rows, columns, width))
            lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
            assert max(len(line) for line in lines) <= width
            body = [line for line in lines if line.startswith("│")]
            assert len(body) == len(rows), (width, lines)  # one line per row: nothing wrapped
            assert all(("1:02:03.2" in line or "1:00:00.0" in line) for line in body)
