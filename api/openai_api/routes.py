"""`/openai/v1`: the organization's deployments as OpenAI's Models and Chat Completions APIs.

A chat completion is admitted against the organization's quota (429 with Retry-After when over
it), stored with the request it asks for, and sent to its deployment's inference queue by id,
all before the answer is awaited: the inference worker answers it with the same batching engine
that serves runs (or calls the provider, for a provider deployment) and writes the text to the
row as it grows. The API waits on the row (the run watcher: PostgreSQL NOTIFY, or the SQLite
file's commits) and answers in one body, or streams each new piece of text as an OpenAI chunk.
A caller that leaves cancels its request; the worker drops it from its batch.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.deps import Builder, Principal, SessionDep, SettingsDep
from api.idempotency import NOT_BLANK
from api.openai_api.errors import RESPONSES, ModelNotFound, QuotaExceeded
from api.openai_api.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatRequest,
    Choice,
    ModelCard,
    ModelList,
    Usage,
)
from api.threads import starting_run
from api.watch import RunWatcher
from core.errors import MantleError
from core.settings import Settings
from inference.deployments import Deployment, configured, parse_organization
from models import deployments as deployment_store
from models import quotas
from models.completions import ENDED, CompletionStatus, cancel, create_completion, read_completion
from models.db import session_scope
from worker.inference.provider import HOPS_HEADER, MAX_HOPS

log = structlog.get_logger("mantle.openai")
router = APIRouter(prefix="/openai/v1", tags=["openai"], responses=RESPONSES)

COMPLETE_TASK = "inference.complete"  # served by worker/inference/tasks.py
MAX_WAIT_S = 600.0  # a request still unanswered then is cancelled
KEEP_ALIVE_S = 15.0
# A failed request's error type → the status and code OpenAI's clients know.
FAILURES = {"context_too_long": (400, "context_length_exceeded"),
            "unknown_model": (404, "model_not_found"), "model_unavailable": (503, "model_unavailable"),
            "rate_limited": (429, "rate_limit_exceeded")}

IdempotencyKey = Annotated[str | None, Header(max_length=255, description=(
    "A retry with the same key gets the first request's answer: it is generated (and billed) once.")),
    NOT_BLANK]
# How many Mantle provider calls led to this request (set by Mantle's own provider calls): a
# provider deployment pointing back at Mantle, at itself, must not loop forever.
Hops = Annotated[int, Header(alias=HOPS_HEADER, ge=0, le=MAX_HOPS - 1, description=(
    "Set by Mantle when one of its provider deployments calls this API; past "
    f"{MAX_HOPS - 1} hops the request is refused."))]


class CompletionFailed(MantleError):
    """The model could not answer."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status_code, self.type = status, code


@dataclass(frozen=True)
class Started:
    """A stored request: its id, when it was made, the model asked for."""

    id: uuid.UUID
    org_id: uuid.UUID
    created: int
    model: str

    @property
    def name(self) -> str:
        """Its id as OpenAI's clients see it."""
        return f"chatcmpl-{self.id.hex}"


@dataclass(frozen=True)
class Snapshot:
    """The request's row as read now."""

    status: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    error: str | None
    error_type: str | None


def resolve(settings: Settings, session: Session, org_id: uuid.UUID, name: str) -> Deployment:
    """The deployment the organization calls `name`; 404 in OpenAI's words when it has none."""
    found = configured(settings).get(name)
    if found is not None:
        return found
    row = deployment_store.find_deployment(session, org_id=org_id, name=name)
    try:
        if row is not None:
            return parse_organization(row.spec)
    except ValueError:
        pass  # a stored deployment refused by a later rule is no model to call
    raise ModelNotFound(f"The model {name!r} does not exist or you do not have access to it.",
                        loc=["body", "model"])


@router.get("/models", response_model=ModelList)
def list_models(principal: Builder, session: SessionDep, settings: SettingsDep) -> ModelList:
    """The deployments the organization may use, as OpenAI's model list."""
    cards = [ModelCard(id=name, created=0, owned_by="mantle") for name in configured(settings)]
    for row in deployment_store.list_deployments(session, org_id=principal.org_id):
        cards.append(ModelCard(id=row.name, created=int(row.created_at.timestamp()),
                               owned_by="organization"))
    return ModelList(data=cards)


def _start(request: Request, principal: Principal, body: ChatRequest, key: str | None, hops: int) -> Started:
    """Store the request (admitted against the quota) and send it to its inference queue."""
    state = request.app.state
    with session_scope(state.session_factory) as session:
        deployment = resolve(state.settings, session, principal.org_id, body.model)
        row, new = create_completion(session, org_id=principal.org_id, deployment=body.model,
                                     request={**body.payload(), "hops": hops}, idempotency_key=key)
        if new:  # a retry with its key was admitted (and billed) the first time
            refusal = quotas.admit(session, org_id=principal.org_id)
            if refusal is not None:
                raise QuotaExceeded(refusal.message, refusal.retry_after_s)  # rolls the request back
        started = Started(row.id, principal.org_id, int(row.created_at.timestamp()), body.model)
    if new:
        try:
            state.submitter.celery.send_task(COMPLETE_TASK, args=[str(started.id)], queue=deployment.queue)
        except Exception as exc:  # stored: the resend sweep sends it once the broker answers
            log.warning("completion_send_failed", completion_id=str(started.id),
                        error=str(exc).splitlines()[0])
    return started


def _read(sessions: sessionmaker[Session], started: Started) -> Snapshot:
    with sessions() as session:
        row = read_completion(session, org_id=started.org_id, completion_id=started.id)
        if row is None:  # pruned: it ended a day ago
            return Snapshot(CompletionStatus.cancelled.value, "", 0, 0, None, "the request is gone", "gone")
        return Snapshot(row.status, row.text, row.prompt_tokens or 0, row.completion_tokens,
                        row.finish_reason, row.error, row.error_type)


def _cancel(sessions: sessionmaker[Session], started: Started) -> None:
    with session_scope(sessions) as session:
        cancel(session, completion_id=started.id)


def _failure(found: Snapshot) -> CompletionFailed:
    status, code = FAILURES.get(found.error_type or "", (500, found.error_type or "server_error"))
    return CompletionFailed(found.error or "the model did not answer", status, code)


async def _changes(request: Request, started: Started) -> AsyncIterator[Snapshot]:
    """The request's row each time it may have changed, until it ends; cancels it if the caller
    leaves or the wait is over."""
    watcher: RunWatcher = request.app.state.watcher
    deadline = time.monotonic() + MAX_WAIT_S
    ended = False
    try:
        with watcher.subscribe(started.id) as changed:
            while True:
                found = await run_in_threadpool(_read, request.app.state.read_sessions, started)
                ended = found.status in ENDED
                yield found
                if ended:
                    return
                if time.monotonic() > deadline:
                    raise CompletionFailed(f"no answer within {MAX_WAIT_S:g} s", 504, "timeout")
                if await request.is_disconnected():
                    return
                await watcher.next_change(changed, 1.0)
    finally:
        if not ended:
            await run_in_threadpool(_cancel, request.app.state.session_factory, started)


@router.post("/chat/completions", response_model=None, responses={200: {
    "model": ChatCompletion, "description": "The answer; with `stream`, Server-Sent Events of "
                                            "`chat.completion.chunk` objects ending with `data: [DONE]`",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def chat_completions(body: ChatRequest, principal: Builder, request: Request,
                           idempotency_key: IdempotencyKey = None, hops: Hops = 0) -> Response:
    """Generate the assistant's next message with one of the organization's deployments."""
    started = await starting_run(request.app.state, _start, request, principal, body, idempotency_key, hops)
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_stream(request, started, usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    found: Snapshot | None = None
    async for seen in _changes(request, started):
        found = seen
    if found is None or found.status != CompletionStatus.succeeded.value:
        raise _failure(found) if found is not None else CompletionFailed("cancelled", 499, "cancelled")
    answer = ChatCompletion(
        id=started.name, created=started.created, model=started.model,
        choices=[Choice(message=AssistantMessage(content=found.text),
                        finish_reason=found.finish_reason or "stop")],
        usage=Usage(prompt_tokens=found.prompt_tokens, completion_tokens=found.completion_tokens,
                    total_tokens=found.prompt_tokens + found.completion_tokens))
    return JSONResponse(answer.model_dump(mode="json"))


async def _stream(request: Request, started: Started, usage: bool) -> AsyncIterator[str]:
    """The answer as OpenAI streams it: a role chunk, content chunks, a finish chunk, the usage
    chunk when asked for, `[DONE]`; an error mid-way is an `error` event."""
    base: dict[str, Any] = {"id": started.name, "object": "chat.completion.chunk",
                            "created": started.created, "model": started.model, "system_fingerprint": None}

    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return f"data: {json.dumps({**body, 'usage': None} if usage else body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    sent, quiet_since = 0, time.monotonic()
    try:
        async for found in _changes(request, started):
            if len(found.text) > sent and found.status != CompletionStatus.cancelled.value:
                yield chunk({"content": found.text[sent:]})
                sent, quiet_since = len(found.text), time.monotonic()
            elif time.monotonic() - quiet_since > KEEP_ALIVE_S:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            if found.status == CompletionStatus.succeeded.value:
                yield chunk({}, found.finish_reason or "stop")
                if usage:
                    tokens = {"prompt_tokens": found.prompt_tokens,
                              "completion_tokens": found.completion_tokens,
                              "total_tokens": found.prompt_tokens + found.completion_tokens}
                    yield f"data: {json.dumps({**base, 'choices': [], 'usage': tokens})}\n\n"
            elif found.status in ENDED:
                yield _error_event(_failure(found))
    except CompletionFailed as exc:
        yield _error_event(exc)
    yield "data: [DONE]\n\n"


def _error_event(failed: CompletionFailed) -> str:
    """A failure after the stream began, as OpenAI sends one (its clients raise it)."""
    error = {"message": failed.message, "type": "server_error", "param": None, "code": failed.type}
    return f"data: {json.dumps({'error': error})}\n\n"
