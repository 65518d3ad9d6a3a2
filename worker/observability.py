"""What the run engine tells operators: Prometheus metrics of runs, nodes, SMS and pruned runs, and the
run's identity on every log line.

Metrics are observed only after the step's transaction committed, so a step that rolls back
(and is retried) never counts twice. In a deployment these counters live in the worker
processes; `worker/metrics_export.py` aggregates a process tree's values for one scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter, Histogram

from builder.executor import Event, NodeFailed, NodeState, NodeSucceeded, RunFinished, RunStarted

RUNS_STARTED = Counter("mantle_runs_started_total", "Runs a worker started executing", ["app"])
RUNS_FINISHED = Counter("mantle_runs_finished_total", "Runs that ended, by final status", ["app", "status"])
NODE_SECONDS = Histogram(
    "mantle_node_duration_seconds", "Time of a node's last attempt, by block type and outcome",
    ["block_type", "status"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600),
)
CHILD_RUNS = Counter("mantle_child_runs_started_total",
                     "Child runs started: an item of a flow.map, or an app an app.call ran", ["kind"])
SMS_SENT = Counter("mantle_sms_sent_total", "SMS parts Twilio accepted", ["status"])
SMS_FAILED = Counter("mantle_sms_failed_total", "SMS parts that failed to send", ["reason"])
RUNS_PRUNED = Counter("mantle_runs_pruned_total",
                      "Runs (child runs included) deleted by a retention policy, by whose policy it was",
                      ["source"])

# Every key `run_logging` may leave bound, so one unbind clears them all.
RUN_KEYS = ("run_id", "org_id", "app_id", "node_id")


@dataclass
class StepMetrics:
    """What one engine step observed, applied once its transaction has committed."""

    app_id: str
    started: bool = False
    finished: str | None = None
    nodes: list[tuple[str, str, float]] = field(default_factory=list)

    def note(self, event: Event, node: NodeState | None, block_type: str | None) -> None:
        """Remember what `event` means for the metrics (the executor already applied it)."""
        if isinstance(event, RunStarted):
            self.started = True
        elif isinstance(event, RunFinished):
            self.finished = event.status.value
        elif (isinstance(event, NodeSucceeded | NodeFailed) and node is not None and block_type
              and node.started_at is not None and node.finished_at is not None):
            if isinstance(event, NodeFailed) and event.retry_at is not None:
                return  # a retry is scheduled: the node has not ended
            seconds = max((node.finished_at - node.started_at).total_seconds(), 0.0)
            self.nodes.append((block_type, node.status.value, seconds))

    def publish(self) -> None:
        """Count the step's run transitions and node durations."""
        if self.started:
            RUNS_STARTED.labels(self.app_id).inc()
        if self.finished is not None:
            RUNS_FINISHED.labels(self.app_id, self.finished).inc()
        for block_type, status, seconds in self.nodes:
            NODE_SECONDS.labels(block_type, status).observe(seconds)


def run_finished_elsewhere(app_id: str, status: str) -> None:
    """A run ended outside the engine (cancelled through the API)."""
    RUNS_FINISHED.labels(app_id, status).inc()


def bind_run(*, org_id: object, app_id: object) -> None:
    """Add the run's organization and app to every following log line of this task."""
    structlog.contextvars.bind_contextvars(org_id=str(org_id), app_id=str(app_id))


@contextmanager
def run_logging(run_id: str, **extra: str) -> Iterator[None]:
    """Bind the run id (the engine adds its organization and app) for the block, then unbind all.

    Celery's thread pool reuses threads, and their context variables with them: without the
    unbind, the next task's lines would carry this run's identity.
    """
    structlog.contextvars.bind_contextvars(run_id=run_id, **extra)
    try:
        yield
    finally:
        structlog.contextvars.unbind_contextvars(*RUN_KEYS, *extra)
