"""One JSON error shape for every failure, and the handlers that produce it.

Every error body is `{"detail": "<one readable line>", "code": "<machine code>",
"request_id": "...", "errors": [...] | null}`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from capstone.errors import CapstoneError, ConfigError, DatabaseError, InputError

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


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx answer."""

    detail: str = Field(description="one readable line saying what went wrong")
    code: str = Field(description="machine-readable error code")
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
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code or _CODES.get(status_code, "error")
        self.extra = extra or {}


def error_json(
    request: Request,
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        detail=detail,
        code=code or _CODES.get(status, "error"),
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

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError) -> JSONResponse:
        return error_json(request, 422, str(exc))

    @app.exception_handler(DatabaseError)
    async def _database(request: Request, exc: DatabaseError) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return error_json(request, 503, "database unavailable", code="database_unavailable")

    @app.exception_handler(ConfigError)
    async def _config(request: Request, exc: ConfigError) -> JSONResponse:
        log.error("configuration error: %s", exc)
        return error_json(request, 503, f"service misconfigured: {exc}", code="misconfigured")

    @app.exception_handler(CapstoneError)
    async def _capstone(request: Request, exc: CapstoneError) -> JSONResponse:
        return error_json(request, 422, str(exc))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return error_json(request, 500, f"internal error ({type(exc).__name__})")
