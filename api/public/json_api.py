"""The public JSON endpoints of a share: the page's twin for scripts, and what the page's script calls.

Nothing here needs an API key; everything is reached through the share's slug and, for a
run, a token that binds the run to the share that started it.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.public.guard import (
    ACCESS_COOKIE,
    CODE_HEADER,
    access_cookie_valid,
    check_origin,
    code_mark,
    set_cookie,
    tokens,
    verify_code,
    visitor_of,
)
from api.public.service import ENDED, TRIGGER, Shared, bound_run, check_limits, limits_of, public_view
from api.public.service import resolve as resolve_share
from api.schemas import Request as Body
from api.streams import Batch, Message, follow_run, wait_until_ended
from api.threads import starting_run
from core.errors import NotFound
from models.base import utcnow
from models.db import session_scope
from models.runs import Run, events_after
from worker.submit import Submitter

router = APIRouter(prefix="/s", tags=["shared apps"])

RunToken = Annotated[str | None, Query(max_length=512, description="The token the run was started with.")]


class AppInfo(BaseModel):
    """What a shared app asks for and gives back."""

    name: str
    description: str
    submit_label: str
    fields: list[dict[str, Any]]
    outputs: list[dict[str, str]]
    requires_access_code: bool
    runs_url: str


class RunRequest(Body):
    """A visitor's inputs (one per form field) and, for a protected link, its access code."""

    inputs: dict[str, Any] = Field(default_factory=dict)
    access_code: str | None = Field(default=None, max_length=200)


class AccessRequest(Body):
    """The access code a visitor typed."""

    code: str = Field(max_length=200)


class Progress(BaseModel):
    """Steps of the app finished so far."""

    done: int
    total: int


class PublicError(BaseModel):
    """Why a run did not succeed, in words meant for the visitor."""

    type: str
    message: str


class PublicRun(BaseModel):
    """A run as a visitor sees it: never its trace, only status, progress, outputs or a friendly error."""

    run_id: uuid.UUID
    status: str
    waiting_for: Literal["review", "work"] | None = None
    progress: Progress
    outputs: dict[str, Any] | None = None
    error: PublicError | None = None
    token: str
    status_url: str
    events_url: str


def _resolve(request: Request, slug: str) -> Shared:
    with request.app.state.read_sessions() as session:
        return resolve_share(session, request.app.state.submitter.analyses, slug, utcnow())


def _described(request: Request, view: dict[str, Any], slug: str, token: str) -> PublicRun:
    base = f"/s/{slug}/runs/{view['run_id']}"
    return PublicRun.model_validate({**view, "token": token, "status_url": f"{base}?token={token}",
                                     "events_url": f"{base}/events?token={token}"})


@router.get("/{slug}/app.json", response_model=AppInfo, responses={410: {"description": "The link expired"}})
def app_info(slug: str, request: Request, access_code: Annotated[str | None, Header(
        alias=CODE_HEADER, max_length=200)] = None) -> AppInfo:
    """The shared app's name, description, form fields and outputs (the page, as data)."""
    shared = _resolve(request, slug)
    if shared.share.has_access_code and not access_cookie_valid(request, shared.share):
        verify_code(request, shared.share, access_code, utcnow())
    return AppInfo(name=shared.app.name, description=shared.app.description, submit_label=shared.submit_label,
                   fields=[f.model_dump(exclude_none=True) for f in shared.fields], outputs=shared.outputs,
                   requires_access_code=shared.share.has_access_code, runs_url=f"/s/{slug}/runs")


def _start(request: Request, slug: str, body: RunRequest, wait: float) -> PublicRun:
    settings = request.app.state.settings
    check_origin(request, settings)
    shared, now = _resolve(request, slug), utcnow()
    visitor = visitor_of(request, shared.share)
    if shared.share.has_access_code and not visitor.access:
        verify_code(request, shared.share, body.access_code, now)
    submitter: Submitter = request.app.state.submitter
    with session_scope(request.app.state.session_factory) as session:
        # Again inside the transaction: a link revoked a moment ago starts nothing.
        shared = resolve_share(session, submitter.analyses, slug, now)
        check_limits(session, shared.share, limits_of(shared.share, visitor.key), now, count=True)
        run, _ = submitter.create(session, org_id=shared.share.org_id, app_id=shared.share.app_id,
                                  inputs=body.inputs, version=shared.version.number, trigger=TRIGGER,
                                  wait_s=wait, commit=True)
        view = public_view(session, run, shared.total_nodes)
        queue = submitter.needs_worker(run)
    if queue:
        submitter.enqueue(run.id)
    token = tokens(request).run.sign({"s": str(shared.share.id), "r": str(run.id)})
    return _described(request, view, slug, token)


def _view(request: Request, slug: str, run_id: uuid.UUID, token: str | None) -> tuple[Shared, PublicRun]:
    data = tokens(request).run.unsign(token)
    with request.app.state.read_sessions() as session:
        shared = resolve_share(session, request.app.state.submitter.analyses, slug, utcnow())
        if data is None or data.get("s") != str(shared.share.id) or data.get("r") != str(run_id):
            raise NotFound("run not found", loc=["path", "run_id"])
        run = bound_run(session, shared, run_id)
        return shared, _described(request, public_view(session, run, shared.total_nodes), slug, token or "")


Wait = Annotated[float, Query(ge=0, le=30, description="Seconds to wait for the run to end.")]
STARTED: dict[int | str, dict[str, Any]] = {
    200: {"model": PublicRun, "description": "The run finished within `wait`"},
    410: {"description": "The link expired"}, 429: {"description": "A limit was reached"},
}


@router.post("/{slug}/runs", response_model=PublicRun, status_code=status.HTTP_202_ACCEPTED,
             responses=STARTED)
async def start_run(slug: str, body: RunRequest, request: Request, response: Response, wait: Wait = 0
                    ) -> PublicRun:
    """Start a run of the shared app: 202 with a token to follow it, or 200 if it ends within `wait`."""
    started = await starting_run(request.app.state, _start, request, slug, body, wait)
    if wait > 0 and started.status not in ENDED:
        await wait_until_ended(request, started.run_id, wait)
        _, started = await run_in_threadpool(_view, request, slug, started.run_id, started.token)
    response.status_code = status.HTTP_200_OK if started.status in ENDED else status.HTTP_202_ACCEPTED
    response.headers["Location"] = started.status_url
    return started


@router.get("/{slug}/runs/{run_id}", response_model=PublicRun)
def get_run(slug: str, run_id: uuid.UUID, request: Request, token: RunToken = None) -> PublicRun:
    """A run started from this link: status, progress, outputs or a friendly error."""
    return _view(request, slug, run_id, token)[1]


@router.get("/{slug}/runs/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`state`, `partial` (model text) events, then one `finished`"}})
def run_events(slug: str, run_id: uuid.UUID, request: Request, token: RunToken = None,
               last_event_id: Annotated[int | None, Header(ge=0)] = None) -> StreamingResponse:
    """The run as it changes (Server-Sent Events): `state` events, then `finished` with the outcome."""
    shared, _ = _view(request, slug, run_id, token)
    feed = partial(_feed, request, run_id, shared.total_nodes, {})
    return StreamingResponse(follow_run(request, run_id, last_event_id or 0, feed),
                             media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


@router.post("/{slug}/access", status_code=status.HTTP_204_NO_CONTENT)
def grant_access(slug: str, body: AccessRequest, request: Request) -> Response:
    """Check the access code a page's visitor typed; a right one lets this browser in for a while."""
    settings = request.app.state.settings
    check_origin(request, settings)
    shared = _resolve(request, slug)
    visitor_of(request, shared.share, need_page=True)
    if shared.share.has_access_code:
        verify_code(request, shared.share, body.code, utcnow())
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    grant = tokens(request).access.sign({"s": str(shared.share.id), "c": code_mark(shared.share)},
                                        settings.share_page_ttl_s)
    set_cookie(request, response, ACCESS_COOKIE, grant, f"/s/{slug}", settings.share_page_ttl_s)
    return response


def _feed(request: Request, run_id: uuid.UUID, total: int, sent: dict[str, Any], after: int) -> Batch:
    """The visitor's view each time the run's log grows; `sent` remembers the last one sent."""
    with request.app.state.read_sessions() as session:
        # The run before its events: one that ends between the two reads is seen running, and
        # read again. An ended run always gets its `finished` message, even when no event came
        # since the last view (its last events may have been read while it still looked running).
        run = session.get(Run, run_id)
        events = events_after(session, run_id=run_id, after=after)
        if run is None:
            return Batch([], after, True)
        cursor, ended = (events[-1].id if events else after), run.status in ENDED
        if not events and sent and not ended:
            return Batch([], cursor, False)
        view = public_view(session, run, total)
    messages = []
    # The model's text as it is produced; the final outputs replace it when the run ends.
    delta = "".join(str(e.data.get("delta", "")) for e in events if e.type == "node_progress")
    if delta and not ended:
        messages.append(Message(cursor, "partial", {"delta": delta}))
    if ended:
        messages.append(Message(cursor, "finished", view, last=True))
    elif view != sent.get("view"):
        messages.append(Message(cursor, "state", view))
    sent["view"] = view
    return Batch(messages, cursor, ended)
