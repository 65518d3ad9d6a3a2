"""The visual builder at `/builder`: its built bundle, and the one-click sign-in link.

The builder is a single-page app (source in builder/ui/, built into builder/ui/dist/, which is
committed so that running Mantle needs nothing but Python). Every path under `/builder/` that is
not a file of the bundle answers its `index.html`, so the app's own URLs survive a reload. The
page calls only the public API on this origin; its policy allows script and style from this
server alone, and no framing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, status
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import browser_auth
from core.errors import MantleError
from models import audit
from models import browser_sessions as store
from models.db import session_scope

DIST = Path(__file__).resolve().parents[2] / "builder" / "ui" / "dist"
PREFIX = "/builder"

router = APIRouter(include_in_schema=False)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # same-origin: the page's own writes then carry its Origin (no-referrer would send "null").
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class BundleMissing(MantleError):
    """The builder's bundle was not built into builder/ui/dist."""

    status_code = 503
    type = "unavailable"


def _index() -> FileResponse:
    index = DIST / "index.html"
    if not index.is_file():
        raise BundleMissing("the builder's bundle is missing from builder/ui/dist: run `make ui`")
    # The page itself is never cached: a new release must reach the browser at once.
    return FileResponse(index, media_type="text/html", headers={"cache-control": "no-store"})


@router.get(PREFIX)
async def builder_root() -> RedirectResponse:
    """The builder lives under `/builder/`."""
    return RedirectResponse(f"{PREFIX}/", status_code=status.HTTP_308_PERMANENT_REDIRECT)


@router.get(f"{PREFIX}/sign-in")
async def sign_in_link(request: Request, token: Annotated[str, Query(max_length=200)] = "") -> Response:
    """Use a one-time link: open a session and go to the builder (or say the link is spent)."""
    secret = await run_in_threadpool(_redeem, request, token) if token else None
    if secret is None:
        return RedirectResponse(f"{PREFIX}/?signin=expired", status_code=status.HTTP_303_SEE_OTHER)
    response = RedirectResponse(f"{PREFIX}/", status_code=status.HTTP_303_SEE_OTHER)
    browser_auth.set_cookie(request, response, secret)
    return response


def _redeem(request: Request, token: str) -> str | None:
    with session_scope(request.app.state.session_factory) as session:
        key = store.redeem_link(session, secret=token)
        if key is None:
            return None
        browser, secret = store.open_session(session, key=key, via="link")
        audit.record(session, org_id=key.org_id, actor=f"key:{key.id}:{key.name}", action="session.open",
                     target_type="browser_session", target_id=browser.id, details={"via": "link"})
        return secret


@router.get(PREFIX + "/{path:path}")
async def builder_page(path: str) -> FileResponse:
    """The app's page for any of its own URLs."""
    return _index()


class BuilderHeaders:
    """Add the builder's security headers to every response under `/builder`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        assets = path.startswith(f"{PREFIX}/assets/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if assets and message["status"] == 200:
                    # File names carry a content hash: a cached copy can never be stale.
                    headers["cache-control"] = "public, max-age=31536000, immutable"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Serve the bundle's files (hashed names, checked for traversal by Starlette) and the page."""
    assets = StaticFiles(directory=DIST / "assets", check_dir=False)
    app.mount(f"{PREFIX}/assets", assets, name="builder-assets")
    app.include_router(router)
    app.add_middleware(BuilderHeaders)
