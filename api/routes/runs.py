"""Runs: start (published or draft), read with their trace, list, cancel, and stream events."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.deps import Builder, CurrentKey, PageDep, Principal, SessionDep
from api.schemas import PageOf, RunRead, RunStart, RunSummary
from api.streams import Batch, Message, follow_run, wait_until_ended
from api.trace import run_read
from builder.executor import TERMINAL, RunStatus
from models import apps as app_store
from models import runs as run_store
from models.db import session_scope
from worker.observability import run_finished_elsewhere
from worker.submit import Submitter

router = APIRouter(tags=["runs"])

IdempotencyKey = Annotated[str | None, Header(max_length=255, description="Retries with the same key "
                                              "return the first request's run instead of starting another.")]
Wait = Annotated[float, Query(ge=0, le=30, description="Seconds to wait for the run to finish.")]


def _submitter(request: Request) -> Submitter:
    submitter: Submitter = request.app.state.submitter
    return submitter


def _create(request: Request, principal: Principal, app_id: uuid.UUID, body: RunStart, draft: bool,
            idempotency_key: str | None, wait: float) -> tuple[uuid.UUID, RunRead | None]:
    """Create (or find) the run; a new run not waited for is read here, before it is enqueued:
    nothing can have changed it yet, and a second session (and its round trips) is saved."""
    sessions: sessionmaker[Session] = request.app.state.session_factory
    submitter = _submitter(request)
    read = None
    with session_scope(sessions) as session:
        run, created = submitter.create(
            session, org_id=principal.org_id, app_id=app_id, inputs=body.inputs,
            version=None if draft else body.version, draft=draft, idempotency_key=idempotency_key)
        run_id = run.id
        if created and wait <= 0:
            read = run_read(session, run, request.app.state.registry, request.app.state.settings, fresh=True)
    if created:
        submitter.enqueue(run_id)
    return run_id, read


def _read(request: Request, org_id: uuid.UUID, run_id: uuid.UUID) -> RunRead:
    with request.app.state.read_sessions() as session:
        run = run_store.get_run(session, org_id=org_id, run_id=run_id)
        return run_read(session, run, request.app.state.registry, request.app.state.settings)


async def _start(request: Request, response: Response, principal: Principal, app_id: uuid.UUID,
                 body: RunStart, wait: float, idempotency_key: str | None, draft: bool) -> RunRead:
    run_id, read = await run_in_threadpool(_create, request, principal, app_id, body, draft, idempotency_key,
                                           wait)
    if wait > 0:
        await wait_until_ended(request, run_id, wait)
    if read is None:
        read = await run_in_threadpool(_read, request, principal.org_id, run_id)
    response.status_code = status.HTTP_200_OK if read.status in TERMINAL else status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/v1/runs/{run_id}"
    return read


@router.post("/apps/{app_id}/runs", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
             responses={200: {"model": RunRead, "description": "The run finished within `wait`"}})
async def start_run(app_id: uuid.UUID, body: RunStart, request: Request, response: Response,
                    principal: CurrentKey, wait: Wait = 0, idempotency_key: IdempotencyKey = None) -> RunRead:
    """Run the latest published version (or `version`): 202 at once, or 200 when it ends within `wait`."""
    return await _start(request, response, principal, app_id, body, wait, idempotency_key, draft=False)


@router.post("/apps/{app_id}/draft/runs", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
             responses={200: {"model": RunRead, "description": "The run finished within `wait`"}})
async def start_draft_run(app_id: uuid.UUID, body: RunStart, request: Request, response: Response,
                          principal: Builder, wait: Wait = 0,
                          idempotency_key: IdempotencyKey = None) -> RunRead:
    """Try the current draft before publishing it (if it validates); the run is marked `draft`."""
    if body.version is not None:
        body = body.model_copy(update={"version": None})
    return await _start(request, response, principal, app_id, body, wait, idempotency_key, draft=True)


@router.get("/runs/{run_id}", response_model=RunRead)
async def get_run(run_id: uuid.UUID, request: Request, principal: CurrentKey) -> RunRead:
    """A run: status, inputs, outputs, error, timings and the trace of every node."""
    # Polled by clients: one trip through the threadpool, on a read session.
    return await run_in_threadpool(_read, request, principal.org_id, run_id)


@router.get("/apps/{app_id}/runs", response_model=PageOf[RunSummary])
def list_runs(app_id: uuid.UUID, principal: CurrentKey, session: SessionDep, page: PageDep,
              status_filter: Annotated[RunStatus | None, Query(alias="status")] = None) -> PageOf[RunSummary]:
    """The app's runs, newest first, optionally only those in one status."""
    app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    items, total = run_store.list_runs(session, org_id=principal.org_id, app_id=app_id,
                                       status=status_filter.value if status_filter else None,
                                       limit=page.limit, offset=page.offset)
    return PageOf[RunSummary](items=[RunSummary.model_validate(r) for r in items], total=total,
                              limit=page.limit, offset=page.offset)


@router.post("/runs/{run_id}/cancel", response_model=RunRead)
def cancel_run(run_id: uuid.UUID, request: Request, principal: Builder, session: SessionDep) -> RunRead:
    """Stop a run that has not ended (409 if it has)."""
    run = run_store.get_run(session, org_id=principal.org_id, run_id=run_id, lock=True)
    run_store.cancel_run(session, run=run, actor=principal.actor)
    session.flush()
    run_finished_elsewhere(str(run.app_id), "cancelled")
    return run_read(session, run, request.app.state.registry, request.app.state.settings)


def _events(request: Request, run_id: uuid.UUID, after: int) -> Batch:
    """Every event of the run's log after `after`, as it was recorded."""
    with request.app.state.read_sessions() as session:
        events = run_store.events_after(session, run_id=run_id, after=after)
        messages = [Message(e.id, e.type, {"id": e.id, "type": e.type, "node_id": e.node_id,
                                           "at": e.at.isoformat(), "data": e.data}, e.type == "run_finished")
                    for e in events]
        run = session.get(run_store.Run, run_id)
        ended = run is None or RunStatus(run.status) in TERMINAL
        return Batch(messages, messages[-1].id if messages else after, ended)


@router.get("/runs/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events until the run ends"}})
def run_events(run_id: uuid.UUID, request: Request, principal: CurrentKey, session: SessionDep,
               last_event_id: Annotated[int | None, Header(ge=0)] = None) -> StreamingResponse:
    """The run's events as they happen; a late client first gets what already happened."""
    run_store.get_run(session, org_id=principal.org_id, run_id=run_id)
    stream = follow_run(request, run_id, last_event_id or 0, partial(_events, request, run_id))
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
