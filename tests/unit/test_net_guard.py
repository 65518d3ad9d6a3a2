"""The SSRF guard: every kind of internal address is refused, by literal and by name, and the
allow-list opens exactly what it names. Names resolve through an injected resolver."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from blocks.net_guard import NetGuard, Refused, parse_allow_list

NAMES = {"public.test": ["93.184.216.34"], "private.test": ["10.1.2.3"],
         "mixed.test": ["93.184.216.34", "127.0.0.1"],
         "v6private.test": ["fd12::1"], "mapped.test": ["::ffff:127.0.0.1"], "internal.corp": ["10.9.9.9"],
         "meta.test": ["169.254.169.254"], "nowhere.test": []}


def resolve(host: str, port: int) -> Sequence[str]:
    return NAMES[host]


def guard(*allow: str) -> NetGuard:
    return NetGuard(allow=allow, resolver=resolve)


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1/", "loopback"),
    ("http://[::1]:8080/", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://100.64.0.1/", "non-public"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/", "cloud metadata"),
    ("http://100.100.100.200/", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"),
    ("http://[::ffff:8.8.8.8]/", "IPv4-mapped"),
    ("http://[2002:7f00:1::1]/", "6to4 address embedding 127.0.0.1"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4 address embedding 169.254.169.254"),
    ("http://[64:ff9b::a00:1]/", "NAT64 address embedding 10.0.0.1"),
    ("http://[64:ff9b::7f00:1]/", "NAT64 address embedding 127.0.0.1"),
    ("http://[::7f00:1]/", "reserved"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata endpoint"),
])
def test_internal_addresses_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        guard().check(url)


@pytest.mark.parametrize(("url", "reason"), [
    ("http://private.test/", "private.test resolves to 10.1.2.3, which is a private address"),
    ("http://mixed.test/", "resolves to 127.0.0.1, which is a loopback address"),
    ("http://v6private.test/", "private"),
    ("http://mapped.test/", "IPv4-mapped"),
    ("http://meta.test/", "cloud metadata"),
    ("http://nowhere.test/", "resolves to no address"),
])
def test_a_name_is_judged_by_every_address_it_resolves_to(url: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        guard().check(url)


@pytest.mark.parametrize("url", ["ftp://public.test/", "file:///etc/passwd", "gopher://public.test/"])
def test_only_http_and_https_are_allowed(url: str) -> None:
    with pytest.raises(Refused, match="only http and https"):
        guard().check(url)


def test_public_addresses_pass_and_the_checked_address_is_the_one_to_connect_to() -> None:
    target = guard().check("https://public.test/path")
    assert (target.host, target.port, target.address) == ("public.test", 443, "93.184.216.34")
    assert guard().check("http://[2002:808:808::1]/").address == "2002:808:808::1"  # 6to4 of 8.8.8.8
    assert guard().check("http://[64:ff9b::808:808]/").address == "64:ff9b::808:808"  # NAT64 of 8.8.8.8


def test_the_allow_list_opens_named_hosts_and_networks_but_never_metadata() -> None:
    assert guard("internal.corp").check("http://internal.corp/").address == "10.9.9.9"
    assert guard("10.1.0.0/16").check("http://private.test/").address == "10.1.2.3"
    assert guard("127.0.0.1").check("http://127.0.0.1:9000/").port == 9000
    with pytest.raises(Refused, match="private"):
        guard("internal.corp").check("http://private.test/")  # a name opens only itself
    with pytest.raises(Refused, match="cloud metadata"):
        guard("169.254.0.0/16").check("http://169.254.169.254/")
    with pytest.raises(Refused, match="cloud metadata"):
        guard("meta.test").check("http://meta.test/")


def test_allow_list_entries_are_parsed_or_refused() -> None:
    hosts, networks = parse_allow_list(["Internal.Corp.", "10.0.0.0/8", "::1", " "])
    assert hosts == {"internal.corp"} and [str(n) for n in networks] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match="neither a host name nor a network"):
        parse_allow_list(["http://internal.corp/"])
