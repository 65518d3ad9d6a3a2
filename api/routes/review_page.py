"""`/review`: the reviewer's web page, server-rendered HTML and plain forms (no script at all)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select

from api.deps import Principal
from api.review_auth import (
    SECURITY_HEADERS,
    LoginRefused,
    form_token,
    open_page_session,
    open_person_session,
    page_principal,
    same_site,
    sign_in,
    sign_out,
    token_ok,
)
from api.review_schemas import review_read
from core.errors import MantleError, RateLimited
from models import reviews as review_store
from models.apps import App
from models.base import utcnow
from models.db import session_scope
from models.reviews import STATUSES
from worker.reviews import decide_review

router = APIRouter(prefix="/review", include_in_schema=False)
templates = Jinja2Templates(env=Environment(loader=PackageLoader("api", "templates"),
                                            autoescape=select_autoescape(default=True)))
PAGE_SIZE = 25


def _render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    principal = context.get("principal")
    context.setdefault("token", form_token(request) if principal else "")
    return templates.TemplateResponse(request, name, context, status_code=status_code,
                                      headers=SECURITY_HEADERS)


def _back(path: str) -> RedirectResponse:
    # 303: the browser follows a form's POST with a GET (no resubmission on reload).
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def _problem(request: Request, principal: Principal | None, status_code: int, message: str) -> HTMLResponse:
    return _render(request, "review/message.html", status_code, principal=principal, message=message)


@router.get("", response_class=HTMLResponse)
def queue_page(request: Request, status: Annotated[str, Query(max_length=20)] = "pending",
               group: Annotated[str, Query(max_length=100)] = "",
               offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    """The queue (or the sign-in form): oldest first, filtered by status and group."""
    principal = page_principal(request)
    if principal is None:
        return _render(request, "review/login.html")
    status = status if status in STATUSES else "pending"
    with request.app.state.read_sessions() as session:
        items, total = review_store.list_items(session, org_id=principal.org_id, status=status, app_id=None,
                                               assignee_group=group or None, limit=PAGE_SIZE, offset=offset)
        counts = review_store.count_by_status(session, org_id=principal.org_id, assignee_group=group or None)
        ids = {i.app_id for i in items}
        names = dict(session.execute(select(App.id, App.name).where(App.id.in_(ids))).all())
    return _render(request, "review/queue.html", principal=principal, items=items, total=total, counts=counts,
                   status=status, group=group, offset=offset, page_size=PAGE_SIZE, app_names=names,
                   now=utcnow())


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, email: Annotated[str, Form(max_length=254)] = "",
          password: Annotated[str, Form(max_length=256)] = "",
          key: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Check an email and password (or a key) once and open a session; the browser keeps only the
    session's id."""
    if not same_site(request):
        return _render(request, "review/login.html", 403, error="Sign in from this site's own page.")
    try:
        if key.strip():
            cookie = open_page_session(request.app.state.session_factory, key.strip())
        elif email.strip() and password:
            cookie = open_person_session(request, email, password)
        else:
            raise LoginRefused("Give your email and password (or an API key).")
    except LoginRefused as exc:
        return _render(request, "review/login.html", 401, error=str(exc), email=email.strip(),
                       use_key=bool(key))
    except RateLimited as exc:
        page = _render(request, "review/login.html", 429, error=f"Too many attempts: {exc.message}.",
                       email=email.strip())
        page.headers.update(exc.headers or {})
        return page
    response = _back("/review")
    sign_in(request, response, cookie)
    return response


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request, token: Annotated[str, Form(max_length=100)]) -> Response:
    """End this browser's session."""
    if not token_ok(request, token):
        return _problem(request, page_principal(request), 403, "This form has expired; reload the page.")
    response = _back("/review")
    sign_out(request, response)
    return response


@router.get("/items/{review_id}", response_class=HTMLResponse)
def item_page(request: Request, review_id: uuid.UUID) -> Response:
    """One item: instructions, the editable text, its context and the run so far."""
    principal = page_principal(request)
    if principal is None:
        return _back("/review")
    with request.app.state.read_sessions() as session:
        try:
            item = review_store.get_item(session, org_id=principal.org_id, item_id=review_id)
        except MantleError as exc:
            return _problem(request, principal, exc.status_code, exc.message)
        read = review_read(session, item, request.app.state.registry, request.app.state.settings)
        app = session.get(App, item.app_id)
    return _render(request, "review/item.html", principal=principal, item=read,
                   app_name=app.name if app else "", mine=read.claimed_by == principal.actor)


@router.post("/items/{review_id}/claim", response_class=HTMLResponse)
def claim(request: Request, review_id: uuid.UUID, token: Annotated[str, Form(max_length=100)]) -> Response:
    """Take the item so nobody else decides it meanwhile."""
    principal = page_principal(request)
    if principal is None:
        return _back("/review")
    if not token_ok(request, token):
        return _problem(request, principal, 403, "This form has expired; reload the page.")
    try:
        with session_scope(request.app.state.session_factory) as session:
            item = review_store.get_item(session, org_id=principal.org_id, item_id=review_id, lock=True)
            review_store.claim(session, item=item, actor=principal.actor,
                               ttl_s=request.app.state.settings.review_claim_s)
    except MantleError as exc:
        return _problem(request, principal, exc.status_code, exc.message)
    return _back(f"/review/items/{review_id}")


@router.post("/items/{review_id}/decision", response_class=HTMLResponse)
def decision(request: Request, review_id: uuid.UUID, token: Annotated[str, Form(max_length=100)],
             action: Annotated[str, Form(pattern="^(approve|reject)$")],
             text: Annotated[str, Form(max_length=100_000)] = "",
             note: Annotated[str, Form(max_length=5000)] = "") -> Response:
    """Approve (an edited text counts as `edit`) or reject; then back to the item."""
    principal = page_principal(request)
    if principal is None:
        return _back("/review")
    if not token_ok(request, token):
        return _problem(request, principal, 403, "This form has expired; reload the page.")
    try:
        with request.app.state.read_sessions() as session:
            original = review_store.get_item(session, org_id=principal.org_id, item_id=review_id).text
        # Browsers send a textarea's line breaks as CRLF.
        edited = text.replace("\r\n", "\n")
        chosen, new_text = action, None
        if action == "approve" and edited != original:
            chosen, new_text = "edit", edited
        decide_review(request.app.state.session_factory, request.app.state.submitter.enqueue,
                      org_id=principal.org_id, review_id=review_id, actor=principal.actor,
                      reviewer=principal.name, action=chosen, text=new_text, note=note.strip())
    except MantleError as exc:
        return _problem(request, principal, exc.status_code, exc.message)
    return _back(f"/review/items/{review_id}")
