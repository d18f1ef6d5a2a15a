"""Request bodies: authenticate before reading them, and cap their size.

FastAPI reads and parses a JSON body before it runs the route's dependencies, so without
this an unauthenticated client could make the server parse a body of any size. This pure
ASGI middleware runs the same auth check as the routes (`service.auth.check`) on every
request that carries a body, then reads at most `MAX_JSON_BYTES` of it (413 beyond) and
hands it on, whatever its content type (multipart included). Only the upload route is left to
itself: it authenticates before it reads, and caps the stream while it arrives
(`MAX_UPLOAD_BYTES`).
"""

from __future__ import annotations

from fastapi.security import HTTPAuthorizationCredentials
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capstone.config import get_settings
from service.auth import check
from service.errors import ApiError, error_json

READ_POSTS = frozenset({"/search"})  # POST routes that only read
UPLOAD_PATH = "/db/videos/upload/"  # authenticates, then streams a capped multipart body


def _credentials(headers: Headers) -> HTTPAuthorizationCredentials | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if not scheme or not token.strip():
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())


class BodyGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if scope["path"] == UPLOAD_PATH:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            check(_credentials(headers), write=scope["path"] not in READ_POSTS)
        except ApiError as exc:
            await self._reply(scope, receive, send, exc)
            return
        limit = get_settings().max_json_bytes
        declared = headers.get("content-length", "")
        too_large = ApiError(413, f"request body exceeds the limit of {limit} bytes")
        if declared.isdigit() and int(declared) > limit:
            await self._reply(scope, receive, send, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._reply(scope, receive, send, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _reply(scope: Scope, receive: Receive, send: Send, exc: ApiError) -> None:
        request = Request(scope)
        response = error_json(
            request,
            exc.status_code,
            str(exc.detail),
            code=exc.code,
            headers=exc.headers,
            retryable=exc.retryable,
        )
        await response(scope, receive, send)
