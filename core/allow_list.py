"""The format of an outgoing-address allow list (`MANTLE_HTTP_ALLOW_HOSTS`): host names and networks.

Settings check it when they load and the network guard (`blocks/net_guard.py`) applies it, so the
parser sits here, at the ground both stand on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow_list(entries: Iterable[str]) -> tuple[frozenset[str], tuple[Network, ...]]:
    """Split allow-list entries into host names and networks (an address is a one-address network)."""
    hosts: set[str] = set()
    networks: list[Network] = []
    for raw in entries:
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            if any(c in entry for c in "/:@ "):
                raise ValueError(f"allow-list entry {raw!r} is neither a host name nor a network") from None
            hosts.add(entry)
    return frozenset(hosts), tuple(networks)
