"""Calling one tool on an MCP server with the official SDK's client, through the SSRF guard.

The SDK's streamable HTTP client sends its requests with an `httpx2` client; ours is given a
transport that checks every request with the same `NetGuard` as `http.request` (then connects to
the checked address, the name kept as `Host` and TLS server name, so a name that re-resolves
elsewhere reaches nothing new), refuses to send the credential anywhere its admin did not allow,
and stops reading an answer past `max_bytes` (compression is refused, so the count is the size).
The whole exchange (initialize, call, the answer) runs under one deadline. The SDK is async: a
block runs in a worker thread without an event loop, so each call runs one with `anyio.run`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
from anyio import to_thread
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from blocks.http_client import HttpFailed, ResponseTooLarge
from blocks.net_guard import NetGuard, Refused
from core.errors import MantleError


class ToolCallFailed(MantleError):
    """The MCP server could not be reached, refused the call, or did not answer in time."""

    type = "mcp_error"


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """What the tool answered: its text, its structured result (if any), and whether it is an error."""

    text: str
    structured: Any
    is_error: bool


class _Limited(httpx2.AsyncByteStream):
    """A response body that raises once more than `max_bytes` have arrived."""

    def __init__(self, inner: httpx2.AsyncByteStream, max_bytes: int) -> None:
        self.inner, self.max_bytes, self.seen = inner, max_bytes, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.seen += len(chunk)
            if self.seen > self.max_bytes:
                raise ResponseTooLarge(f"the MCP server's answer is over {self.max_bytes} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class GuardedAsyncTransport(httpx2.AsyncHTTPTransport):
    """An httpx2 transport that checks each request with the guard and connects to the checked address."""

    def __init__(self, guard: NetGuard, secret_allowed: Callable[[httpx.URL], bool], max_bytes: int) -> None:
        # No keep-alive: a pooled TLS connection must never carry a request for another name.
        super().__init__(limits=httpx2.Limits(max_keepalive_connections=0), trust_env=False)
        self.guard, self.secret_allowed, self.max_bytes = guard, secret_allowed, max_bytes

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Check the URL (and where the credential may go), send to the checked address, limit the answer."""
        url = httpx.URL(str(request.url))
        if "authorization" in request.headers and not self.secret_allowed(url):
            raise Refused(f"the credential may not be sent to {url.scheme}://{url.netloc.decode()}{url.path}")
        target = await to_thread.run_sync(self.guard.check, url)  # a DNS lookup: off the event loop
        if target.address != target.host:
            request.url = request.url.copy_with(host=target.address)
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": target.host}
        response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        limited = _Limited(response.stream, self.max_bytes)
        return httpx2.Response(status_code=response.status_code, headers=response.headers, stream=limited,
                               extensions=response.extensions)


def call_tool(url: str, tool: str, arguments: Mapping[str, Any], *, guard: NetGuard,
              headers: Mapping[str, str], secret_allowed: Callable[[httpx.URL], bool], timeout_s: float,
              max_bytes: int) -> ToolAnswer:
    """Call `tool` with `arguments` on the MCP server at `url`; raises Refused or ToolCallFailed."""
    try:
        return anyio.run(_call, url, tool, dict(arguments), guard, dict(headers), secret_allowed, timeout_s,
                         max_bytes)
    except BaseExceptionGroup as group:  # the SDK's task groups wrap what went wrong
        raise _explain(_leaf(group), url, timeout_s) from None
    except Exception as exc:
        raise _explain(exc, url, timeout_s) from None


async def _call(url: str, tool: str, arguments: dict[str, Any], guard: NetGuard, headers: dict[str, str],
                secret_allowed: Callable[[httpx.URL], bool], timeout_s: float, max_bytes: int) -> ToolAnswer:
    transport = GuardedAsyncTransport(guard, secret_allowed, max_bytes)
    plain = {**headers, "Accept-Encoding": "identity"}  # so the bytes counted are the answer's size
    client = httpx2.AsyncClient(transport=transport, headers=plain, timeout=timeout_s, trust_env=False)
    with anyio.fail_after(timeout_s):
        async with client as http, \
                streamable_http_client(url, http_client=http, max_sse_event_size=max_bytes) as streams, \
                ClientSession(*streams) as session:
            await session.initialize()
            result = await session.call_tool(tool, arguments)
    text = "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
    return ToolAnswer(text=text, structured=result.structured_content, is_error=result.is_error)


def _leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception inside nested groups."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup) and found.exceptions:
        found = found.exceptions[0]
    return found


def _explain(exc: BaseException, url: str, timeout_s: float) -> MantleError:
    """The error a builder reads for what went wrong calling the server."""
    if isinstance(exc, Refused | HttpFailed | ToolCallFailed):
        return exc
    if isinstance(exc, TimeoutError):
        return ToolCallFailed(f"{url} did not answer the tool call within {timeout_s:g} s")
    if isinstance(exc, MCPError):
        return ToolCallFailed(f"{url} refused the tool call: {exc.message}")
    if isinstance(exc, httpx2.HTTPError):
        return ToolCallFailed(f"cannot reach {url}: {exc}")
    return ToolCallFailed(f"calling the tool at {url} failed: {type(exc).__name__}: {exc}")
