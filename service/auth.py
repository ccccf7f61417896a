"""API-key auth: `Authorization: Bearer KEY`, keys configured as sha256 hex digests.

The owner of a job is the sha256 hex of the key that made it ("anon" with open access), so the
service never stores a key, and a job is visible only to its owner. Hashing the presented key and
comparing digests with `hmac.compare_digest` keeps the comparison constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import ApiError
from service.routers.deps import app_settings
from service.settings import Settings

log = logging.getLogger("diffeditor.api")

ANON = "anon"

# auto_error=False: we answer missing keys ourselves, in our error shape. It still puts the
# bearer scheme into the OpenAPI schema.
bearer = HTTPBearer(auto_error=False, description="API key, when the server is configured with keys.")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def owner_for_key(key: str | None, hashes: set[str]) -> str | None:
    """The owner id for a presented key, or None when it is not accepted. Open access: "anon"."""
    if not hashes:
        return ANON
    if not key:
        return None
    digest = hash_key(key)
    match = False
    for accepted in hashes:  # compare against every hash: time does not depend on which matched
        match |= hmac.compare_digest(digest, accepted)
    return digest if match else None


def warn_if_open(settings: Settings) -> None:
    if not settings.key_hashes():
        log.warning("no API keys configured (DIFFEDITOR_API_KEY_HASHES): the API is open to anyone who can reach it")


async def require_owner(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    settings: Settings = Depends(app_settings),
) -> str:
    """FastAPI dependency: the caller's owner id, or 401."""
    hashes = settings.key_hashes()
    if not hashes:
        return ANON
    if credentials is None:
        raise ApiError(
            401, "unauthorized", "missing API key: send Authorization: Bearer KEY", None, {"WWW-Authenticate": "Bearer"}
        )
    owner = owner_for_key(credentials.credentials, hashes)
    if owner is None:
        raise ApiError(401, "unauthorized", "API key not accepted", None, {"WWW-Authenticate": "Bearer"})
    return owner
