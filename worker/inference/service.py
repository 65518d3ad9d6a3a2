"""What an inference worker does with one request: read it, generate, stream, record.

The request itself is the waiting node's record (`node_runs.waiting_for`), so a message only
carries ids and a resent message asks for exactly the same thing. While the tokens come, the
partial text goes to the run's event log and the run's heartbeat is kept fresh (both written in
bulk by the process's `RunReporter`); a run that stopped waiting (cancelled, failed elsewhere)
has its request dropped from the batch. The result —
text, finish reason, token counts, queue wait, time to first token, generation time — is
recorded on the node run with the run engine's `record_result`, which sends the run on.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from models.deployments import find_deployment
from models.runs import NodeRun, Run
from worker.inference import metrics
from worker.inference.deployments import Deployment, configured, parse_organization
from worker.inference.registry import ModelRegistry
from worker.inference.reporter import RunReporter
from worker.inference.requests import GenerationRequest
from worker.inference.sampling import SamplingParams
from worker.inference.sources import ModelUnavailable
from worker.inference.tokens import Tokenizer

log = structlog.get_logger("mantle.inference")

Record = Callable[[uuid.UUID, str, dict[str, Any]], bool]
WRITE_EVERY_S = 0.2  # partial text is coalesced to at most one event per request this often
CLOCK_SLACK_S = 1.0  # machines' clocks differ a little: a heartbeat this close to a send is not newer


class PromptTooLong(ValueError):
    """The prompt does not fit the model's context and the node says to refuse it."""


def prompt_ids(tokenizer: Tokenizer, payload: dict[str, Any],
               deployment: Deployment) -> tuple[list[int], int, int]:
    """The prompt's token ids, how many were cut from its start, and the new-token limit."""
    prompt, system = str(payload.get("prompt", "")), payload.get("system")
    if payload.get("chat", True) and tokenizer.has_chat_template:
        ids = tokenizer.chat(prompt, system)
    else:
        ids = tokenizer.encode(f"{system}\n\n{prompt}" if system else prompt)
    max_new = min(int(payload.get("max_new_tokens", 256)), deployment.max_context - 1)
    room = deployment.max_context - max_new
    if len(ids) <= room:
        return ids, 0, max_new
    if payload.get("on_overflow") == "reject":
        raise PromptTooLong(f"the prompt is {len(ids)} tokens; {deployment.name} takes "
                            f"{deployment.max_context} in all, {max_new} of them kept for the answer")
    return ids[-room:], len(ids) - room, max_new


class InferenceService:
    """Serves `inference.generate` requests in one worker process."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], record: Record,
                 registry: ModelRegistry | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.record = record
        self.registry = registry or ModelRegistry(settings)
        self.reporter = RunReporter(sessions, settings.heartbeat_s, WRITE_EVERY_S)
        self._lock = threading.Lock()
        self._serving: set[tuple[uuid.UUID, str]] = set()

    def resolve(self, org_id: uuid.UUID, name: str) -> Deployment | None:
        """The deployment `name` means for the organization: settings first, then its own."""
        found = configured(self.settings).get(name)
        if found is not None:
            return found
        with self.sessions() as session:
            row = find_deployment(session, org_id=org_id, name=name)
            spec = row.spec if row is not None else None
        if spec is None:
            return None
        try:
            return parse_organization(spec)
        except ValueError as exc:
            raise ModelUnavailable(f"model deployment {name!r} is refused: {exc}") from None

    def pinned(self) -> list[Deployment]:
        """Every pinned deployment: settings' and organizations'."""
        from models.deployments import pinned_specs

        found = [d for d in configured(self.settings).values() if d.pinned]
        try:
            with self.sessions() as session:
                specs = pinned_specs(session)
        except Exception as exc:  # a database not migrated yet must not stop the settings' models
            log.warning("pinned_lookup_failed", error=str(exc).splitlines()[0])
            return found
        for spec in specs:
            try:
                found.append(parse_organization(spec))
            except ValueError as exc:
                log.warning("pinned_deployment_refused", name=spec.get("name"), error=str(exc))
        return found

    def _job(self, run_id: uuid.UUID, node_id: str,
             sent_at: float | None) -> tuple[uuid.UUID, dict[str, Any]] | None:
        """The run's organization and the request, if the node still waits for it and nobody else
        is serving it (another worker's heartbeat on the run after this message was sent)."""
        with self.sessions() as session:
            row = session.execute(
                select(Run.org_id, Run.status, Run.heartbeat_at, NodeRun.status, NodeRun.waiting_for,
                       NodeRun.result)
                .join(NodeRun, NodeRun.run_id == Run.id)
                .where(Run.id == run_id, NodeRun.node_id == node_id)).one_or_none()
        if row is None:
            return None
        org_id, run_status, heartbeat_at, node_status, waiting_for, result = row
        if run_status != "waiting" or node_status != "waiting" or result is not None \
                or not waiting_for or waiting_for.get("kind") != "inference":
            return None
        if sent_at is not None and heartbeat_at.timestamp() > sent_at + CLOCK_SLACK_S:
            return None  # a resent copy: the run has been heard from since it was sent
        return org_id, dict(waiting_for.get("payload") or {})

    def generate(self, run_id: uuid.UUID, node_id: str, sent_at: float | None = None) -> str:
        """Serve one request end to end; returns what became of it."""
        key = (run_id, node_id)
        with self._lock:
            if key in self._serving:
                return "duplicate"
            self._serving.add(key)
        try:
            job = self._job(run_id, node_id, sent_at)
            if job is None:
                return "dropped"  # a duplicate message, or the run moved on
            structlog.contextvars.bind_contextvars(org_id=str(job[0]))
            stopped = self.reporter.watch(run_id)
            try:
                return self._serve(run_id, node_id, sent_at, *job, stopped)
            finally:
                self.reporter.unwatch(run_id)
        finally:
            with self._lock:
                self._serving.discard(key)

    def _serve(self, run_id: uuid.UUID, node_id: str, sent_at: float | None, org_id: uuid.UUID,
               payload: dict[str, Any], stopped: threading.Event) -> str:
        try:
            deployment = self.resolve(org_id, str(payload.get("model", "")))
        except ModelUnavailable as exc:
            self.record(run_id, node_id, {"error": str(exc)})
            return "error"
        if deployment is None:
            self.record(run_id, node_id, {"error": f"unknown model deployment {payload.get('model')!r}"})
            return "error"
        try:
            with self.registry.use(deployment) as batcher:
                ids, truncated, max_new = prompt_ids(batcher.backend.tokenizer, payload, deployment)
                request = GenerationRequest(
                    ids, max_new_tokens=max_new, sent_at=sent_at, params=sampling(payload),
                    stop=tuple(payload.get("stop") or ()), stream_every=self.settings.inference_stream_every)
                if not stopped.is_set():
                    batcher.submit(request)
                    self._follow(run_id, node_id, request, stopped)
                else:
                    request.finish("cancelled", "")
                backend_name = batcher.backend.name
        except (ModelUnavailable, PromptTooLong) as exc:
            self.record(run_id, node_id, {"error": str(exc)})
            return "error"
        if request.finish_reason == "cancelled":
            return "cancelled"
        if request.finish_reason == "error":
            self.record(run_id, node_id, {"error": f"generation failed: {request.error}"})
            return "error"
        timing = request.timings()
        if timing["generation_s"]:
            timing["tokens_per_s"] = round(len(request.generated) / timing["generation_s"], 1)
            metrics.REQUEST_TPS.labels(deployment.name).observe(timing["tokens_per_s"])
        self.record(run_id, node_id, {
            "text": request.text, "finish_reason": request.finish_reason, "prompt_tokens": len(ids),
            "completion_tokens": len(request.generated), "model": deployment.name, "backend": backend_name,
            "truncated_prompt_tokens": truncated, "timing": timing})
        return str(request.finish_reason)

    def _follow(self, run_id: uuid.UUID, node_id: str, request: GenerationRequest,
                stopped: threading.Event) -> None:
        """Pass partial text on until the request is done; drop the request if its run stops waiting."""
        while True:
            finished = request.done(WRITE_EVERY_S)
            parts = []
            while not request.updates.empty():
                parts.append(request.updates.get_nowait())
            if parts:
                self.reporter.progress(run_id, node_id, "".join(parts), len(request.generated))
            if stopped.is_set() and not finished:
                request.cancel()
            if finished:
                self.reporter.flush()
                return


def sampling(payload: dict[str, Any]) -> SamplingParams:
    """A request's sampling parameters."""
    return SamplingParams(temperature=float(payload.get("temperature", 0.0)),
                          top_p=float(payload.get("top_p", 1.0)), top_k=int(payload.get("top_k", 0)),
                          repetition_penalty=float(payload.get("repetition_penalty", 1.0)),
                          seed=payload.get("seed"))
