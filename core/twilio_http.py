"""The HTTP client Mantle hands the official `twilio` SDK: urllib3's connection pool, directly.

The SDK's default client (`TwilioHttpClient`) goes through `requests`, which for every call prepares
the request, merges the session's settings and scans the process environment for proxy settings.
Measured by `bench/twilio_send.py` (the simulator, one message created at a time through the SDK's
`messages.create`, keep-alive on both, in alternating blocks): 0.84–0.90 ms of CPU and 1.2–1.3 ms of
wall time per message with it, 0.39–0.44 ms and 0.75–0.78 ms with this client (0.43–0.53× the CPU),
most of what is left being the SDK's own work. The SDK documents the `http_client` argument for
exactly this (`twilio.http.HttpClient`), and urllib3 is the pool `requests` itself sends through, so
nothing is re-implemented here but the form encoding, which is the standard library's.

Proxies are honoured as `requests` honours them (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), read
once per host instead of once per request.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.request
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urlencode, urlsplit

import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response

_logger = logging.getLogger("twilio.http_client")
_JSON_TYPES = ("application/json", "application/scim+json")


def _form(values: Mapping[str, object] | None) -> str:
    """`application/x-www-form-urlencoded` as `requests` writes it: a list repeats its key and a
    None value is left out."""
    if not values:
        return ""
    pairs: list[tuple[str, object]] = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            pairs.extend((key, item) for item in value if item is not None)
        else:
            pairs.append((key, value))
    return urlencode(pairs)


@lru_cache(maxsize=256)
def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy URL for requests to this host, from the environment (None: go direct)."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return str(proxy)


class PooledHttpClient(HttpClient):  # type: ignore[misc]  # the SDK ships no type hints
    """A `twilio.http.HttpClient` on a urllib3 pool; thread-safe, keep-alive per host."""

    def __init__(self, timeout: float | None = None, logger: logging.Logger = _logger) -> None:
        super().__init__(logger, False, timeout)
        self._direct = urllib3.PoolManager(maxsize=8, retries=False)
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._lock = threading.Lock()

    def _pool(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxy = proxy_for(parts.scheme, parts.hostname or "")
        if proxy is None:
            return self._direct
        with self._lock:
            if proxy not in self._proxied:
                self._proxied[proxy] = urllib3.ProxyManager(proxy, maxsize=8, retries=False)
            return self._proxied[proxy]

    def request(self, method: str, uri: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        sent = dict(headers or {})
        url = uri
        if query := _form(params):
            url = f"{uri}{'&' if '?' in uri else '?'}{query}"
        body: str | None = None
        if data is not None and sent.get("Content-Type") in _JSON_TYPES:
            body = json.dumps(data)
        elif data:
            body = _form(data)
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        logging_on = self.logger.isEnabledFor(logging.INFO)  # the SDK formats its lines eagerly
        if logging_on:
            self.log_request({"method": method.upper(), "url": uri, "params": params, "headers": sent})
        answer = self._pool(url).request(
            method.upper(), url, body=body, headers=sent, redirect=allow_redirects,
            timeout=urllib3.Timeout(total=timeout) if timeout is not None else None,
            preload_content=True)
        response = Response(int(answer.status), answer.data.decode("utf-8", "replace"), answer.headers)
        if logging_on:
            self.log_response(answer.status, response)
        self._test_only_last_response = response
        return response
