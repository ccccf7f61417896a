"""Which URLs a webhook may go to: the SSRF rule, at submit and again at every attempt.

A destination is an http(s) URL whose host resolves (getaddrinfo) to addresses none of which is
loopback, private, link-local, multicast, reserved, unspecified or otherwise not globally
reachable, IPv4-mapped IPv6 addresses judged as the IPv4 address they carry;
`DIFFEDITOR_WEBHOOK_ALLOW_PRIVATE=1` lifts the address rule (local receivers, tests). The check
is made again before every attempt, and the attempt connects to the address that was checked
(`Destination.address`), so a DNS answer that changes after the check (rebinding) cannot send the
request elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


class Refused(Exception):
    """A URL the server will not deliver to. `code`: `invalid_value` (not a usable URL),
    `webhook_unresolvable` (the host does not resolve) or `webhook_refused` (an address it may not reach)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Destination:
    url: str
    scheme: str
    host: str  # as in the URL (for the Host header and TLS's server name)
    port: int
    netloc: str  # host[:port] as the URL wrote it: the Host header
    address: IPAddress  # the checked address the attempt connects to

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address."""
        parts = urlsplit(self.url)
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return parts._replace(netloc=f"{host}:{self.port}").geturl()


def forbidden_reason(address: IPAddress) -> str | None:
    """Why this address may not be delivered to ("loopback", "private", ...), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for name in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    if not address.is_global:  # shared address space (100.64/10), documentation ranges, ...
        return "non-global"
    return None


def split(url: str) -> SplitResult:
    """The URL's parts, checked for an http(s) scheme, a host and a valid port; else Refused."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise Refused("invalid_value", f"not a URL ({exc})") from None
    if parts.scheme not in DEFAULT_PORTS or not host:
        raise Refused("invalid_value", "must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise Refused("invalid_value", "credentials in the URL are not supported")
    return parts


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (an IP literal: itself); Refused when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise Refused("webhook_unresolvable", f"{host} does not resolve ({exc})") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Refused("webhook_unresolvable", f"{host} does not resolve")
    return addresses


def check(url: str, allow_private: bool) -> Destination:
    """The destination of `url`, resolved now; Refused when the rule forbids it."""
    parts = split(url)
    host = str(parts.hostname)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    addresses = resolve(host, port)
    if not allow_private:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason is not None:
                raise Refused(
                    "webhook_refused",
                    f"{host} resolves to a {reason} address ({address}); webhooks go to public addresses only",
                )
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return Destination(url=url, scheme=parts.scheme, host=host, port=port, netloc=netloc, address=addresses[0])
