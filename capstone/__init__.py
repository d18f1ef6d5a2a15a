"""capstone: a video-analytics workbench.

Stages are plain functions, usable one by one in a notebook and composed by the pipeline.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _keep_ultralytics_settings_in_home() -> None:
    """Ultralytics writes its settings file (and says so in three lines) on first import,
    in the user's config dir unless YOLO_CONFIG_DIR names another: use `CAPSTONE_HOME`
    (`<home>/Ultralytics/settings.json`). It must be set before anything imports
    ultralytics, hence here."""
    if _os.environ.get("YOLO_CONFIG_DIR"):
        return
    try:
        from capstone.config import Settings, default_home

        try:
            home = Settings().home  # not get_settings(): its cache would outlive env changes
        except Exception:  # bad settings are reported where they are used
            home = default_home()
    except Exception:  # pragma: no cover (config unimportable: leave ultralytics' default)
        return
    _os.environ["YOLO_CONFIG_DIR"] = str(home)


class _BeforeUltralytics:
    """Runs `_keep_ultralytics_settings_in_home` when `ultralytics` is first imported (not
    here: reading the settings costs pydantic, and `capstone --help` needs none of it)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "ultralytics":
            if self in _sys.meta_path:
                _sys.meta_path.remove(self)
            _keep_ultralytics_settings_in_home()
        # None: the regular finders import it


if "ultralytics" in _sys.modules:  # pragma: no cover (imported before capstone)
    _keep_ultralytics_settings_in_home()
else:
    _sys.meta_path.insert(0, _BeforeUltralytics())
