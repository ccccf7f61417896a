"""Standard Webhooks signing (https://www.standardwebhooks.com): every delivery carries

    webhook-id          the same on every attempt of one event
    webhook-timestamp   unix seconds of this attempt
    webhook-signature   "v1,<base64 of HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>"

The key is the secret in `DIFFEDITOR_WEBHOOK_SECRET`: "whsec_<base64>" is the base64-decoded
bytes (the Standard Webhooks form), anything else its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300  # how far a receiver accepts a timestamp from its own clock


class InvalidSignature(Exception):
    """A delivery whose headers do not prove it came from this server, now."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret; ValueError for a `whsec_` one not followed by base64 (the
    settings check it with this at start-up)."""
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (ValueError, binascii.Error):
            key = b""
        if not key:
            raise ValueError("a whsec_ secret must be followed by base64 (whsec_<base64>)")
        return key
    return secret.encode("utf-8")


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for one attempt."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def headers(secret: str, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three signing headers of one attempt (`timestamp`: now unless given)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature(secret, webhook_id, ts, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Raise InvalidSignature unless `headers` sign `body` with `secret` within `tolerance_s` of
    `now`. Header names are matched case-insensitively; the signature header may list several
    space-separated signatures (a secret being rotated), any one of which may match."""
    lower = {k.lower(): v for k, v in headers.items()}
    webhook_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not webhook_id or not stamp or not signatures:
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        ts = int(stamp)
    except ValueError:
        raise InvalidSignature(f"webhook-timestamp is not unix seconds: {stamp!r}") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise InvalidSignature(f"webhook-timestamp {ts} is more than {tolerance_s:g} s from now")
    expected = signature(secret, webhook_id, ts, body)
    if not any(hmac.compare_digest(expected, sig) for sig in signatures.split() if sig.startswith("v1,")):
        raise InvalidSignature("no signature matches")
