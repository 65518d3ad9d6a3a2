"""The outbound-request guard against SSRF: which addresses a block may reach, and a transport
that connects only to the address it checked.

A URL passes when its scheme is http or https and every address its host resolves to is a
public one: loopback, private, link-local, multicast, unspecified, reserved and other
non-global addresses are refused, so are IPv4-mapped IPv6 addresses and the 6to4 / NAT64 forms
that embed a refused IPv4 address, and so are cloud metadata endpoints (by name and address,
even when an allow-list would open their network). An allow-list of host names and networks
(`MANTLE_HTTP_ALLOW_HOSTS`) opens specific internal services.

`GuardedTransport` checks every request it sends (each redirect hop and each retry is a request
of its own), then connects to the checked address with the original name in the `Host` header
and as the TLS server name: no second lookup happens, so a name that re-resolves elsewhere
(DNS rebinding) reaches nothing new. The resolver is injectable, which is how tests make a name
resolve to a private address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.allow_list import Network, parse_allow_list
from core.errors import MantleError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

SCHEMES = frozenset({"http", "https"})
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                            "instance-data.ec2.internal", "metadata.azure.internal"})
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.169.253", "169.254.170.2", "fd00:ec2::254", "100.100.100.200",
    "192.0.0.192"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CHECKS = (("is_unspecified", "an unspecified"), ("is_loopback", "a loopback"),
           ("is_link_local", "a link-local"), ("is_multicast", "a multicast"),
           ("is_reserved", "a reserved"), ("is_private", "a private"))


class Refused(MantleError):
    """The URL may not be requested: a scheme other than http(s), or a non-public address."""

    type = "url_refused"


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host`, in its order of preference."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"cannot resolve {host!r}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(ip: Address) -> str | None:
    """Why `ip` may not be reached (None: it is a public address)."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"an IPv4-mapped IPv6 address (of {ip.ipv4_mapped})"
        # 6to4 and NAT64 carry an IPv4 address that the network on the way may route to; Python
        # calls 6to4 global and NAT64 reserved whatever they embed, so judge what they embed.
        kind, inner = ("6to4", ip.sixtofour) if ip.sixtofour is not None else \
            ("NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)) if ip in NAT64 else ("", None)
        if inner is not None:
            why = refusal(inner)
            if why is not None:
                return f"a {kind} address embedding {inner}, {why}"
            if kind == "NAT64":
                return None
    for attribute, what in _CHECKS:
        if getattr(ip, attribute):
            return f"{what} address"
    return None if ip.is_global else "a non-public address"


@dataclass(frozen=True, slots=True)
class Target:
    """A checked destination: the host name asked for and the address to connect to."""

    host: str
    port: int
    address: str


@dataclass(frozen=True)
class NetGuard:
    """Decides which URLs may be requested; `allow` opens host names and networks."""

    allow: Iterable[str] = ()
    resolver: Resolver = system_resolver
    _hosts: frozenset[str] = field(init=False, repr=False)
    _networks: tuple[Network, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        hosts, networks = parse_allow_list(self.allow)
        object.__setattr__(self, "_hosts", hosts)
        object.__setattr__(self, "_networks", networks)

    def check(self, url: httpx.URL | str) -> Target:
        """The address to connect to for `url`; raises Refused naming the reason."""
        url = httpx.URL(url) if isinstance(url, str) else url
        if url.scheme not in SCHEMES:
            raise Refused(f"only http and https URLs may be requested, not {url.scheme or 'none'!r}")
        host = url.raw_host.decode("ascii").lower().rstrip(".")
        if not host:
            raise Refused("the URL has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        if host in METADATA_HOSTS:
            raise Refused(f"{host} is a cloud metadata endpoint and may never be requested")
        try:
            addresses, literal = [ipaddress.ip_address(host)], True
        except ValueError:
            addresses, literal = [ipaddress.ip_address(a) for a in self.resolver(host, port)], False
            if not addresses:
                raise Refused(f"{host} resolves to no address") from None
        opened_host = host in self._hosts
        for ip in addresses:
            why = refusal(ip)
            if why is None:
                continue
            opened = opened_host or any(ip in net for net in self._networks)
            if opened and ip not in METADATA_ADDRESSES:
                continue
            shown = host if literal else f"{host} resolves to {ip}, which"
            hint = "" if ip in METADATA_ADDRESSES else \
                " (an administrator can open internal hosts with MANTLE_HTTP_ALLOW_HOSTS)"
            raise Refused(f"{shown} is {why}; requests to it are refused{hint}")
        return Target(host=host, port=port, address=str(addresses[0]))


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that checks every request with a guard and connects to the checked address."""

    def __init__(self, guard: NetGuard, **kwargs: Any) -> None:
        # No keep-alive: a pooled TLS connection to one address must never carry a request for
        # another name served there (it was verified for the first name only).
        kwargs.setdefault("limits", httpx.Limits(max_keepalive_connections=0))
        super().__init__(**kwargs)
        self.guard = guard

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Check the request's URL, then send it to the address that was checked."""
        target = self.guard.check(request.url)
        if target.address != target.host:
            request.url = request.url.copy_with(host=target.address)
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": target.host}
        return super().handle_request(request)
