"""Model resolution: a name or path, searched offline first, downloaded only as a last resort.

Search order for a name such as `yolo11n`: `CAPSTONE_MODELS_DIR`; the user cache
(`~/.cache/capstone/models`); a path (relative to the working directory); then the
framework's own download, which is attempted only when `YOLO_OFFLINE` is not set.

Only trusted callers (the local CLI and the Python API) may pass a *path*: a `.pt` file is
a pickle, and loading it runs code. Untrusted callers (HTTP bodies, queue messages) name a
model from `available_models()` and go through `resolve_model_name`, which refuses paths.

>>> resolve_model("yolo11n")  # with CAPSTONE_MODELS_DIR=../shared/models  # doctest: +SKIP
PosixPath('.../shared/models/yolo11n_int8_openvino_model')
>>> is_model_name("yolo11n"), is_model_name("../downloads/evil.pt")
(True, False)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from capstone.config import get_settings
from capstone.errors import ModelNotFoundError

DEFAULT_DETECTOR = "yolo11n"
USER_CACHE = Path("~/.cache/capstone/models").expanduser()
# For a name, these spellings are tried in each directory, in order.
_VARIANTS = (
    "{name}",
    "{name}.pt",
    "{name}_int8_openvino_model",
    "{name}_openvino_model",
    "{name}.onnx",
)
_SUFFIXES = ("_int8_openvino_model", "_openvino_model", ".pt", ".onnx")
_MODEL_FILE_SUFFIXES = {".pt", ".onnx", ".xml", ".torchscript", ".engine", ".tflite"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")  # whole names only: `fullmatch`


def search_dirs() -> list[Path]:
    dirs: list[Path] = []
    models_dir = get_settings().capstone_models_dir
    if models_dir:
        dirs.append(models_dir.expanduser())
    dirs.append(USER_CACHE)
    return dirs


def is_model_name(value: str) -> bool:
    """A bare model name (no directory part, no `..`), as untrusted callers must give."""
    return bool(_NAME.fullmatch(value)) and ".." not in value


def _looks_like_model(path: Path) -> bool:
    if path.is_dir():
        return any(path.glob("*.xml")) or any(path.glob("*.onnx"))
    return path.is_file() and path.suffix.lower() in _MODEL_FILE_SUFFIXES


def available_models() -> dict[str, Path]:
    """Detector models found offline: name -> path, for `CAPSTONE_MODELS_DIR` and the cache.

    Each export is listed under its entry name and under its base name
    (`yolo11n_int8_openvino_model` also as `yolo11n`); the first directory wins.
    """
    found: dict[str, Path] = {}
    for directory in search_dirs():
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            base = next((entry.name[: -len(s)] for s in _SUFFIXES if entry.name.endswith(s)), None)
            if base is None or not _looks_like_model(entry):
                continue
            for name in (base, entry.name):
                if is_model_name(name):
                    found.setdefault(name, entry)
    return found


def resolve_model_name(name: str, allowed: dict[str, Path] | None = None) -> Path:
    """The path of an allow-listed model *name*; paths and unknown names raise."""
    allowed = available_models() if allowed is None else allowed
    if not is_model_name(name):
        raise ModelNotFoundError(f"model must be a name (one of: {_listing(allowed)}), not a path")
    if name not in allowed:
        raise ModelNotFoundError(f"unknown model {name!r}; available: {_listing(allowed)}")
    return allowed[name]


def _listing(allowed: dict[str, Path]) -> str:
    return ", ".join(sorted(allowed)) or "none (set CAPSTONE_MODELS_DIR)"


def resolve_model(name_or_path: str | Path, *, allow_download: bool | None = None) -> Path | str:
    """Return the local path of a model, or the bare name when the framework may download it.

    Trusted callers only (a path is loaded as given). Raises `ModelNotFoundError` naming
    every place it looked, or when a path exists but holds no model.
    """
    name = str(name_or_path)
    candidate = Path(name).expanduser()
    looked: list[str] = []
    if is_model_name(name):  # a bare name: the model directories first, then the cwd
        for directory in search_dirs():
            for pattern in _VARIANTS:
                path = directory / pattern.format(name=name)
                looked.append(str(path))
                if path.exists() and _looks_like_model(path):
                    return path
    if candidate.exists():
        if not _looks_like_model(candidate):
            raise ModelNotFoundError(
                f"{candidate.name!r} is not a model (expected a .pt/.onnx file or an "
                "OpenVINO export directory)"
            )
        return candidate
    looked.insert(0, str(candidate))
    if allow_download is None:
        allow_download = os.environ.get("YOLO_OFFLINE", "").lower() not in {"1", "true", "yes"}
    if allow_download and os.sep not in name:
        return name
    raise ModelNotFoundError(
        f"model {name!r} not found offline; looked in: {', '.join(looked)}"
        " (set CAPSTONE_MODELS_DIR or pass a path)"
    )
