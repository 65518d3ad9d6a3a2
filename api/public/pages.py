"""The public HTML pages of a share: the app's form (or its access-code gate), and plain error pages.

Templates autoescape everything; the page's only script is a static file, so the policy can
refuse inline scripts. What the script needs (its URLs, its page token) travels in a JSON
data block, which browsers never execute.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from api.public.guard import (
    VISITOR_COOKIE,
    access_cookie_valid,
    cookie_visitor,
    page_token,
    set_cookie,
    tokens,
)
from api.public.headers import csp
from api.public.service import Shared, check_limits, limits_of, resolve
from core.errors import Gone, NotFound, RateLimited
from models.base import utcnow

router = APIRouter(prefix="/s", include_in_schema=False)

_ASSETS = {name: (resources.files("api.public") / "static" / name).read_bytes()
           for name in ("webapp.js", "webapp.css")}
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
_VERSIONS = {name: hashlib.sha256(body).hexdigest()[:12] for name, body in _ASSETS.items()}

_env = Environment(loader=PackageLoader("api.public", "templates"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=False)
_env.globals["asset"] = lambda name: f"/s/assets/{name}?v={_VERSIONS[name]}"
_env.filters["num"] = lambda value: int(value) if float(value).is_integer() else value  # 1, not 1.0

_TITLES = {404: "Link not found", 410: "Link expired", 429: "Please slow down"}


def _page(template: str, status_code: int = 200, frame_ancestors: str = "'none'",
          headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code,
                        headers={"Content-Security-Policy": csp(frame_ancestors), **(headers or {})})


def _error(status_code: int, message: str, embed: bool, retry_after: int | None = None) -> HTMLResponse:
    # An error page has nothing to click, so an embedding site may show it wherever it likes.
    return _page("error.html", status_code, "*" if embed else "'none'",
                 {"Retry-After": str(retry_after)} if retry_after else None,
                 title=_TITLES.get(status_code, "Not available"), message=message, embed=embed,
                 retry_after=retry_after)


def _frame_ancestors(shared: Shared, embed: bool) -> str:
    origins = shared.share.embed_origins
    return " ".join(origins) if embed and origins else "'none'"


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    """The page's script and stylesheet (cacheable: their URLs carry a content hash)."""
    body = _ASSETS.get(name)
    if body is None:
        return _error(404, "There is nothing here.", False)
    return Response(body, media_type=_TYPES[name.rsplit(".", 1)[1]],
                    headers={"Cache-Control": "public, max-age=86400"})


@router.get("/{slug}", response_class=HTMLResponse)
def page(slug: str, request: Request, variant: str = Query(default="", alias="embed", max_length=10)
         ) -> Response:
    """The shared app: its name, description and form; 404, 410 or 429 as a readable page."""
    embed = variant.lower() in ("1", "true", "yes")
    settings, now = request.app.state.settings, utcnow()
    visitor_id = cookie_visitor(request)
    with request.app.state.read_sessions() as session:
        try:
            shared = resolve(session, request.app.state.submitter.analyses, slug, now)
        except (NotFound, Gone) as exc:
            return _error(404 if isinstance(exc, NotFound) else 410, _sentence(exc.message), embed)
        share = shared.share
        granted = not share.has_access_code or access_cookie_valid(request, share)
        try:
            visitor = tokens(request).bucket_id("v:" + visitor_id)
            check_limits(session, share, limits_of(share, visitor), now, count=False)
        except RateLimited as exc:
            return _error(429, exc.message, embed, exc.retry_after)
    config: dict[str, Any] = {
        "runs_url": f"/s/{slug}/runs", "access_url": f"/s/{slug}/access",
        "page_token": page_token(request, share, visitor_id, granted, settings.share_page_ttl_s),
    }
    if granted:  # behind the gate, not even the form's field names show
        config |= {"fields": [{"name": f.name, "kind": f.kind} for f in shared.fields],
                   "outputs": shared.outputs}
    template = "page.html" if granted else "gate.html"
    response = _page(template, 200, _frame_ancestors(shared, embed), config=config, app=shared.app,
                     fields=shared.fields, submit_label=shared.submit_label, embed=embed)
    visitor_cookie = tokens(request).visitor.sign({"v": visitor_id})
    set_cookie(request, response, VISITOR_COOKIE, visitor_cookie, "/s/", 365 * 86400)
    return response


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."
