"""NUL characters are refused at the boundary, once, for every route.

PostgreSQL text cannot hold a NUL (`\\x00`), S3 keys and file names must not, and no id,
filter, title or option of this API needs one. This pure ASGI middleware answers 422
naming the parameter when a NUL arrives in the path, in a query parameter, or in any
string (or object key) of a JSON body, before a route sees it. Headers cannot carry one
(the HTTP parser refuses them) and multipart is left to its route (the upload route reads
only the file, whose name it sanitizes). Integers are bounded where they are declared
(request models and `Query(le=...)`), and what still slips through to the database answers
422 (`service.errors`), never 500.

>>> nul_location({"filters": {"video_ids": ["a", "b\\x00"]}})
['filters', 'video_ids', '1']
>>> nul_location({"text": "fine"}) is None
True
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_json

NUL = "\x00"
_JSON_NUL = b"\\u0000"  # the only way a JSON text can hold a NUL inside a string
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def nul_location(value: Any, where: list[str] | None = None) -> list[str] | None:
    """The path (keys and list indexes) to the first string or key holding a NUL, else None."""
    where = where or []
    if isinstance(value, str):
        return where if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if NUL in str(key):
                return [*where, str(key).replace(NUL, "\\x00")]
            found = nul_location(item, [*where, str(key)])
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_location(item, [*where, str(index)])
            if found is not None:
                return found
    return None


def _query_location(query_string: bytes) -> str | None:
    if b"%00" not in query_string and b"\x00" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if NUL in name or NUL in value:
            return name.replace(NUL, "\\x00")
    return None


class NulGuardMiddleware:
    """422 for a NUL character in the path, a query parameter or a JSON body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if NUL in scope.get("path", ""):
            await _refuse(scope, receive, send, ["path"], "the path")
            return
        name = _query_location(scope.get("query_string", b""))
        if name is not None:
            await _refuse(scope, receive, send, [name], f"query parameter {name!r}")
            return
        if scope["method"] in _NO_BODY or _multipart(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _JSON_NUL in body:
            where = _body_location(body)
            if where is not None:
                await _refuse(scope, receive, send, where, ".".join(where) or "the body")
                return
        message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([message], receive), send)


def _multipart(scope: Scope) -> bool:
    for key, value in scope.get("headers") or ():
        if key == b"content-type":
            return value.lower().startswith(b"multipart/form-data")
    return False


def _body_location(body: bytes) -> list[str] | None:
    try:
        return nul_location(json.loads(body))
    except (ValueError, RecursionError):  # not JSON: the route answers that
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, loc: list[str], what: str) -> None:
    msg = "NUL characters (\\x00) are not allowed"
    response = error_json(
        Request(scope),
        422,
        f"{what}: {msg}",
        errors=[{"loc": loc, "msg": msg, "type": "string_nul"}],
    )
    await response(scope, receive, send)
