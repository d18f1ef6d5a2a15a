"""uvicorn's HTTP protocol with a header deadline: slow and idle clients are dropped.

uvicorn closes a kept-alive connection that stays idle after a response
(`timeout_keep_alive`), but it has no deadline for the request's headers: a connection that
sends nothing, or sends its headers a byte a second, stays open for ever, and a few thousand
of them hold every file descriptor. An ASGI middleware cannot help, since the app sees a
request only once its headers are complete. So this subclass of uvicorn's own protocol
(httptools, or h11 where httptools is missing) arms a timer when a connection opens and
when the first byte of a next request arrives, and disarms it once the headers are parsed:
a client that has not sent a whole request head within `HTTP_HEADER_TIMEOUT_S` is
disconnected (with 408 when it had sent part of one). The head is also capped at
`MAX_HEADER_BYTES` (431), which httptools does not do by itself.

The keep-alive timeout is taken from `HTTP_KEEP_ALIVE_S` too, so the class alone carries
the settings: `capstone serve` runs uvicorn with it (`capstone.cli.serve.uvicorn_options`);
plain uvicorn needs `--http service.server:HttpProtocol` (or `UVICORN_HTTP` set to that, as
the service image does). The request body has no deadline here; the application reads it
while it is capped (`service.guard`, the upload route).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from capstone.config import get_settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a pinned dependency
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def _reply(status: int, reason: str) -> bytes:
    body = f"{reason}\n".encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


REQUEST_TIMEOUT = _reply(408, "Request Timeout")
HEADERS_TOO_LARGE = _reply(431, "Request Header Fields Too Large")


class _HeaderDeadline:
    """Mixed in before a uvicorn HTTP protocol class (which sets `transport`, `loop`, `cycle`)."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.http_header_timeout_s
        self.timeout_keep_alive = settings.http_keep_alive_s  # uvicorn's own attribute
        self.max_header_bytes = settings.max_header_bytes
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first bytes of the next request on a kept-alive connection
        cycle = self.cycle
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not cycle or self.transport.get_protocol() is not self:
            self._disarm()  # a request head was parsed (or the connection upgraded)
        elif self._head_timer is not None and self._head_bytes > self.max_header_bytes:
            self._drop(HEADERS_TOO_LARGE)

    def _arm(self) -> None:
        self._disarm()
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        self._drop(REQUEST_TIMEOUT if self._head_bytes else b"")

    def _drop(self, reply: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            if reply:
                self.transport.write(reply)
            self.transport.close()


class H11HeaderDeadlineProtocol(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with the header deadline."""


if HttpToolsProtocol is not None:

    class HttpToolsHeaderDeadlineProtocol(_HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with the header deadline."""

    HttpProtocol: type = HttpToolsHeaderDeadlineProtocol
else:  # pragma: no cover
    HttpProtocol = H11HeaderDeadlineProtocol
