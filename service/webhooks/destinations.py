"""Which URLs a webhook may go to: the SSRF rule, at submit and again at every attempt.

A destination is an http(s) URL whose host resolves (getaddrinfo) to addresses none of which is
loopback, private, link-local, site-local, multicast, reserved, unspecified or otherwise not
globally reachable. An IPv6 address that carries an IPv4 address a router would reach (IPv4-mapped,
IPv4-compatible, 6to4, NAT64) is judged as that IPv4 address too, so `2002:7f00:1::` is loopback;
Teredo's range is not global and refused as a whole.
`DIFFEDITOR_WEBHOOK_ALLOW_PRIVATE=1` lifts the address rule (local receivers, tests). The check
is made again before every attempt, and the attempt connects only to addresses that were checked
(`Destination.addresses`, in the resolver's order, the next one tried when one cannot be
connected to: a dual-stack host from a server without IPv6), so a DNS answer that changes after
the check (rebinding) cannot send the request elsewhere.
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
    addresses: tuple[IPAddress, ...]  # the checked addresses the attempt may connect to, in order

    def pinned_url(self, address: IPAddress) -> str:
        """The URL with its host replaced by one of the checked addresses."""
        assert address in self.addresses
        parts = urlsplit(self.url)
        host = f"[{address}]" if address.version == 6 else str(address)
        return parts._replace(netloc=f"{host}:{self.port}").geturl()


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix (64:ff9b:1::/48 is judged as itself)
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291's deprecated ::a.b.c.d (:: and ::1 are caught first)


def _judged_as(address: IPAddress) -> list[IPAddress]:
    """The addresses the rule looks at. An IPv6 address that carries an IPv4 one: a translated one
    (IPv4-mapped, NAT64: what a DNS64 resolver answers on an IPv6-only network) as that IPv4
    address alone; a tunnelled one (6to4) and an IPv4-compatible one as both."""
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)  # the low 32 bits, where they carry one
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in NAT64:
        return [carried]
    if address.sixtofour is not None:
        return [address, address.sixtofour]
    if address in IPV4_COMPATIBLE:
        return [address, carried]
    return [address]


def forbidden_reason(address: IPAddress) -> str | None:
    """Why this address may not be delivered to ("loopback", "private", ...), or None."""
    for candidate in _judged_as(address):
        for name in ("unspecified", "loopback", "link_local", "site_local", "multicast", "private", "reserved"):
            if getattr(candidate, f"is_{name}", False):
                return name.replace("_", "-")
        if not candidate.is_global:  # shared address space (100.64/10), documentation ranges, Teredo, ...
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


def ascii_host(host: str) -> str:
    """The host as DNS, the Host header and TLS take it: an internationalized name in its IDNA
    (punycode) form, `bücher.example` -> `xn--bcher-kva.example`; Refused when it has none."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused("invalid_value", f"{host!r} is not a valid host name") from None


def check(url: str, allow_private: bool) -> Destination:
    """The destination of `url`, resolved now; Refused when the rule forbids it."""
    parts = split(url)
    host = ascii_host(str(parts.hostname))
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
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal in brackets
    if parts.port is not None:
        netloc += f":{parts.port}"
    return Destination(url=url, scheme=parts.scheme, host=host, port=port, netloc=netloc, addresses=tuple(addresses))
