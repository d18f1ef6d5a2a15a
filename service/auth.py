"""Bearer-token auth against hashed API keys (`API_KEY_HASHES`, sha256 hex, comma-separated).

Writes always need a valid token. Reads need one when `REQUIRE_AUTH_FOR_READS=1`.
With no keys configured, writes are refused (401) unless `CAPSTONE_AUTH_DISABLED=1`
(local development). Keys are compared as sha256 digests with `hmac.compare_digest`
against every configured hash, so timing does not depend on which key matched.

>>> hash_api_key("s3cret")[:16]
'1ec1c26b50d5d3c5'
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from capstone.config import Settings, get_settings
from capstone.core.ids import hash_api_key
from service.errors import ApiError

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer <api key>`; the server stores only sha256(key).",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def configured_hashes(settings: Settings) -> list[str]:
    return [h.strip().lower() for h in settings.api_key_hashes.split(",") if h.strip()]


def token_matches(token: str, hashes: list[str]) -> bool:
    """Constant-time check of `token` against every configured hash."""
    digest = hash_api_key(token).encode()
    matched = False
    for expected in hashes:
        matched |= hmac.compare_digest(digest, expected.encode())
    return matched


def check(credentials: HTTPAuthorizationCredentials | None, *, write: bool) -> None:
    settings = get_settings()
    if settings.capstone_auth_disabled:
        return
    if not write and not settings.require_auth_for_reads:
        return
    hashes = configured_hashes(settings)
    if not hashes:
        raise ApiError(
            401,
            "no API keys are configured on this server (set API_KEY_HASHES); writes are refused",
            code="auth_not_configured",
            headers=_CHALLENGE,
        )
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401,
            "missing bearer token: send 'Authorization: Bearer <api key>'",
            headers=_CHALLENGE,
        )
    if credentials.scheme.lower() != "bearer" or not token_matches(credentials.credentials, hashes):
        raise ApiError(403, "invalid API key", code="invalid_token")


async def require_write(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> None:
    """Dependency of every write endpoint."""
    check(credentials, write=True)


async def require_read(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> None:
    """Dependency of every read endpoint (a no-op unless REQUIRE_AUTH_FOR_READS)."""
    check(credentials, write=False)
