"""The inference queue's Celery side: the wait handler that sends requests, the task that serves
them, and the sweep that resends requests whose worker died.

This module is imported by every worker (for the wait handler) and must not import torch;
the serving code is imported on the first request, in inference workers only. Inference
workers run Celery's thread pool, so concurrent requests for a model reach the one batching
engine of their process and are decoded together.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import timedelta
from functools import lru_cache, partial
from typing import TYPE_CHECKING

import structlog
from celery import Celery
from sqlalchemy import select

from blocks.suspends import InferenceRequest
from core.settings import Settings, get_settings
from inference.deployments import configured, parse_organization
from models import completions
from models.base import utcnow
from models.db import session_factory, session_scope
from models.deployments import find_deployment
from models.runs import NodeRun, Run
from worker.celery_app import celery_app
from worker.engine import record_result
from worker.hooks import WaitContext
from worker.observability import run_logging
from worker.transport import RUNS_QUEUE

if TYPE_CHECKING:
    from worker.inference.service import InferenceService

log = structlog.get_logger("mantle.inference")


def queue_for(settings: Settings, org_id: uuid.UUID, name: str) -> str:
    """The queue whose workers serve deployment `name` (the default queue if it is unknown)."""
    found = configured(settings).get(name)
    if found is None:
        with session_factory(settings.resolved_database_url)() as session:
            row = find_deployment(session, org_id=org_id, name=name)
            spec = row.spec if row is not None else None
        with contextlib.suppress(ValueError):  # a refused deployment fails on the default queue
            found = parse_organization(spec) if spec is not None else None
    return found.queue if found is not None else "inference"


def send(settings: Settings, run_id: uuid.UUID, org_id: uuid.UUID, node_id: str, model: str,
         sent_at: float | None = None, countdown: int | None = None) -> None:
    """Ask an inference worker to serve the node's request (`countdown`: not before that many seconds)."""
    celery_app.send_task("inference.generate", args=[str(run_id), node_id, sent_at or time.time()],
                         queue=queue_for(settings, org_id, model), countdown=countdown)


def send_completion(celery: Celery, queue: str, completion_id: uuid.UUID) -> None:
    """Ask an inference worker to serve an OpenAI-compatible request (its row is committed)."""
    celery.send_task("inference.complete", args=[str(completion_id)], queue=queue)


def send_inference(ctx: WaitContext) -> None:
    """The wait handler of kind `inference` (`llm.prompt`): send the request once the wait is committed."""
    send(ctx.settings, ctx.run_id, ctx.org_id, ctx.node_id, InferenceRequest.read(ctx.suspend.payload).model)


@lru_cache
def service() -> InferenceService:
    """This process's inference service (loads torch; inference workers only)."""
    from worker.inference.service import InferenceService
    from worker.tasks import enqueue_advance  # the run queue's tasks (they import this module)

    settings = get_settings()
    sessions = session_factory(settings.resolved_database_url)

    def resend_later(run_id: uuid.UUID, node_id: str, sent_at: float, countdown: int) -> None:
        with sessions() as session:
            found = session.execute(select(Run.org_id, NodeRun.waiting_for)
                                    .join(NodeRun, NodeRun.run_id == Run.id)
                                    .where(Run.id == run_id, NodeRun.node_id == node_id)).one_or_none()
        if found is not None:
            model = str(((found[1] or {}).get("payload") or {}).get("model", ""))
            send(settings, run_id, found[0], node_id, model, sent_at=sent_at, countdown=countdown)

    record = partial(record_result, sessions, settings.max_value_bytes, enqueue_advance)
    return InferenceService(settings, sessions, record, resend=resend_later)


def start_serving() -> None:
    """Prepare an inference worker process before it consumes: torch threads and its pinned
    models loaded, so the first request for one of them is not a cold start. (Its metrics are
    served by the worker's health endpoint, `mantle worker --health-port`.)"""
    import torch

    settings = get_settings()
    if settings.inference_threads:
        torch.set_num_threads(settings.inference_threads)
    serving = service()
    serving.registry.preload(serving.pinned())


def pinned_models_probe() -> str | None:
    """None when every pinned model is resident in this worker; else which are not, and why."""
    if service.cache_info().currsize == 0:
        # The worker's main thread builds the service (lru_cache may build twice when two threads
        # race, and this thread's copy would never load anything): until then, it is starting.
        return "the inference service is starting"
    serving = service()
    resident = set(serving.registry.resident)
    missing = [d.name for d in serving.pinned() if d.name not in resident]
    if not missing:
        return None
    errors = serving.registry.load_errors
    return "; ".join(f"model {name} failed to load: {errors[name]}" if name in errors
                     else f"model {name} is loading" for name in missing)


@celery_app.task(name="inference.generate", acks_late=True, reject_on_worker_lost=True)
def generate(run_id: str, node_id: str, sent_at: float | None = None) -> str:
    """Generate the completion a waiting `llm.prompt` node asked for and record it."""
    with run_logging(run_id, node_id=node_id):  # the service adds the organization
        outcome = service().generate(uuid.UUID(run_id), node_id, sent_at)
        log.info("inference_done", outcome=outcome)
        return outcome


@celery_app.task(name="inference.complete", acks_late=True, reject_on_worker_lost=True)
def complete(completion_id: str) -> str:
    """Answer an OpenAI-compatible request and record its result and usage."""
    with run_logging(completion_id):  # the id the API returned, on every line of the request
        outcome = service().complete(uuid.UUID(completion_id))
        log.info("completion_done", outcome=outcome)
        return outcome


@celery_app.task(name="runs.resend_inference", queue=RUNS_QUEUE)
def resend() -> int:
    """Send again the requests nobody is working on (no heartbeat for `inference_resend_after_s`),
    and forget OpenAI-compatible requests that ended a day ago."""
    settings = get_settings()
    stale = utcnow() - timedelta(seconds=settings.inference_resend_after_s)
    found: list[tuple[uuid.UUID, uuid.UUID, str, str]] = []
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        requests = completions.quiet(session, stale_before=stale)
        completions.prune(session, ended_before=utcnow() - timedelta(days=1))
    for completion_id, org_id, deployment in requests:
        send_completion(celery_app, queue_for(settings, org_id, deployment), completion_id)
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        rows = session.execute(
            select(Run, NodeRun.node_id, NodeRun.waiting_for, NodeRun.result)
            .join(NodeRun, NodeRun.run_id == Run.id)
            .where(Run.status == "waiting", Run.heartbeat_at < stale, NodeRun.status == "waiting",
                   NodeRun.block_type == "llm.prompt")
            .with_for_update(of=Run, skip_locked=True).limit(200)).all()
        for run, node_id, waiting_for, result in rows:
            if result is None and (waiting_for or {}).get("kind") == InferenceRequest.kind:
                run.heartbeat_at = utcnow()  # one resend per quiet period, not one per sweep
                found.append((run.id, run.org_id, node_id, str(waiting_for["payload"].get("model", ""))))
    for run_id, org_id, node_id, model in found:
        send(settings, run_id, org_id, node_id, model)
    if found or requests:
        log.info("inference_resent", count=len(found), completions=len(requests))
    return len(found) + len(requests)
