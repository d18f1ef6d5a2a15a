"""User-facing errors: each carries one readable line and never needs a traceback."""


class CapstoneError(Exception):
    """Base class; `str(err)` is the one line shown to the user."""

    exit_code = 1


class ConfigError(CapstoneError):
    """Bad or unusable configuration."""

    exit_code = 2


class DatabaseError(CapstoneError):
    """The database cannot be reached or started."""

    exit_code = 3


class InputError(CapstoneError):
    """Bad input: not a video, missing file, unreadable stream."""

    exit_code = 4


class ModelNotFoundError(CapstoneError):
    """A model name or path did not resolve to weights."""

    exit_code = 5


class EvaluationError(CapstoneError):
    """MOT evaluation could not run (bad sequence folder, malformed files, metric failure)."""

    exit_code = 6
