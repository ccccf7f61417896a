"""The TLS context https deliveries verify receivers with: certifi's CAs (httpx's default), or the
operator's own (`DIFFEDITOR_WEBHOOK_CA_FILE`), checked when the settings load."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificate and host name checks on; the CAs of `ca_file` when given. ValueError when it
    cannot be read or holds no certificate."""
    if ca_file is None:
        return httpx.create_ssl_context()
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load CA certificates from {ca_file} ({exc})") from None
    if not context.get_ca_certs():
        raise ValueError(f"{ca_file} holds no CA certificate")
    return context
