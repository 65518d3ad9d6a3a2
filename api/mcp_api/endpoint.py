"""The `/mcp` endpoint: a Mantle API key in front of the official MCP SDK's streamable HTTP server.

The SDK's session manager serves the protocol; this ASGI app only decides who calls. The key is
checked as every route checks it (`api/deps.py`: the same cache, the same 401 and 403 in the one
error shape), and the caller is left in the request's scope for the tool handlers, which list and
run that organization's tools only. The manager is stateless (no MCP session is kept between
requests), so any API process answers any request, and each call's answer streams as SSE, which
carries progress notifications while a run waits.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi.security import HTTPAuthorizationCredentials
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from api.deps import Principal, Unauthorized, get_principal
from api.errors import error_response
from api.mcp_api.tools import PRINCIPAL, build_server
from core.errors import Forbidden, MantleError
from models.orgs import Role

TOOL_ROLES = (Role.admin, Role.builder)  # those who may start the apps' runs through the API


class Unstarted(MantleError):
    """The endpoint is served by an app whose lifespan did not run (the session manager is off)."""

    status_code = 503
    type = "unavailable"


class McpEndpoint:
    """ASGI app: authenticate the caller, then hand the request to the SDK's session manager."""

    def __init__(self) -> None:
        self.server = build_server()
        self.manager: StreamableHTTPSessionManager | None = None

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Run a session manager for the API's lifetime (entered in the app's lifespan).

        The SDK's manager runs once per instance, and one app's lifespan may run more than once
        (a test client, then a server, or a server restarted in place): each run gets its own."""
        manager = StreamableHTTPSessionManager(app=self.server, stateless=True)
        async with manager.run():
            self.manager = manager
            try:
                yield
            finally:
                self.manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            scope[PRINCIPAL] = await authenticate(Request(scope, receive))
            manager = self.manager
            if manager is None:
                raise Unstarted("the MCP endpoint is not running in this process")
        except MantleError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else exc.headers
            await error_response(exc.status_code, exc.details(), headers=headers)(scope, receive, send)
            return
        await manager.handle_request(scope, receive, send)


async def authenticate(request: Request) -> Principal:
    """The caller of a bearer API key allowed to run apps; Unauthorized or Forbidden otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`",
                           loc=["header", "Authorization"])
    key = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token.strip())
    principal = await get_principal(request, key)
    if principal.role not in TOOL_ROLES:
        raise Forbidden(f"calling apps as tools needs the role admin or builder; your key's role is "
                        f"{principal.role.value}", loc=["header", "Authorization"])
    return principal
