"""Model resolution: a name or path, searched offline first, downloaded only as a last resort.

Search order for a name such as `yolo11n`: an explicit path; `CAPSTONE_MODELS_DIR`;
the user cache (`~/.cache/capstone/models`); then the framework's own download, which is
attempted only when `YOLO_OFFLINE` is not set.

>>> resolve_model("yolo11n")  # doctest: +SKIP
PosixPath('../shared/models/yolo11n_int8_openvino_model')
"""

from __future__ import annotations

import os
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


def search_dirs() -> list[Path]:
    dirs: list[Path] = []
    models_dir = get_settings().capstone_models_dir
    if models_dir:
        dirs.append(models_dir.expanduser())
    dirs.append(USER_CACHE)
    return dirs


def resolve_model(name_or_path: str | Path, *, allow_download: bool | None = None) -> Path | str:
    """Return the local path of a model, or the bare name when the framework may download it.

    Raises `ModelNotFoundError` naming every place it looked.
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.exists():
        return candidate
    name = str(name_or_path)
    looked: list[str] = [str(candidate)]
    if os.sep not in name:
        for directory in search_dirs():
            for pattern in _VARIANTS:
                path = directory / pattern.format(name=name)
                looked.append(str(path))
                if path.exists():
                    return path
    if allow_download is None:
        allow_download = os.environ.get("YOLO_OFFLINE", "").lower() not in {"1", "true", "yes"}
    if allow_download and os.sep not in name:
        return name
    raise ModelNotFoundError(
        f"model {name!r} not found offline; looked in: {', '.join(looked)}"
        " (set CAPSTONE_MODELS_DIR or pass a path)"
    )
