"""Webhooks: an app's inbound URL (made, rotated, removed by builders) and the public endpoint.

`POST /hooks/{token}` starts a run of the app's published version with the posted body (see
`api/webhook_inbound.py` for the checks, in order). It answers 202 with the run id, or, when
the trigger says `respond: output`, waits like `POST /v1/apps/{id}/runs?wait=` and answers 200
with the outputs once the run ends (202 if it is still going). The caller never sees a trace.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Path, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import threads
from api.deps import Builder, SessionDep
from api.errors import ErrorBody
from api.idempotency import NOT_BLANK
from api.schemas import Read
from api.streams import wait_until_ended
from api.webhook_inbound import (
    Target,
    check_signature,
    find_target,
    post_inputs,
    read_body,
    start_on_known_target,
)
from blocks.trigger_webhook import SIGNATURE_HEADER, Signature
from core.errors import Forbidden
from core.statuses import TERMINAL, RunStatus
from models import apps as app_store
from models import audit
from models import webhooks as store
from models.db import session_scope
from models.runs import Run, find_by_idempotency_key

router = APIRouter(tags=["webhooks"])
log = structlog.get_logger("mantle.webhooks")
public_router = APIRouter(tags=["webhooks"])


class WebhookRead(Read):
    """An app's webhook URL; the full URL (with its token) is shown only when made or rotated."""

    id: uuid.UUID
    app_id: uuid.UUID
    prefix: str = Field(description="The token's first characters, to tell URLs apart.")
    created_at: datetime
    rotated_at: datetime | None
    url: str | None = Field(default=None, description="POST here; shown once. Keep it secret.")


class WebhookAnswer(BaseModel):
    """What a webhook caller gets: the run, its status and (once it ended) its outputs."""

    run_id: uuid.UUID
    status: str
    outputs: dict[str, Any] | None = None


def _shown(request: Request, row: store.WebhookEndpoint, token: str | None = None) -> WebhookRead:
    read = WebhookRead.model_validate(row)
    if token is not None:
        read.url = f"{request.app.state.settings.public_base_url.rstrip('/')}/hooks/{token}"
    return read


@router.post("/apps/{app_id}/webhook", response_model=WebhookRead, status_code=status.HTTP_201_CREATED)
def create_webhook(app_id: uuid.UUID, request: Request, principal: Builder,
                   session: SessionDep) -> WebhookRead:
    """Make the app's webhook URL (shown once; 409 if it has one: rotate it instead)."""
    app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    row, token = store.create_endpoint(session, org_id=principal.org_id, app_id=app_id, actor=principal.actor)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="webhook.create",
                 target_type="app", target_id=app_id, details={"prefix": row.prefix})
    return _shown(request, row, token)


@router.post("/apps/{app_id}/webhook/rotate", response_model=WebhookRead)
def rotate_webhook(app_id: uuid.UUID, request: Request, principal: Builder,
                   session: SessionDep) -> WebhookRead:
    """Give the app a new webhook URL (shown once); the old one stops working at once."""
    row = store.get_for_app(session, org_id=principal.org_id, app_id=app_id)
    token = store.rotate(session, endpoint=row)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="webhook.rotate",
                 target_type="app", target_id=app_id, details={"prefix": row.prefix})
    return _shown(request, row, token)


@router.get("/apps/{app_id}/webhook", response_model=WebhookRead)
def get_webhook(app_id: uuid.UUID, request: Request, principal: Builder,
                session: SessionDep) -> WebhookRead:
    """The app's webhook (without the token: it was shown when made)."""
    return _shown(request, store.get_for_app(session, org_id=principal.org_id, app_id=app_id))


@router.delete("/apps/{app_id}/webhook", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(app_id: uuid.UUID, principal: Builder, session: SessionDep) -> Response:
    """Remove the app's webhook URL; posts to it get 404 from now on."""
    row = store.get_for_app(session, org_id=principal.org_id, app_id=app_id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="webhook.delete",
                 target_type="app", target_id=app_id, details={"prefix": row.prefix})
    session.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


Started = tuple[Target, uuid.UUID, tuple[str, dict[str, Any] | None] | None, bool]


def _receive(request: Request, token: str, token_digest: str, known: Target | None, body: bytes,
             key: str | None, enqueue: bool = True) -> Started:
    """Check the post and start (or find) its run, in one transaction: the target, the run's id, the
    run's status and outputs when it ended as it was created (`worker/direct.py`), and whether it
    is still to be handed to a worker (only without `enqueue`: else it was, see
    `api.threads.start_run`). `known`: what the URL opened before in this process (`OpenedTargets`),
    looked up by `token_digest` when the post has no Idempotency-Key."""
    state = request.app.state
    submitter, opened = state.submitter, state.webhook_targets
    with session_scope(state.session_factory) as session:
        run = start_on_known_target(session, request, known, token_digest, body, submitter) if known else None
        if known is not None and run is not None:
            target = known
        else:
            if known is not None:
                opened.forget(token_digest)
            target, run, created = _start(session, request, token, body, key)
            if not created:
                return target, run.id, None, False
            if target.secret is None and session.get_bind().dialect.name == "postgresql":
                opened.put(token_digest, target)  # SQLite has no round trips to save
        run_id = run.id
        queue = submitter.needs_worker(run)
        ended = (run.status, run.outputs) if not queue else None
    if queue and enqueue:
        submitter.enqueue(run_id)
        queue = False
    return target, run_id, ended, queue


def _start(session: Session, request: Request, token: str, body: bytes,
           key: str | None) -> tuple[Target, Run, bool]:
    """Every step of `api/webhook_inbound.py`, in order: the target, the run, and whether it is new."""
    submitter, settings = request.app.state.submitter, request.app.state.settings
    target = find_target(session, token=token, settings=settings, submitter=submitter)
    signature = check_signature(target, body, request.headers.get(SIGNATURE_HEADER), now=time.time(),
                                window_s=settings.webhook_signature_window_s)
    inputs = post_inputs(request, target, body)
    idempotency_key = f"webhook:{target.endpoint_id}:{key}" if key else None
    if signature is not None:
        _claim(session, target, signature, idempotency_key, settings.webhook_signature_window_s)
    run, created = submitter.create(
        session, org_id=target.org_id, app_id=target.app_id, inputs=inputs, published=target.version,
        trigger="webhook", idempotency_key=idempotency_key,
        wait_s=target.config.wait_s if target.config.respond == "output" else 0, commit=True,
        end_here=True)
    return target, run, created


def _claim(session: Session, target: Target, signature: Signature, idempotency_key: str | None,
           window_s: float) -> None:
    """Accept a signature once: a replay is refused, unless it carries its run's Idempotency-Key."""
    if store.claim_signature(session, endpoint_id=target.endpoint_id, signature=signature.mac,
                             keep_s=2 * window_s):
        return
    if find_by_idempotency_key(session, org_id=target.org_id, key=idempotency_key or "") is None:
        log.warning("webhook_signature_replayed", app_id=str(target.app_id))
        raise Forbidden(f"this {SIGNATURE_HEADER} was used already: a post is accepted once "
                        "(sign each post anew, with the time you send it)", loc=["header", SIGNATURE_HEADER])


def _state(request: Request, run_id: uuid.UUID) -> tuple[str, dict[str, Any] | None]:
    with request.app.state.read_sessions() as session:
        row = session.execute(select(Run.status, Run.outputs).where(Run.id == run_id)).one()
        return str(row[0]), row[1]


HOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": WebhookAnswer, "description": "The run ended (respond: output)"},
    415: {"model": ErrorBody, "description": "Neither JSON nor a urlencoded form"},
}


@public_router.post("/hooks/{token}", response_model=WebhookAnswer, status_code=status.HTTP_202_ACCEPTED,
                    responses=HOOK_RESPONSES)
async def receive_webhook(
    token: Annotated[str, Path(max_length=100)], request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200, description="A retry with the same key "
                                                  "gets the first post's run instead of a new one."),
                               NOT_BLANK] = None,
) -> JSONResponse:
    """Start a run of the app from a JSON or form post (signed, when the trigger asks for it)."""
    # The body first (bounded), then everything else in one trip to the threadpool and one
    # transaction: a post costs one database session, and a pure app's run ends inside it.
    app_state = request.app.state
    body = await read_body(request, app_state.settings.max_input_bytes)
    token_digest = store.digest(token)
    known = app_state.webhook_targets.get(token_digest) if idempotency_key is None else None
    # Expected to end in one round trip? Then on the event loop (api/threads.py).
    at_once = known is not None and known.secret is None and threads.at_once(
        app_state, known.org_id, known.app_id, version_id=known.version.id,
        wait_s=known.config.wait_s if known.config.respond == "output" else 0)
    target, run_id, ended, _ = await threads.start_run(
        app_state, _receive, request, token, token_digest, known, body, idempotency_key, at_once=at_once,
        handed_over=lambda started: started[1] if started[3] else None)
    if ended is None:
        if target.config.respond == "output":
            await wait_until_ended(request, run_id, target.config.wait_s)
        ended = await run_in_threadpool(_state, request, run_id)
    state, outputs = ended
    finished = target.config.respond == "output" and RunStatus(state) in TERMINAL
    answer = WebhookAnswer(run_id=run_id, status=state, outputs=outputs if finished else None)
    return JSONResponse(answer.model_dump(mode="json"), status_code=200 if finished else 202,
                        headers={"Location": f"/v1/runs/{run_id}"})
