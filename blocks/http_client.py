"""Sending one outbound HTTP request through the SSRF guard: redirects, retries, limits.

Redirects are followed here, not by httpx, so that every hop is a request of its own through
`GuardedTransport` (checked, then connected to the checked address) and so that credentials
are only ever sent to the origin they were meant for, where their admin allows. 429 and 5xx
answers (and connection failures) are retried with exponential backoff, honouring `Retry-After`
when it fits in what is left of the timeout. The body is read in chunks and refused past
`max_bytes`, decompressed size included, so neither a huge nor a compressed-bomb answer can
exhaust a worker.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from blocks.net_guard import GuardedTransport, NetGuard
from core.errors import MantleError

REDIRECTS = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_BACKOFF_S = 30.0


class HttpFailed(MantleError):
    """The request could not be completed (no answer, too large, too many redirects)."""

    type = "http_error"


class ResponseTooLarge(HttpFailed):
    """The answer is over the block's `max_response_bytes`."""

    type = "response_too_large"


@dataclass(frozen=True)
class Fetched:
    """The final answer: status, headers (lower-case names), body bytes and the URL that gave it."""

    status: int
    headers: dict[str, str]
    content: bytes
    url: str


@dataclass
class Fetcher:
    """Sends requests under one deadline; `sleep` and `clock` are injectable for tests."""

    guard: NetGuard
    timeout_s: float
    retries: int = 2
    backoff_s: float = 0.5
    max_redirects: int = 5
    max_bytes: int = 1_000_000
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    verify: ssl.SSLContext | bool = True  # certificates are always checked; tests bring their own CA

    def fetch(self, method: str, url: httpx.URL, headers: Mapping[str, str], content: bytes | None,
              secret_headers: Mapping[str, str],
              secret_allowed: Callable[[httpx.URL], bool] = lambda url: True) -> Fetched:
        """The answer to the request, after redirects and retries; raises HttpFailed or Refused.

        `secret_headers` go only to hops on the first URL's origin that `secret_allowed` accepts."""
        deadline = self.clock() + self.timeout_s
        origin = _origin(url)
        # trust_env=False: a proxy from the environment would connect instead of us, unchecked.
        with httpx.Client(transport=GuardedTransport(self.guard, verify=self.verify), trust_env=False,
                          follow_redirects=False) as client:
            for hop in range(self.max_redirects + 1):
                keep = _origin(url) == origin and secret_allowed(url)
                sent = {**headers, **(secret_headers if keep else {})}
                fetched = self._with_retries(client, method, url, sent, content, deadline)
                location = fetched.headers.get("location")
                if fetched.status not in REDIRECTS or not location:
                    return fetched
                if hop == self.max_redirects:
                    raise HttpFailed(f"more than {self.max_redirects} redirects "
                                     f"(the last to {location[:200]})")
                url = url.join(location)
                if fetched.status == 303 or fetched.status in (301, 302) and method == "POST":
                    method, content = ("HEAD" if method == "HEAD" else "GET"), None
            raise AssertionError("unreachable: the loop returns or raises")

    def _with_retries(self, client: httpx.Client, method: str, url: httpx.URL, headers: Mapping[str, str],
                      content: bytes | None, deadline: float) -> Fetched:
        attempt = 0
        error: Exception | None = None
        while True:
            attempt += 1
            fetched: Fetched | None = None
            try:
                fetched = self._send(client, method, url, headers, content, deadline)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = exc  # nothing reached the server: always safe to try again
            except httpx.TransportError as exc:
                if method not in IDEMPOTENT:
                    raise HttpFailed(f"{url.host} did not answer: {_describe(exc)}") from None
                error = exc
            else:
                if fetched.status not in RETRY_STATUSES:
                    return fetched
            if attempt > self.retries:
                if fetched is not None:
                    return fetched
                raise HttpFailed(f"{url.host} did not answer after {attempt} attempt(s): {_describe(error)}")
            wait = min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
            if fetched is not None:
                wait = _retry_after(fetched.headers.get("retry-after"), wait)
            if self.clock() + wait >= deadline:
                if fetched is not None:
                    return fetched  # the caller reports the status; waiting longer would pass the timeout
                raise HttpFailed(f"{url.host} did not answer within {self.timeout_s:g} s: {_describe(error)}")
            self.sleep(wait)

    def _send(self, client: httpx.Client, method: str, url: httpx.URL, headers: Mapping[str, str],
              content: bytes | None, deadline: float) -> Fetched:
        left = deadline - self.clock()
        if left <= 0:
            raise HttpFailed(f"no answer from {url.host} within {self.timeout_s:g} s")
        request = client.build_request(method, url, headers=headers, content=content,
                                       timeout=httpx.Timeout(left))
        try:
            response = client.send(request, stream=True)
        except httpx.TimeoutException:
            raise HttpFailed(f"no answer from {url.host} within {self.timeout_s:g} s") from None
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise self._too_large(url)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise self._too_large(url)
                if self.clock() > deadline:  # a server trickling bytes never trips the read timeout
                    raise HttpFailed(f"{url.host} took longer than {self.timeout_s:g} s to send its answer")
        except httpx.TimeoutException:
            raise HttpFailed(f"{url.host} took longer than {self.timeout_s:g} s to send its answer") from None
        finally:
            response.close()
        names = {k.lower() for k in response.headers}
        headers_out = {name: ", ".join(response.headers.get_list(name)) for name in sorted(names)}
        return Fetched(status=response.status_code, headers=headers_out, content=bytes(body), url=str(url))

    def _too_large(self, url: httpx.URL) -> ResponseTooLarge:
        return ResponseTooLarge(f"the answer from {url.host} is larger than {self.max_bytes} bytes "
                                "(max_response_bytes)")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _describe(exc: Exception | None) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _retry_after(value: str | None, default: float) -> float:
    """Seconds to wait as a `Retry-After` header says (a number or an HTTP date), else `default`."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
