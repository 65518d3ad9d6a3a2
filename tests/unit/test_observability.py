"""What operators see of the engine without services: run and node metrics counted once per
committed step, run identity unbound after each task, and a worker's readiness answers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import REGISTRY

from builder.executor import NodeFailed, NodeState, NodeSucceeded, RunFinished, RunStarted
from core.statuses import NodeStatus, RunStatus
from worker.health import WorkerHealth
from worker.observability import StepMetrics, run_logging

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def node(status: NodeStatus, seconds: float) -> NodeState:
    return NodeState(status=status, started_at=T0, finished_at=T0 + timedelta(seconds=seconds))


def test_a_step_counts_run_transitions_and_final_node_attempts_once_published() -> None:
    app = str(uuid.uuid4())
    step = StepMetrics(app)
    step.note(RunStarted(at=T0, node_id=None), None, None)
    step.note(NodeSucceeded(at=T0, node_id="greet", outputs={}), node(NodeStatus.succeeded, 0.25),
              "text.template")
    retrying = NodeFailed(at=T0, node_id="call", error="503", retry_at=T0 + timedelta(seconds=5))
    step.note(retrying, node(NodeStatus.pending, 1.0), "http.request")
    step.note(RunFinished(at=T0, node_id=None, status=RunStatus.succeeded), None, None)
    before = sample("mantle_node_duration_seconds_count", block_type="http.request", status="pending")
    assert sample("mantle_runs_started_total", app=app) == 0, "nothing counts before the commit"
    step.publish()
    assert sample("mantle_runs_started_total", app=app) == 1
    assert sample("mantle_runs_finished_total", app=app, status="succeeded") == 1
    assert sample("mantle_node_duration_seconds_bucket", block_type="text.template", status="succeeded",
                  le="0.5") >= 1
    after = sample("mantle_node_duration_seconds_count", block_type="http.request", status="pending")
    assert after == before, "a node that will be retried has not ended"


def test_run_identity_is_unbound_when_the_task_ends() -> None:
    structlog.contextvars.clear_contextvars()
    with run_logging("run-1", node_id="gen"):
        structlog.contextvars.bind_contextvars(org_id="org-1", app_id="app-1")  # as the engine does
        assert structlog.contextvars.get_contextvars() == {
            "run_id": "run-1", "node_id": "gen", "org_id": "org-1", "app_id": "app-1"}
    assert structlog.contextvars.get_contextvars() == {}, "a reused thread must not carry the last run"


def call(app: WorkerHealth, path: str) -> tuple[str, dict[str, Any]]:
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    body = b"".join(app({"PATH_INFO": path}, start_response))
    return seen["status"], json.loads(body)


def test_a_worker_is_ready_only_when_it_consumes_and_every_dependency_answers() -> None:
    broker: list[str | None] = ["broker unreachable: ConnectionError: refused"]
    health = WorkerHealth({"database": lambda: None, "broker": lambda: broker[0]})
    assert call(health, "/healthz") == ("200 OK", {"status": "ok"})
    status, body = call(health, "/readyz")
    assert status.startswith("503")
    assert {d["loc"][0]: d["msg"] for d in body["detail"]} == {
        "worker": "not consuming its queues yet", "broker": "broker unreachable: ConnectionError: refused"}
    health._ready()  # Celery's worker_ready
    broker[0] = None
    assert call(health, "/readyz") == ("200 OK", {"status": "ready", "database": "ok", "broker": "ok"})
    health._stopping()  # a warm shutdown takes it out of rotation
    assert call(health, "/readyz")[0].startswith("503")
