"""One JSON error shape for every failure, and the handlers that produce it.

Every error body is `{"detail": "<one readable line>", "code": "<machine code>",
"retryable": <bool>, "request_id": "...", "errors": [...] | null}`. A `CapstoneError` answers
with its class's `http_status`, `code` and `retryable` (`capstone.errors.policy_of`); any
other answer is retryable when its status says so (`retryable_status`).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from capstone.errors import CapstoneError, policy_of

log = logging.getLogger("capstone.service")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
    503: "unavailable",
}
# Database errors that a retry may get past (SQLSTATE -> reason, Retry-After seconds).
_DATABASE_BUSY = {
    "53300": ("the database's connection limit is reached", "1"),  # too_many_connections
    "57014": ("the query ran past DB_STATEMENT_TIMEOUT_S", "5"),  # query_canceled
    "55P03": ("a lock wait ran past DB_LOCK_TIMEOUT_S", "1"),  # lock_not_available
    "57P03": ("the database is starting", "5"),  # cannot_connect_now
}
# Answers that the same request may not get again: the server was busy, down or broken.
_RETRYABLE_STATUS = frozenset({408, 425, 429})


def retryable_status(status: int) -> bool:
    """Whether a retry of the same request can help, by the status alone.

    >>> retryable_status(503), retryable_status(429), retryable_status(422)
    (True, True, False)
    """
    return status >= 500 or status in _RETRYABLE_STATUS


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx answer."""

    detail: str = Field(description="one readable line saying what went wrong")
    code: str = Field(description="machine-readable error code")
    retryable: bool = Field(
        description="whether the same request can succeed later (false: change it first)"
    )
    request_id: str | None = Field(default=None, description="the X-Request-ID of the request")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="per-field validation errors (422 only)"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "detail": "s3_key: invalid object key '../etc/passwd'",
                    "code": "invalid_input",
                    "retryable": False,
                    "request_id": "5b1f0c2a9e3d4c1f",
                    "errors": None,
                }
            ]
        }
    }


class ApiError(HTTPException):
    """An HTTP error with a code; raise it from routes and dependencies."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code or _CODES.get(status_code, "error")
        self.extra = extra or {}
        self.retryable = retryable_status(status_code) if retryable is None else retryable


def error_json(
    request: Request,
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    retryable: bool | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        detail=detail,
        code=code or _CODES.get(status, "error"),
        retryable=retryable_status(status) if retryable is None else retryable,
        request_id=getattr(request.state, "request_id", None),
        errors=errors,
    ).model_dump()
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for these error codes, all with `ErrorResponse`."""
    return {
        code: {"model": ErrorResponse, "description": _CODES.get(code, "error")} for code in codes
    }


def _validation_errors(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        items.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type"))})
    if not items:
        return "invalid request", items
    first = items[0]
    where = ".".join(first["loc"])
    line = f"{where}: {first['msg']}" if where else first["msg"]
    if len(items) > 1:
        line += f" (and {len(items) - 1} more)"
    return line, items


def install(app: FastAPI) -> None:
    """Register the exception handlers on `app`."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_json(
            request,
            exc.status_code,
            str(exc.detail),
            code=exc.code,
            headers=exc.headers,
            extra=exc.extra,
            retryable=exc.retryable,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's answer to an undecodable body: the same 422 as any invalid input.
            return error_json(request, 422, "request body is not valid JSON (or not UTF-8)")
        return error_json(request, exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        line, items = _validation_errors(exc)
        return error_json(request, 422, line, errors=items)

    @app.exception_handler(CapstoneError)
    async def _capstone(request: Request, exc: CapstoneError) -> JSONResponse:
        policy = policy_of(exc)
        if policy.http_status >= 500:
            log.error("%s: %s", policy.code, exc)
        return error_json(
            request,
            policy.http_status,
            exc.public_detail(),
            code=policy.code,
            retryable=policy.retryable,
            headers={"Retry-After": "5"} if policy.http_status == 503 and policy.retryable else {},
        )

    @app.exception_handler(DataError)
    @app.exception_handler(psycopg.DataError)
    @app.exception_handler(ValueError)
    async def _bad_value(request: Request, exc: Exception) -> JSONResponse:
        # A value that got past validation and that the database (or a library) refuses:
        # out of range for its column, a NUL, ... The client's to change: 422, not 500.
        log.warning("value refused: %s: %s", type(exc).__name__, str(exc).splitlines()[:1])
        policy = policy_of(exc if isinstance(exc, ValueError) else ValueError())
        return error_json(
            request,
            policy.http_status,
            "invalid value: a parameter is out of range or holds characters that cannot be stored",
            code=policy.code,
            retryable=policy.retryable,
        )

    @app.exception_handler(sa_exc.TimeoutError)
    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(psycopg.OperationalError)
    async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
        # A burst beyond the pool or the server's connections, a statement or lock timeout,
        # the database away: a fast 503 to retry, never a 500 (nor the server's address).
        if isinstance(exc, sa_exc.TimeoutError):
            reason, retry_after = "no database connection free in time", "1"
        else:
            orig = getattr(exc, "orig", exc)
            state = getattr(orig, "sqlstate", None) or ""
            message = str(orig)
            if not state and ("too many" in message or "connection slots" in message):
                state = "53300"  # refused at connect: psycopg gives no SQLSTATE
            reason, retry_after = _DATABASE_BUSY.get(state, ("database unavailable", "5"))
        log.warning("503 %s: %s", type(exc).__name__, reason)
        return error_json(
            request,
            503,
            f"database busy: {reason}; retry later",
            code="database_busy",
            headers={"Retry-After": retry_after},
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return error_json(request, 500, f"internal error ({type(exc).__name__})")
