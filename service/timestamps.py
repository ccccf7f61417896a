"""The one way a time is written in the API's answers, events and webhooks: RFC 3339 in UTC
with milliseconds and a `Z` (`2026-01-02T03:04:05.678Z`)."""

from __future__ import annotations

from datetime import datetime, timezone


def iso_utc(value: datetime | float) -> str:
    """A datetime (naive ones are UTC, as RQ writes them) or unix seconds, as RFC 3339."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    else:
        dt = datetime.fromtimestamp(float(value), timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
