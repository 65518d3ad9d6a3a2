"""Runs: start (published or draft), test one node, retry or re-run, read with their trace, list,
cancel, and stream events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api import threads
from api.deps import Builder, PageDep, Principal, SessionDep
from api.errors import PRUNED_RESPONSES
from api.idempotency import NOT_BLANK
from api.schemas import NodeTestStart, PageOf, RunGraph, RunRead, RunStart, RunSummary
from api.streams import Batch, Message, follow_run, wait_until_ended
from api.trace import run_read
from core.statuses import TERMINAL, RunStatus
from models import apps as app_store
from models import runs as run_store
from models.db import session_scope
from models.runs import Run, RunKind
from worker.direct import recorded_nodes
from worker.observability import run_finished_elsewhere
from worker.submit import Submitter

router = APIRouter(tags=["runs"])

IdempotencyKey = Annotated[str | None, Header(max_length=255, description="Retries with the same key "
                                              "return the first request's run instead of starting another."),
                           NOT_BLANK]
Wait = Annotated[float, Query(ge=0, le=30, description="Seconds to wait for the run to finish.")]


def _submitter(request: Request) -> Submitter:
    submitter: Submitter = request.app.state.submitter
    return submitter


Make = Callable[[Session, Submitter], tuple[Run, bool]]


def _create(request: Request, make: Make, wait: float, enqueue: bool = True
            ) -> tuple[uuid.UUID, RunRead | None, bool]:
    """Create (or find) the run with `make`; a new run not waited for, or one that ended as it was
    created (`worker/direct.py`), is read here: nothing can have changed it since, and a second
    session (and its round trips) is saved. Last, whether the run is still to be handed to a
    worker (only without `enqueue`: else it was, see `api.threads.start_run`)."""
    sessions: sessionmaker[Session] = request.app.state.session_factory
    submitter = _submitter(request)
    read = None
    with session_scope(sessions) as session:
        run, created = make(session, submitter)
        run_id = run.id
        queue = created and submitter.needs_worker(run)
        if created and (wait <= 0 or not queue):
            # A retry's reused nodes are already recorded; any other new queued run has no node run yet.
            read = run_read(session, run, request.app.state.registry, request.app.state.settings,
                            fresh=queue and run.retry_of is None, recorded=recorded_nodes(run))
    if queue and enqueue:
        submitter.enqueue(run_id)
        queue = False
    return run_id, read, queue


def _read(request: Request, org_id: uuid.UUID, run_id: uuid.UUID) -> RunRead:
    with request.app.state.read_sessions() as session:
        run, nodes = run_store.get_run_and_nodes(session, org_id=org_id, run_id=run_id)
        return run_read(session, run, request.app.state.registry, request.app.state.settings, recorded=nodes)


async def _start(request: Request, response: Response, principal: Principal, app_id: uuid.UUID,
                 body: RunStart, wait: float, idempotency_key: str | None, draft: bool) -> RunRead:
    def make(session: Session, submitter: Submitter) -> tuple[Run, bool]:
        # Nothing more is written in this transaction (`_create` commits it next).
        return submitter.create(session, org_id=principal.org_id, app_id=app_id, inputs=body.inputs,
                                version=None if draft else body.version, draft=draft,
                                idempotency_key=idempotency_key, wait_s=wait, commit=True, end_here=True)

    here = (not draft and body.version is None and idempotency_key is None
            and threads.at_once(request.app.state, principal.org_id, app_id, wait_s=wait))
    return await _answer(request, response, principal, make, wait, at_once=here)


async def _answer(request: Request, response: Response, principal: Principal, make: Make,
                  wait: float, at_once: bool = False) -> RunRead:
    """Create the run, wait for its end up to `wait` seconds; 200 if it ended, else 202.
    `at_once`: on the event loop (`api.threads.at_once` said so)."""
    run_id, read, _ = await threads.start_run(
        request.app.state, _create, request, make, wait, at_once=at_once,
        handed_over=lambda created: created[0] if created[2] else None)
    if wait > 0 and (read is None or read.status not in TERMINAL):
        await wait_until_ended(request, run_id, wait)
    if read is None:
        read = await run_in_threadpool(_read, request, principal.org_id, run_id)
    response.status_code = status.HTTP_200_OK if read.status in TERMINAL else status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/v1/runs/{run_id}"
    return read


@router.post("/apps/{app_id}/runs", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
             responses={200: {"model": RunRead, "description": "The run ended within `wait`, or as it "
                                                               "started (every node pure)"}})
async def start_run(app_id: uuid.UUID, body: RunStart, request: Request, response: Response,
                    principal: Builder, wait: Wait = 0, idempotency_key: IdempotencyKey = None) -> RunRead:
    """Run the latest published version (or `version`): 202 at once, or 200 when it ended within
    `wait` (an app whose nodes are all pure may end as it starts, `wait` or not)."""
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


@router.get("/runs/{run_id}", response_model=RunRead, responses=PRUNED_RESPONSES)
async def get_run(run_id: uuid.UUID, request: Request, principal: Builder) -> RunRead:
    """A run: status, inputs, outputs, error, timings and the trace of every node."""
    # Polled by clients: one trip through the threadpool, on a read session.
    return await run_in_threadpool(_read, request, principal.org_id, run_id)


@router.get("/runs/{run_id}/graph", response_model=RunGraph, responses=PRUNED_RESPONSES)
def get_run_graph(run_id: uuid.UUID, principal: Builder, session: SessionDep) -> RunGraph:
    """The graph the run executed: the published version's, or the draft as it was when the run
    started (a node test's is the tested node fed by a `trigger.api` node named `inputs`). A builder
    draws the run on it, each node beside its trace entry."""
    run = run_store.get_run(session, org_id=principal.org_id, run_id=run_id)
    if run.draft or run.version_id is None or run.kind == RunKind.map_item.value:
        graph = run.draft_graph
    else:
        graph = app_store.version_graph(session, version_id=run.version_id)
    return RunGraph(run_id=run.id, draft=run.draft, version_number=run.version_number,
                    graph=graph or {"nodes": [], "edges": []})


@router.get("/apps/{app_id}/runs", response_model=PageOf[RunSummary])
def list_runs(app_id: uuid.UUID, principal: Builder, session: SessionDep, page: PageDep,
              status_filter: Annotated[RunStatus | None, Query(alias="status")] = None,
              kind: Annotated[RunKind | Literal["all"], Query(description=(
                  "`run` (the default: the app's runs), `node_test` (the builder's tests of one node) "
                  "or `all`."))] = RunKind.run) -> PageOf[RunSummary]:
    """The app's runs, newest first, optionally only those in one status; node tests only when asked."""
    app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    items, total = run_store.list_runs(session, org_id=principal.org_id, app_id=app_id,
                                       status=status_filter.value if status_filter else None,
                                       kind=None if kind == "all" else RunKind(kind),
                                       limit=page.limit, offset=page.offset)
    return PageOf[RunSummary](items=[RunSummary.model_validate(r) for r in items], total=total,
                              limit=page.limit, offset=page.offset)


_AGAIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": RunRead, "description": "The new run finished within `wait`"},
    404: {"description": "No such run in the caller's organization"},
    409: {"description": "The run is in a status that does not allow this (the message names it)"},
    **PRUNED_RESPONSES,
}


@router.post("/runs/{run_id}/retry", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Retry a failed run from its failed nodes", responses=_AGAIN_RESPONSES)
async def retry_run(run_id: uuid.UUID, request: Request, response: Response, principal: Builder,
                    wait: Wait = 0, idempotency_key: IdempotencyKey = None) -> RunRead:
    """Start a new run on the same version (or the same draft graph) with the same inputs, reusing the
    outputs of every node that succeeded in the failed run: those nodes are not executed again (their
    trace entries say `reused`, and the event stream opens with a `node_finished` event for each), so
    a message sent or a model answer received is not repeated. The failed nodes and everything after
    them run again. Only a run that ended `failed` can be retried (409 otherwise, naming its status).
    The new run's `retry_of` names the run it retries. 202 at once, or 200 when it ends within `wait`."""
    def make(session: Session, submitter: Submitter) -> tuple[Run, bool]:
        return submitter.create_again(session, org_id=principal.org_id, run_id=run_id, retry=True,
                                      idempotency_key=idempotency_key)

    return await _answer(request, response, principal, make, wait)


@router.post("/runs/{run_id}/rerun", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Run an ended run again with the same inputs", responses=_AGAIN_RESPONSES)
async def rerun_run(run_id: uuid.UUID, request: Request, response: Response, principal: Builder,
                    wait: Wait = 0, idempotency_key: IdempotencyKey = None) -> RunRead:
    """Start a new run on the same version (or the same draft graph) with the same inputs, every node
    executed again (side effects included: an SMS app replies again). Any ended run can be re-run
    (409 while it has not ended). The new run's `rerun_of` names the run it repeats. 202 at once, or
    200 when it ends within `wait`."""
    def make(session: Session, submitter: Submitter) -> tuple[Run, bool]:
        return submitter.create_again(session, org_id=principal.org_id, run_id=run_id, retry=False,
                                      idempotency_key=idempotency_key)

    return await _answer(request, response, principal, make, wait)


@router.post("/apps/{app_id}/draft/nodes/{node_id}/test", response_model=RunRead,
             status_code=status.HTTP_202_ACCEPTED, summary="Test one node of the draft alone",
             responses={
                 200: {"model": RunRead, "description": "The test finished within `wait`"},
                 404: {"description": "No such app in the caller's organization, or no such node in "
                                      "its draft"},
                 413: {"description": "The inputs are over the size limit"},
                 422: {"description": "The node cannot be tested so: a trigger, side effects not allowed, "
                                      "its config is invalid, or an input does not fit its port (each "
                                      "error's `loc` names the port)"},
             })
async def start_node_test(app_id: uuid.UUID, node_id: Annotated[str, Path(max_length=64)],
                          body: NodeTestStart, request: Request, response: Response, principal: Builder,
                          wait: Wait = 0) -> RunRead:
    """Run one node of the current draft with the inputs given, through the workers like any run: an
    inline block runs on a run worker, `llm.prompt` waits for the inference worker (its text streams
    on the event stream), `human.review` waits in the review queue. The test is a run of `kind`
    `node_test` (left out of the app's run list unless asked for): follow it on
    `GET /v1/runs/{id}/events`, read it with `GET /v1/runs/{id}`; its `outputs` are the node's
    output ports, and its trace shows the node (and the `trigger.api` node named `inputs` that fed
    it). 202 at once, or 200 when it ends within `wait`."""
    def make(session: Session, submitter: Submitter) -> tuple[Run, bool]:
        return submitter.create_node_test(session, org_id=principal.org_id, app_id=app_id, node_id=node_id,
                                          inputs=body.inputs, side_effects=body.side_effects), True

    return await _answer(request, response, principal, make, wait)


@router.post("/runs/{run_id}/cancel", response_model=RunRead, responses=PRUNED_RESPONSES)
def cancel_run(run_id: uuid.UUID, request: Request, principal: Builder, session: SessionDep) -> RunRead:
    """Stop a run that has not ended (409 if it has)."""
    run = run_store.get_run(session, org_id=principal.org_id, run_id=run_id, lock=True)
    run_store.cancel_run(session, run=run, actor=principal.actor)
    session.flush()
    run_finished_elsewhere(str(run.app_id), "cancelled")
    return run_read(session, run, request.app.state.registry, request.app.state.settings)


def _check_run(request: Request, org_id: uuid.UUID, run_id: uuid.UUID) -> None:
    with request.app.state.read_sessions() as session:
        run_store.check_run(session, org_id=org_id, run_id=run_id)


def _events(request: Request, run_id: uuid.UUID, after: int) -> Batch:
    """Every event of the run's log after `after`, as it was recorded.

    The run's status is read before its events: a run that ends between the two reads must not
    end the stream before its last events were read (each statement sees what was committed when
    it began, and a run's events are committed with or before its final status)."""
    with request.app.state.read_sessions() as session:
        status, events = run_store.status_and_events_after(session, run_id=run_id, after=after)
        messages = [Message(e["id"], e["type"], {**e, "at": e["at"].isoformat()}, e["type"] == "run_finished")
                    for e in events]
        ended = status is None or RunStatus(status) in TERMINAL
        return Batch(messages, messages[-1].id if messages else after, ended)


@router.get("/runs/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events until the run ends"}, **PRUNED_RESPONSES})
async def run_events(run_id: uuid.UUID, request: Request, principal: Builder,
                     last_event_id: Annotated[int | None, Header(ge=0)] = None) -> StreamingResponse:
    """The run's events as they happen; a late client first gets what already happened."""
    # One trip through the threadpool on a read session (a sync route with a session dependency
    # took three, and a transaction), then the stream's own reads.
    await run_in_threadpool(_check_run, request, principal.org_id, run_id)
    stream = follow_run(request, run_id, last_event_id or 0, partial(_events, request, run_id))
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
