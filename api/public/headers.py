"""Security headers on every public response (pages, their JSON twin, their script and style).

A route may set its own `Content-Security-Policy` (the embed variant names the sites that may
frame it); every other header here is added only where the route did not set it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/s/"


def csp(frame_ancestors: str = "'none'") -> str:
    """The pages' policy: scripts and styles only from this server, no inline script at all."""
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; "
            f"frame-ancestors {frame_ancestors}")


DEFAULTS = {
    "content-security-policy": csp(),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cache-control": "no-store",
}


class PublicHeaders:
    """Add the public pages' security headers to responses under `/s/`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DEFAULTS.items():
                    if name not in headers:
                        headers[name] = value
                if "frame-ancestors 'none'" in headers["content-security-policy"]:
                    headers["x-frame-options"] = "DENY"  # for browsers that predate frame-ancestors
            await send(message)

        await self.app(scope, receive, secured)
