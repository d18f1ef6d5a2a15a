"""Packaging: environment.yml must not drift from pyproject.toml; the lock pins them all."""

from __future__ import annotations

import tomllib

import yaml
from packaging.requirements import Requirement

from tests.conftest import ROOT


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {str(Requirement(r)) for r in reqs}


def _environment_requirements() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {str(Requirement(r)) for r in pip_section}


def test_environment_yml_matches_pyproject() -> None:
    assert _environment_requirements() == _pyproject_requirements()


def test_every_dependency_is_pinned_and_locked() -> None:
    locked: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            req = Requirement(line)
            locked[req.name.lower().replace("_", "-")] = str(req.specifier)
    for text in _pyproject_requirements():
        req = Requirement(text)
        assert str(req.specifier).startswith("=="), f"{text} is not pinned"
        name = req.name.lower().replace("_", "-")
        assert locked.get(name) == str(req.specifier), f"{text} differs from requirements.lock"
