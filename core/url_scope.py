"""Where a stored credential may be sent: the hosts and URL prefixes its admin allows.

A builder writes an `http.request`'s URL; an admin stores the credential it authenticates with.
Without a bound, any builder could send a secret only admins manage to a server of their own and
read it there. So each credential lists what it may reach (`allowed_urls`), and a URL is
matched against it here, in one place, before anything is sent and again on every redirect:

* `api.example.com` allows `https://api.example.com` on port 443, any path;
* `https://api.example.com/v2/` or `http://10.0.0.5:8080/hooks` allow that scheme, host and
  port exactly, and paths under that prefix, at a `/` boundary (`/v2` does not allow `/v2evil`).

Hosts are compared as httpx parses them (lower case, IDNA-encoded, default port dropped), so
`allowed.com.evil.com`, `allowed.com@evil.com` (user info) and another scheme or port do not
match; a path with an encoded dot, slash or backslash does not match a prefix, since the server
may decode it into another path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

MAX_ENTRIES = 50
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_ENCODED = re.compile(r"%(2e|2f|5c)", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Scope:
    """One allowed scheme, host, port and path prefix."""

    scheme: str
    host: str
    port: int
    path: str  # "" for any path; else starts with "/"

    def allows(self, url: httpx.URL) -> bool:
        """Whether `url` falls inside this scope."""
        if url.scheme != self.scheme or _host(url) != self.host or _port(url) != self.port:
            return False
        if not self.path or self.path == "/":
            return True
        path = url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")
        if _ENCODED.search(path) or "\\" in path:
            return False
        prefix = self.path if self.path.endswith("/") else self.path + "/"
        return path == self.path.rstrip("/") or path.startswith(prefix)


def parse(entry: str) -> Scope:
    """The scope an `allowed_urls` entry names; ValueError saying what is wrong with it."""
    text = entry.strip()
    if not text or any(ord(c) < 33 or c == "\x7f" for c in text):
        raise ValueError("an allowed URL is a host name or an http(s) URL, without spaces")
    if "://" not in text:
        host = text.lower()
        if not _HOST.match(host):
            raise ValueError(f"{text[:100]!r} is not a host name (give a URL to allow a port or a path)")
        return Scope("https", host, 443, "")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError(f"{text[:100]!r} is not a valid URL: {exc}") from None
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise ValueError(f"{text[:100]!r} is not an http or https URL with a host")
    if url.userinfo or url.query or url.fragment or "*" in text:
        raise ValueError(f"{text[:100]!r} may not have user info, a query, a fragment or a wildcard")
    path = url.raw_path.decode("ascii")
    if _ENCODED.search(path) or "\\" in path:
        raise ValueError(f"{text[:100]!r} has an encoded dot, slash or backslash in its path")
    return Scope(url.scheme, _host(url), _port(url), "" if path == "/" else path)


def check(entries: Iterable[str]) -> list[str]:
    """The entries, each parsed once to refuse a bad one; ValueError naming its index."""
    found = list(entries)
    if len(found) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} allowed URLs")
    for index, entry in enumerate(found):
        try:
            parse(entry)
        except ValueError as exc:
            raise ValueError(f"allowed_urls[{index}]: {exc}") from None
    return [entry.strip() for entry in found]


def allows(entries: Iterable[str], url: httpx.URL) -> bool:
    """Whether any of the entries allows `url` (none: nothing is allowed)."""
    return any(parse(entry).allows(url) for entry in entries)


def _host(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii").lower()


def _port(url: httpx.URL) -> int:
    return url.port or _DEFAULT_PORTS.get(url.scheme, 0)
