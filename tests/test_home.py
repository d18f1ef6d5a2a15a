"""One state directory whatever the working directory (CAPSTONE_HOME's default).

A kernel or papermill started in `notebooks/` must use the same `.capstone/` (and so the
same embedded database) as `capstone` run from the project root; an explicit CAPSTONE_HOME
still wins; an installed (non-source) package falls back to a per-user directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capstone import config
from capstone.config import Settings, get_settings
from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture
def no_home_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CAPSTONE_HOME", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_default_home_is_the_project_root_whatever_the_cwd(
    no_home_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert config.PROJECT_ROOT == ROOT
    homes = []
    for cwd in (ROOT, NOTEBOOKS, tmp_path):
        monkeypatch.chdir(cwd)
        settings = Settings()
        homes.append((settings.home, settings.pgdata, settings.home_origin))
    assert homes == [(ROOT / ".capstone", ROOT / ".capstone" / "pgdata", "project root")] * 3


def test_a_process_started_in_notebooks_resolves_the_same_home() -> None:
    # a kernel in notebooks/ imports the (editable) install, like papermill started there
    env = {k: v for k, v in os.environ.items() if k not in {"CAPSTONE_HOME", "PYTHONPATH"}}
    code = "from capstone.config import get_settings; print(get_settings().pgdata)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=NOTEBOOKS,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == str(ROOT / ".capstone" / "pgdata")


def test_explicit_capstone_home_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_home_env: None
) -> None:
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(NOTEBOOKS)
    settings = Settings()
    assert settings.home == tmp_path / "state" and settings.home_origin == "CAPSTONE_HOME"
    # a relative value is the user's choice: it is taken relative to the working directory
    monkeypatch.setenv("CAPSTONE_HOME", "rel-state")
    monkeypatch.chdir(tmp_path)
    assert Settings().home == tmp_path / "rel-state"


def test_models_are_cached_under_the_home_unless_a_model_cache_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("CAPSTONE_MODEL_CACHE", raising=False)
    assert Settings().model_cache == tmp_path / "state" / "cache" / "openvino"
    monkeypatch.setenv("CAPSTONE_MODEL_CACHE", str(tmp_path / "shared-models"))
    assert Settings().model_cache == tmp_path / "shared-models"
    assert Settings().home == tmp_path / "state"  # only the model cache moves
    # a kernel starts in notebooks/: it gets the cache as an absolute path
    from capstone.runtime.notebooks import kernel_environment

    monkeypatch.setenv("CAPSTONE_MODEL_CACHE", "rel-models")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        assert kernel_environment()["CAPSTONE_MODEL_CACHE"] == str(tmp_path / "rel-models")
    finally:
        get_settings.cache_clear()


def test_outside_a_source_checkout_the_default_is_per_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_home_env: None
) -> None:
    monkeypatch.setattr(config, "PROJECT_ROOT", None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(NOTEBOOKS)
    settings = Settings()
    assert settings.home == tmp_path / "xdg" / "capstone"
    assert settings.home_origin == "per-user default"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert Settings().home == tmp_path / "user" / ".local" / "share" / "capstone"


def test_db_status_names_the_home_and_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_home_env: None
) -> None:
    from capstone.cli.db import app

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    monkeypatch.setenv("CAPSTONE_HOME", str(tmp_path / "state"))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert f"home: {tmp_path / 'state'} (from CAPSTONE_HOME)" in result.output
    assert f"data dir: {tmp_path / 'state' / 'pgdata'}" in result.output
    assert "embedded server: stopped" in result.output  # status never starts a server
    assert not (tmp_path / "state" / "pgdata").exists()


def test_db_status_from_notebooks_names_the_project_root_home(
    db_url: str, monkeypatch: pytest.MonkeyPatch, no_home_env: None
) -> None:
    from capstone.cli.db import app

    monkeypatch.chdir(NOTEBOOKS)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert f"home: {ROOT / '.capstone'} (from project root)" in result.output
    assert f"url: {db_url}" in result.output and "schema:" in result.output
