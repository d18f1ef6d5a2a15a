"""User-facing errors: each carries one readable line and never needs a traceback.

Every error class also says, as class attributes, how each reader treats it: `exit_code`
(the CLI), `http_status` and `code` (the API's status and machine code), and `retryable`
(whether running the same request again can succeed: queue workers and the Batch job retry
only those). `policy_of` answers the same four for any exception; nothing else decides.

>>> for cls in (CapstoneError, ConfigError, DatabaseError, InputError, ModelNotFoundError,
...             EvaluationError):
...     p = policy_of(cls("x"))
...     print(f"{cls.__name__:<18} {p.exit_code} {p.http_status} {p.retryable!s:<5} {p.code}")
CapstoneError      1 500 True  error
ConfigError        2 503 False misconfigured
DatabaseError      3 503 True  database_unavailable
InputError         4 422 False invalid_input
ModelNotFoundError 5 422 False model_not_found
EvaluationError    6 422 False evaluation_failed
>>> policy_of(ValueError("bad value"))
ErrorPolicy(exit_code=2, http_status=422, retryable=False, code='invalid_value')
>>> policy_of(OSError("disk full"))
ErrorPolicy(exit_code=1, http_status=500, retryable=True, code='internal_error')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorPolicy:
    """How the CLI, the API and the retrying workers treat one error."""

    exit_code: int
    http_status: int
    retryable: bool
    code: str


class CapstoneError(Exception):
    """Base class; `str(err)` is the one line shown to the user."""

    exit_code = 1
    http_status = 500
    retryable = True
    code = "error"
    # The API's `detail` line; `{message}` is `str(err)`. A template without it hides the
    # message (e.g. a database URL) from API clients; the log still has it.
    http_detail = "{message}"

    @classmethod
    def policy(cls) -> ErrorPolicy:
        return ErrorPolicy(cls.exit_code, cls.http_status, cls.retryable, cls.code)

    def public_detail(self) -> str:
        """The one line the API answers with."""
        return self.http_detail.format(message=str(self))


class ConfigError(CapstoneError):
    """Bad or unusable configuration (settings, a stage option): retrying cannot fix it."""

    exit_code = 2
    http_status = 503
    retryable = False
    code = "misconfigured"
    http_detail = "service misconfigured: {message}"


class DatabaseError(CapstoneError):
    """The database cannot be reached or started."""

    exit_code = 3
    http_status = 503
    retryable = True
    code = "database_unavailable"
    http_detail = "database unavailable"


class InputError(CapstoneError):
    """Bad input: not a video, missing file, unreadable stream."""

    exit_code = 4
    http_status = 422
    retryable = False
    code = "invalid_input"


class BudgetExceededError(InputError):
    """The input is over a resource budget (a setting such as `MAX_FRAME_PIXELS`), found
    before the work it would cost: permanent, its message names the setting.

    >>> policy_of(BudgetExceededError("x"))
    ErrorPolicy(exit_code=4, http_status=422, retryable=False, code='budget_exceeded')
    """

    code = "budget_exceeded"


class ModelNotFoundError(CapstoneError):
    """A model name or path did not resolve to weights."""

    exit_code = 5
    http_status = 422
    retryable = False
    code = "model_not_found"


class EvaluationError(CapstoneError):
    """MOT evaluation could not run (bad sequence folder, malformed files, metric failure)."""

    exit_code = 6
    http_status = 422
    retryable = False
    code = "evaluation_failed"


_INTERNAL = ErrorPolicy(exit_code=1, http_status=500, retryable=True, code="internal_error")
_INVALID_VALUE = ErrorPolicy(exit_code=2, http_status=422, retryable=False, code="invalid_value")


def policy_of(exc: BaseException) -> ErrorPolicy:
    """The policy of any exception: a `CapstoneError`'s own attributes; a pydantic
    `ValidationError` or a `ValueError` is a permanent configuration error; anything else
    (a bug, a dropped connection, a full disk) an internal error that a retry may fix."""
    if isinstance(exc, CapstoneError):
        return exc.policy()
    if isinstance(exc, ValueError):  # pydantic's ValidationError is a ValueError
        return _INVALID_VALUE
    return _INTERNAL
