"""What every fault-injection scenario counts, read from the database that is the record of runs.

* `runs`: runs the scenario expected (one per accepted request);
* `succeeded`: those that ended `succeeded`;
* `lost`: expected runs that never ended (or never existed) by the deadline;
* `duplicates`: a node whose completion was recorded more than once in a run, plus every
  side effect repeated (a second SMS to a phone, a second decision on a review).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from sqlalchemy import func, select

from models.db import session_factory
from models.runs import NodeRun, Run, RunEvent

ENDED = ("succeeded", "failed", "blocked", "cancelled")
T = TypeVar("T")


@dataclass
class Counts:
    """The outcome of one scenario."""

    scenario: str
    runs: int = 0
    succeeded: int = 0
    duplicates: int = 0
    lost: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The counts as one JSON object."""
        return asdict(self)

    def report(self) -> str:
        """The counts as one JSON line, whole (an assertion message that is not a string is cut)."""
        return json.dumps(self.as_dict(), default=str)

    @property
    def clean(self) -> bool:
        """Every run succeeded, none was lost, nothing happened twice."""
        return self.succeeded == self.runs and self.lost == 0 and self.duplicates == 0


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Poll `predicate` until it returns something truthy; raise TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


def statuses(database_url: str, run_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The status of each run that exists."""
    ids = list(run_ids)
    with session_factory(database_url)() as session:
        rows = session.execute(select(Run.id, Run.status).where(Run.id.in_(ids))).all()
    return {run_id: str(status) for run_id, status in rows}


def wait_ended(database_url: str, run_ids: Iterable[uuid.UUID], timeout: float) -> dict[uuid.UUID, str]:
    """The runs' statuses once all of them ended, or as they are at the deadline."""
    ids = set(run_ids)
    deadline = time.monotonic() + timeout
    while True:
        found = statuses(database_url, ids)
        if (len(found) == len(ids) and all(s in ENDED for s in found.values())) \
                or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def repeated_nodes(database_url: str, run_ids: Iterable[uuid.UUID]) -> int:
    """(run, node) pairs whose completion was recorded more than once, or that took more than one
    attempt (a retry is a second execution; an attempt lost to a crash is not charged)."""
    ids = list(run_ids)
    with session_factory(database_url)() as session:
        finished = (select(RunEvent.run_id, RunEvent.node_id)
                    .where(RunEvent.run_id.in_(ids), RunEvent.type == "node_finished")
                    .group_by(RunEvent.run_id, RunEvent.node_id).having(func.count() > 1))
        twice = {tuple(r) for r in session.execute(finished)}
        retried = session.execute(select(NodeRun.run_id, NodeRun.node_id)
                                  .where(NodeRun.run_id.in_(ids), NodeRun.attempts > 1)).all()
    return len(twice | {tuple(r) for r in retried})


def recovered_nodes(database_url: str, run_ids: Iterable[uuid.UUID]) -> int:
    """Node claims the reaper took back from a worker that died (each ran again, once)."""
    ids = list(run_ids)
    with session_factory(database_url)() as session:
        return int(session.scalar(select(func.count()).select_from(RunEvent).where(
            RunEvent.run_id.in_(ids), RunEvent.type == "node_recovered")) or 0)


def failures(database_url: str, run_ids: Iterable[uuid.UUID]) -> dict[str, Any]:
    """Why each run that did not succeed stands where it does: its error and its unfinished nodes."""
    ids = list(run_ids)
    found: dict[str, Any] = {}
    with session_factory(database_url)() as session:
        for run in session.scalars(select(Run).where(Run.id.in_(ids), Run.status != "succeeded")):
            nodes = session.execute(select(NodeRun.node_id, NodeRun.status, NodeRun.attempts, NodeRun.error)
                                    .where(NodeRun.run_id == run.id, NodeRun.status != "succeeded")).all()
            found[str(run.id)] = {"status": run.status, "error": run.error,
                                  "nodes": {n: [status, tries, error] for n, status, tries, error in nodes}}
    return found


def count_runs(scenario: str, database_url: str, run_ids: Iterable[uuid.UUID], expected: int,
               timeout: float, started: float) -> Counts:
    """Wait for the runs to end, then count them (`expected`: runs that should exist)."""
    ids = set(run_ids)
    found = wait_ended(database_url, ids, timeout)
    ended = sum(1 for s in found.values() if s in ENDED)
    return Counts(scenario=scenario, runs=expected,
                  succeeded=sum(1 for s in found.values() if s == "succeeded"),
                  duplicates=repeated_nodes(database_url, ids), lost=expected - ended,
                  seconds=round(time.monotonic() - started, 1),
                  details={"not_succeeded": failures(database_url, ids),
                           "recovered_nodes": recovered_nodes(database_url, ids)})
