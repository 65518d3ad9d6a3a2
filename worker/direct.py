"""Direct runs: a new run whose every node is pure runs where it was asked, if it can end there soon.

A trigger that waits for its answer (`?wait=`, a webhook with `respond: output`) would otherwise
insert a queued run, publish a message, and wait while a worker locks the run, plans, runs its
nodes, records them and tells the API by a notification, after which the API reads the run back.
When every node of the version is pure (templates, conditions, extraction, the trigger and the
output: nothing outside the run changes, see the `blocks` contract), none of that hop buys
anything: the API process plans and runs the nodes with the same executor, then inserts the run
with its final state, its node runs and its events in the one transaction that creates it. A caller
who does not wait (a run started through the API without `wait`, a webhook answering at once) gets
the same within `MANTLE_DIRECT_RUN_S`: the run's queued insert, its message and a worker's whole
step cost more than its nodes.

The record is the same as a worker's, event for event. What changes is the durability story, and
only in what it has to cover: nothing is recorded until that transaction commits, and the caller
is answered only after it does. If the API process dies in the middle, there is no run and the
caller's request fails (a retry with the same Idempotency-Key starts it once). A run that cannot
end within the step's slice (a slow template, a node waiting to retry) is not recorded from here:
the work is dropped (pure work can be redone unnoticed) and the run goes through the queue as any
other, from its start.

An API process may start such a run on its event loop rather than on a thread (`api/threads.py`).
It then gives the nodes a slice of `LOOP_SLICE_S` only (`on_event_loop`): a run that needs more
raises `NotOnLoop`, having written nothing, and is started again on a thread, so a slow template
never holds the loop up for longer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy.orm import Session

from blocks.base import Execution
from blocks.registry import Registry
from builder.analysis_cache import AnalysisCache
from builder.executor import Executor, RunState, SliceSpent, claimed_node
from builder.validation import Analysis
from core.settings import Settings
from core.statuses import TERMINAL
from models.base import new_id, utcnow
from models.runs import NodeRunValues, Run, RunKind
from worker.engine import Recorder, bounded_outcome, run_graph

# The longest a direct run's nodes may run on an API process's event loop, which nothing else can
# use meanwhile; a 10-block run of templates takes about 0.5 ms.
LOOP_SLICE_S = 0.01
_ON_LOOP: ContextVar[bool] = ContextVar("mantle_direct_on_loop", default=False)


class NotOnLoop(Exception):  # noqa: N818 (a signal to the caller, not an error of the run)
    """The run's nodes did not end within `LOOP_SLICE_S` on the event loop: nothing was written,
    start it again on a thread."""


@contextmanager
def on_event_loop() -> Iterator[None]:
    """Direct runs started within the block run on the event loop: within `LOOP_SLICE_S`, or not."""
    token = _ON_LOOP.set(True)
    try:
        yield
    finally:
        _ON_LOOP.reset(token)


# The values each direct run's node runs were inserted with, by run, while its object lives.
_RECORDED: WeakKeyDictionary[Run, list[dict[str, Any]]] = WeakKeyDictionary()


def recorded_nodes(run: Run) -> list[NodeRunValues] | None:
    """The node runs a direct run was inserted with, as plain records read like `NodeRun` rows;
    None for any other run. Built only when asked for: a webhook's answer needs the run's
    outputs, not its trace. Not ORM objects: making ten of them cost more CPU than the answer."""
    values = _RECORDED.get(run)
    return None if values is None else [NodeRunValues(reused=False, **row) for row in values]


def all_pure(analysis: Analysis) -> bool:
    """Whether every node of the analysed graph is a pure inline block."""
    return all(block.pure and block.execution is Execution.inline for block in analysis.blocks.values())


class DirectRunner:
    """Runs pure published runs in the calling process; one per API process."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.settings = settings
        # The graph as the engine executes it (with the version's pinned policies): versions and
        # their pins never change, so each is analysed once, like the workers do.
        self.analyses = AnalysisCache(registry)

    def knows(self, version_id: uuid.UUID) -> bool:
        """Whether this process has the version's analysis (runs of it read nothing before theirs)."""
        return self.analyses.peek(version_id) is not None

    def execute(self, session: Session, run: Run, *, within_s: float,
                check: Callable[[Session], None] | None = None, commit: bool = False) -> Recorder | None:
        """Run the new published run `run` (not yet added to `session`) to its end and record it
        there; None when it is not a direct run or did not end in time (nothing was recorded).
        `check` and `commit`: as `Recorder.save_new_run` records it."""
        if run.draft or run.version_id is None or run.kind != RunKind.run.value:
            return None
        analysis = self.analyses.get(run.version_id, lambda: run_graph(session, run))
        if not all_pure(analysis):
            return None
        if run.id is None:
            run.id = new_id()
        run.created_at = utcnow()
        state = RunState(run_id=run.id, org_id=run.org_id, app_id=run.app_id, inputs=run.inputs,
                         created_at=run.created_at)
        executor = Executor(analysis, pure_timeout_s=self.settings.pure_timeout_s,
                            start_timeout_s=self.settings.pure_timeout_s)
        recorder = Recorder(session, run, {}, executor)
        within_s = min(within_s, self.settings.pure_step_s)
        on_loop = _ON_LOOP.get() and within_s > LOOP_SLICE_S
        if not self._run(executor, state, recorder, LOOP_SLICE_S if on_loop else within_s):
            if on_loop:
                raise NotOnLoop(f"run {run.id} did not end within {LOOP_SLICE_S} s on the event loop")
            return None
        # Kept to answer with: the caller's trace needs no second read of what was just written.
        _RECORDED[run] = recorder.new_node_rows()
        recorder.save_new_run(state, check=check, commit=commit)
        return recorder

    def _run(self, executor: Executor, state: RunState, recorder: Recorder, within_s: float) -> bool:
        """Plan and run nodes until the run ends (True) or cannot end now (False)."""
        ends = time.monotonic() + within_s
        limit = self.settings.max_value_bytes
        while True:
            events = executor.plan(state)
            for event in events:
                recorder.record(event, state)
            claimed = claimed_node(state, events)
            if claimed is None:
                return state.status in TERMINAL
            left = ends - time.monotonic()
            if left <= 0:
                return False
            try:
                outcome = bounded_outcome(executor.run_node(state, claimed, within_s=left), limit)
            except SliceSpent:
                return False
            executor.apply(state, outcome)
            recorder.record(outcome, state)
