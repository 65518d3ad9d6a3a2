"""The run engine: drives the pure executor with the database as the record.

`advance(run_id)` repeats one step until nothing more can run now. A step is one
transaction: lock the run row, load its node runs, record the outcome of the node the
previous step ran, then let the executor plan. Pure blocks run inside the step (re-running
them after a crash changes nothing anyone can see); any other inline block is claimed,
committed, and run between steps with no lock held, so a crash can never record it twice
and a slow block never blocks the run's readers.

A step holds the run's row lock, and on SQLite the database's write lock, so pure blocks get
only `pure_step_s` of it in all: a pure node still working then (a heavy template) is claimed
like an impure one and finished outside the transaction, within its own `pure_timeout_s`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import String, and_, cast, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from blocks.limits import LimitExceeded, measure
from blocks.registry import Registry
from blocks.suspends import TimerWait
from builder.analysis_cache import AnalysisCache
from builder.executor import (
    Event,
    Executor,
    NodeFailed,
    NodeSkipped,
    NodeStarted,
    NodeState,
    NodeSucceeded,
    NodeWaiting,
    RunFinished,
    RunStarted,
    RunState,
    RunWaiting,
    SliceSpent,
    claimed_node,
)
from core.settings import Settings
from core.statuses import TERMINAL, NodeStatus, RunStatus
from core.storable import dumped_is_storable, storable, storable_text
from governance.graph import govern
from models import policies as policy_store
from models.apps import AppVersion
from models.base import Base, new_id, transient, utcnow
from models.db import driver, fetch_dicts, insert_rows, pipelined, select_sql, session_scope, update_rows
from models.runs import (
    NodeRun,
    Run,
    RunEvent,
    RunKind,
    compact_json,
    insert_run,
    store_result,
    waiting_node,
    wake_parent,
)
from worker.composition import KINDS, Composer, StepWork
from worker.hooks import WaitContext, handled_kinds, missing_handlers, wait_handler
from worker.observability import CHILD_RUNS, StepMetrics, bind_run

log = structlog.get_logger("mantle.engine")

Enqueue = Callable[[uuid.UUID, datetime | None], None]

# The suspend kinds the engine serves itself: a timer's due time is stored with its node, and child
# runs are started and collected in the parent's step (worker/composition.py).
SERVED_KINDS = KINDS | {TimerWait.kind}


class MissingWaitHandler(RuntimeError):
    """A block may suspend with a kind that nothing in this worker takes."""


def require_wait_handlers(registry: Registry) -> None:
    """Refuse a registry with a block whose suspend kind has no handler (at a worker's start)."""
    missing = missing_handlers(registry, SERVED_KINDS)
    if missing:
        raise MissingWaitHandler(
            "no wait handler for these block types' suspend kinds (register one with "
            f"worker.hooks.on_wait): {', '.join(missing)}")


def bounded_outcome(outcome: Event, limit: int) -> Event:
    """Refuse outputs over the size limit: the node fails, the process stays healthy. Outputs
    holding text no database stores (a NUL from an HTTP body, say) are made storable, so the
    node's record is written instead of failing (see `core/storable.py`)."""
    if isinstance(outcome, NodeSucceeded):
        try:  # first without serialising: a value can share its parts and print astronomically
            measure(outcome.outputs, 4 * limit, what="the outputs")
        except LimitExceeded as exc:
            return NodeFailed(outcome.at, outcome.node_id, error_type="too_large",
                              error=f"{exc.message}; the limit is {limit} bytes")
        dumped = compact_json(outcome.outputs)
        if len(dumped) > limit:
            return NodeFailed(outcome.at, outcome.node_id, error_type="too_large",
                              error=f"outputs are {len(dumped)} bytes; the limit is {limit}")
        if not dumped_is_storable(dumped):
            return replace(outcome, outputs=storable(outcome.outputs))
    elif isinstance(outcome, NodeFailed) and outcome.error != (error := storable_text(outcome.error)):
        return replace(outcome, error=error)  # a message may quote what the block met
    return outcome


# Plain tables, not the mapped classes: an ORM bulk INSERT costs more than the unit of work.
_RUNS = Base.metadata.tables[Run.__tablename__]
_NODE_RUNS = Base.metadata.tables[NodeRun.__tablename__]
_RUN_EVENTS = Base.metadata.tables[RunEvent.__tablename__]


# The columns of a node run that its state sets (`Recorder._save_node`), and of the run (`set_run`).
_NODE_FIELDS = ("status", "inputs", "outputs", "error", "error_type", "attempts", "started_at",
                "finished_at", "retry_at", "waiting_for", "result", "continued")
_RUN_FIELDS = ("status", "outputs", "error", "started_at", "finished_at", "heartbeat_at", "wake_at")


_LOAD_RUN = select_sql(_RUNS, '"id" = %s', "FOR UPDATE")
_LOAD_NODES = select_sql(_NODE_RUNS, '"run_id" = %s')


def load_step(session: Session, run_id: uuid.UUID) -> tuple[Run, dict[str, dict[str, Any]]] | None:
    """Lock the run and read it with its node runs (by node id, as column values), for a step.

    The run comes back as a transient `Run`, its node runs as plain values, written back by the
    `Recorder` as plain values too. Loaded as ORM objects, with their identity map, history and
    the unit of work's flush, they cost the workers about half of their CPU; through SQLAlchemy
    Core, its per-statement machinery still cost a step's statements more than psycopg did. On
    PostgreSQL both reads therefore go through psycopg (`models.db.fetch_dicts`, in one round
    trip); on SQLite, where a statement costs little, through Core.
    """
    if session.get_bind().dialect.name == "postgresql":
        runs, nodes = fetch_dicts(session, [(_LOAD_RUN, (run_id,)), (_LOAD_NODES, (run_id,))])
        if not runs:
            return None
        return transient(Run, runs[0]), {row["node_id"]: row for row in nodes}
    found = session.execute(select(_RUNS).where(_RUNS.c.id == run_id).with_for_update()).one_or_none()
    if found is None:
        return None
    rows = {r.node_id: dict(r._mapping)
            for r in session.execute(select(_NODE_RUNS).where(_NODE_RUNS.c.run_id == run_id))}
    return transient(Run, dict(found._mapping)), rows


def state_of(run: Run, rows: dict[str, dict[str, Any]]) -> RunState:
    """The executor's view of a stored run."""
    state = RunState(run_id=run.id, org_id=run.org_id, app_id=run.app_id, inputs=run.inputs,
                     created_at=run.created_at, status=RunStatus(run.status),
                     outputs=run.outputs, error=run.error)
    for node_id, row in rows.items():
        state.nodes[node_id] = NodeState(
            status=NodeStatus(row["status"]), inputs=row["inputs"], outputs=row["outputs"],
            error=row["error"], error_type=row["error_type"], attempts=row["attempts"],
            started_at=row["started_at"], finished_at=row["finished_at"], retry_at=row["retry_at"],
            waiting_for=row["waiting_for"], result=row["result"], continued=row["continued"],
        )
    return state


class Recorder:
    """Writes executor events to node runs, the run row and the event log, in one session.

    Rows the step creates (node runs met for the first time, events) are kept as plain values
    and written by `save_run` as two multi-row INSERTs (`models.db.insert_rows`), sent with the
    rest of the step in one round trip on PostgreSQL: as ORM objects the unit of work cost more
    CPU than anything else a worker does per run (about a third of a simple run's time). Node
    runs loaded at the start of the step (`load_step`: their column values) and the run row are
    updated in the same round trip (`models.db.update_rows`).
    """

    def __init__(self, session: Session, run: Run, rows: dict[str, dict[str, Any]],
                 executor: Executor) -> None:
        self.session = session
        self.run = run
        self.rows = rows
        self.executor = executor
        self.waits: list[NodeWaiting] = []
        self.metrics = StepMetrics(str(run.app_id))
        self._new_nodes: dict[str, dict[str, Any]] = {}
        self._changed: dict[str, dict[str, Any]] = {}  # loaded node runs to update, by node id
        self._events: list[dict[str, Any]] = []

    def record(self, event: Event, state: RunState) -> None:
        """Persist what `event` changed (the executor already applied it to `state`)."""
        if event.node_id is not None:
            block_type = self._save_node(event.node_id, state.node(event.node_id))
            self.metrics.note(event, state.node(event.node_id), block_type)
        else:
            self.metrics.note(event, None, None)
        kind, data = _describe(event)
        if kind is not None:
            self._events.append({"run_id": self.run.id, "type": kind, "node_id": event.node_id,
                                 "at": event.at, "data": data})
        if isinstance(event, NodeWaiting):
            self.waits.append(event)

    def _save_node(self, node_id: str, node: NodeState) -> str:
        """Copy the node's state to its row (a new one on first sight); returns its block type."""
        values = {"status": node.status.value, "inputs": node.inputs, "outputs": node.outputs,
                  "error": node.error, "error_type": node.error_type, "attempts": node.attempts,
                  "started_at": node.started_at, "finished_at": node.finished_at,
                  "retry_at": node.retry_at, "waiting_for": node.waiting_for, "result": node.result,
                  "continued": node.continued}
        row = self.rows.get(node_id)
        if row is not None:
            row.update(values)
            self._changed[node_id] = row
            return str(row["block_type"])
        new = self._new_nodes.get(node_id)
        if new is None:
            new = {"id": new_id(), "run_id": self.run.id, "node_id": node_id,
                   "block_type": self.executor.block(node_id).type}
            self._new_nodes[node_id] = new
        new.update(values)
        return str(new["block_type"])

    def new_node_rows(self) -> list[dict[str, Any]]:
        """The values of the node runs this step will insert (met for the first time)."""
        return [dict(values) for values in self._new_nodes.values()]

    def save_node(self, node_id: str, state: RunState) -> None:
        """Persist a node's state changed outside an event (a child run's result written to it)."""
        self._save_node(node_id, state.node(node_id))

    def _insert_new_rows(self) -> None:
        """Write the step's new node runs, then its events in the order they happened."""
        if self._new_nodes:
            insert_rows(self.session, _NODE_RUNS, list(self._new_nodes.values()))
            self._new_nodes.clear()
        if self._events:
            insert_rows(self.session, _RUN_EVENTS, self._events)
            self._events = []

    def save_run(self, state: RunState, wake_at: datetime | None, *, synchronous: bool = True,
                 commit: bool = False) -> None:
        """Write the run's own status, outputs and timing, and every row the step recorded, in one
        round trip on PostgreSQL (`models.db.pipelined`).

        `synchronous`: False lets PostgreSQL answer the COMMIT before its WAL reaches the disk
        (only for a step whose loss in a crash is harmless: see `RunEngine.advance`); `commit`:
        end the transaction in the same round trip (for a step that writes nothing afterwards)."""
        self.set_run(state, wake_at)
        run = self.run
        postgres = self.session.get_bind().dialect.name == "postgresql"
        with pipelined(self.session, commit=commit):
            if postgres and not synchronous:
                driver(self.session).execute("SET LOCAL synchronous_commit TO OFF")
            update_rows(self.session, _RUNS, [{"id": run.id, **{k: getattr(run, k) for k in _RUN_FIELDS}}])
            if self._changed:
                update_rows(self.session, _NODE_RUNS, [
                    {"id": row["id"], **{name: row[name] for name in _NODE_FIELDS}}
                    for row in self._changed.values()])
                self._changed.clear()
            self._insert_new_rows()
            if postgres:
                # Delivered at commit, exactly when the change becomes visible (see api/watch.py).
                driver(self.session).execute("SELECT pg_notify('mantle_runs', %s)",
                                             (f"{run.id} {run.status}",))

    def save_new_run(self, state: RunState, *, check: Callable[[Session], None] | None = None,
                     commit: bool = False) -> None:
        """Insert a run executed from start to end in this session (`worker/direct.py`): the run row
        with its final state, then its node runs and events; no one can be watching it yet.

        `check`: queues a statement that must hold for the run to be recorded, sent first (a
        `models.db.send_check`); `commit`: end the transaction too (`models.db.pipelined`)."""
        self.set_run(state, None)
        # As the other new rows, through Core: the unit of work's flush of this one object cost as
        # much CPU as running the nodes. The object stays outside the session, complete.
        with pipelined(self.session, commit=commit):  # every statement in one round trip
            if check is not None:
                check(self.session)
            insert_run(self.session, self.run)
            self._insert_new_rows()

    def set_run(self, state: RunState, wake_at: datetime | None) -> None:
        """Copy the run's status, outputs and timing to its row."""
        run = self.run
        if run.started_at is None and state.status is not RunStatus.queued:
            run.started_at = utcnow()
        run.status, run.outputs, run.error = state.status.value, state.outputs, state.error
        if state.status in TERMINAL and run.finished_at is None:
            run.finished_at = utcnow()
            wake_parent(self.session, run=run)  # before the commit: the parent hears of it either way
        run.heartbeat_at = utcnow()
        run.wake_at = wake_at if state.status not in TERMINAL else None


def _kinds(executor: Executor) -> set[str]:
    """The wait kinds of the graph's composition nodes (`flow.map`, `app.call`)."""
    return {b.type for b in executor.analysis.blocks.values()} & KINDS


def _describe(event: Event) -> tuple[str | None, dict[str, Any]]:
    """The event-stream entry for an executor event."""
    match event:
        case RunStarted():
            return "run_started", {}
        case NodeStarted(attempt=attempt):
            return "node_started", {"attempt": attempt}
        case NodeSucceeded():
            return "node_finished", {"status": "succeeded"}
        case NodeFailed(error=error, retry_at=retry_at, continued=continued):
            if retry_at is not None:
                return "node_retrying", {"error": error, "retry_at": retry_at.isoformat()}
            return "node_finished", {"status": "failed", "error": error, "continued": continued}
        case NodeSkipped(reason=reason):
            return "node_finished", {"status": "skipped", "reason": reason}
        case NodeWaiting(suspend=suspend):
            return "node_waiting", {"kind": suspend.kind}
        case RunWaiting():
            return "run_waiting", {}
        case RunFinished(status=status, outputs=outputs, error=error):
            return "run_finished", {"status": status.value, "outputs": outputs, "error": error}
    return None, {}


def run_graph(session: Session, run: Run) -> dict[str, Any]:
    """The graph a run executes: its draft's or version's (a map item's: its body graph), with the
    policies it runs under."""
    if run.draft:
        # A draft run applies the policies attached to the app now, at their latest versions.
        return govern(run.draft_graph or {}, policy_store.current_rules(session, app_id=run.app_id))
    version = session.get(AppVersion, run.version_id)
    assert version is not None, "a run's version is never deleted before the run"
    pins = policy_store.pinned(session, version_id=version.id)
    graph = run.draft_graph or {} if run.kind == RunKind.map_item.value else version.graph
    return govern(graph, [(p.name, p.policy_version, p.rules) for p in pins])


def analysis_key(run: Run) -> object:
    """What a run's analysis is cached by: its version (a map's items: with the map's node)."""
    if run.kind == RunKind.map_item.value:
        return ("item", run.parent_run_id if run.draft else run.version_id, run.parent_node_id)
    return ("draft", run.id) if run.draft else run.version_id


def record_result(sessions: sessionmaker[Session], max_bytes: int, enqueue: Enqueue, run_id: uuid.UUID,
                  node_id: str, result: dict[str, Any],
                  also: Callable[[Session, Run], None] | None = None) -> bool:
    """Store a deferred node's result and enqueue the run; False if it was not waiting for one.
    `also` writes what belongs with the result (a model call's usage) in the same transaction.
    Needs no engine: an inference worker records its results with this alone."""
    with session_scope(sessions) as session:
        found = waiting_node(session, run_id=run_id, node_id=node_id)
        if isinstance(found, str):
            return False
        run, row = found
        store_result(run=run, node=row, result=result, max_bytes=max_bytes)
        if also is not None:
            also(session, run)
    enqueue(run_id, None)
    return True


class RunEngine:
    """Advances runs; one per worker process."""

    def __init__(self, sessions: sessionmaker[Session], registry: Registry, settings: Settings,
                 enqueue: Enqueue, services: dict[str, Any] | None = None) -> None:
        self.sessions = sessions
        self.settings = settings
        self.enqueue = enqueue
        self.services = services or {}
        require_wait_handlers(registry)
        self.analyses = AnalysisCache(registry)
        self.composer = Composer(self.analyses.get, sessions)

    def executor_for(self, session: Session, run: Run) -> Executor:
        """The executor of the graph the run was started with."""
        analysis = self.analyses.get(analysis_key(run), lambda: run_graph(session, run))
        return Executor(analysis, services=self.services, outputs_of=run.test_node_id,
                        pure_timeout_s=self.settings.pure_timeout_s,
                        start_timeout_s=self.settings.pure_timeout_s,
                        handled_kinds=handled_kinds(SERVED_KINDS))

    def advance(self, run_id: uuid.UUID) -> RunStatus | None:
        """Run everything of the run that can run now; returns its status, None if unknown."""
        outcome: Event | None = None
        claimed_attempt = 0
        while True:
            with session_scope(self.sessions) as session:
                loaded = load_step(session, run_id)
                if loaded is None:
                    return None
                run, rows = loaded
                bind_run(org_id=run.org_id, app_id=run.app_id)
                if RunStatus(run.status) in TERMINAL:
                    return RunStatus(run.status)
                executor = self.executor_for(session, run)
                state = state_of(run, rows)
                recorder = Recorder(session, run, rows, executor)
                if outcome is not None and outcome.node_id is not None:
                    node = state.node(outcome.node_id)
                    # Record it only if the claim still stands (no reaper reset, no cancel).
                    if node.status is NodeStatus.running and node.attempts == claimed_attempt:
                        executor.apply(state, outcome)
                        recorder.record(outcome, state)
                durable = outcome is not None or any(
                    r["status"] == NodeStatus.waiting.value for r in rows.values())
                outcome = None
                work = StepWork()
                claim = self._plan(executor, state, recorder, work)
                wake_at = executor.next_wakeup(state)
                status = state.status
                parent_id = run.parent_run_id
                if status in TERMINAL and any(k in KINDS for k in _kinds(executor)):
                    work.cancel.extend(self.composer.live_children(session, run_id))
                durable = durable or work.created or parent_id is not None and status in TERMINAL
                # Only pure blocks ran in this step: if PostgreSQL crashed before flushing it, the
                # reaper would run them again with the same result, so the COMMIT need not wait
                # for the disk. A claim, an outside result or a node now waiting is always flushed.
                # With no waiting node to hand off in the transaction, the COMMIT goes with the
                # step's writes.
                recorder.save_run(state, wake_at, synchronous=bool(durable or claim or recorder.waits),
                                  commit=not recorder.waits)
                waits = [w for w in recorder.waits
                         if w.suspend.kind not in KINDS and not self._dispatch(run, w, session)]
            recorder.metrics.publish()  # committed: count it once
            for wait in waits:
                self._dispatch(run, wait, None)
            self._after(status, parent_id, work)
            if claim is None:
                if wake_at is not None and status not in TERMINAL:
                    self.enqueue(run_id, wake_at)
                if status in TERMINAL:
                    log.info("run_finished", run_id=str(run_id), status=status.value)
                return status
            claimed_attempt = state.node(claim).attempts
            with self._heartbeat(run_id):
                outcome = self._bounded(executor.run_node(state, claim))

    def _plan(self, executor: Executor, state: RunState, recorder: Recorder, work: StepWork) -> str | None:
        """Plan and record; run pure nodes in place; start and collect child runs; return a claimed
        node to run outside the transaction, if any: an impure one, or a pure one the step had no
        time left for."""
        ends = time.monotonic() + self.settings.pure_step_s
        while True:
            events = executor.plan(state)
            for event in events:
                recorder.record(event, state)
            claimed = claimed_node(state, events)
            settled = self.composer.settle(recorder.session, recorder.run, state, executor,
                                           lambda node_id: recorder.save_node(node_id, state), work)
            if claimed is None:
                if settled:  # a map or call node has its result: the executor resumes it
                    continue
                return None
            left = ends - time.monotonic()
            if not executor.block(claimed).pure or left <= 0:
                return claimed
            try:
                outcome = self._bounded(executor.run_node(state, claimed, within_s=left))
            except SliceSpent:  # slow for a pure block: finish it where no lock is held
                return claimed
            executor.apply(state, outcome)
            recorder.record(outcome, state)

    def _after(self, status: RunStatus, parent_id: uuid.UUID | None, work: StepWork) -> None:
        """After a step's commit: enqueue the child runs it started, cancel those no one waits for,
        tell a parent its child ended."""
        for kind in work.kinds:
            CHILD_RUNS.labels(kind).inc()
        for child in work.enqueue:
            self.enqueue(child, None)
        if work.cancel:
            self.composer.cancel(work.cancel, "its parent run")
        if parent_id is not None and status in TERMINAL:
            self.enqueue(parent_id, None)

    def _bounded(self, outcome: Event) -> Event:
        return bounded_outcome(outcome, self.settings.max_value_bytes)

    def _dispatch(self, run: Run, wait: NodeWaiting, session: Session | None) -> bool:
        """Hand a suspended node's work to its handler; inside the transaction only the handlers
        that ask for it. Returns whether it was handled (or cannot be)."""
        found = wait_handler(wait.suspend.kind)
        if found is None and wait.suspend.resume_after_s is not None:
            return True  # a timer: the run's `wake_at` brings it back, nothing to hand off
        if found is None:
            log.error("no_wait_handler", run_id=str(run.id), node_id=wait.node_id, kind=wait.suspend.kind)
            return True
        handler, in_transaction = found
        if in_transaction != (session is not None):
            return False
        ctx = WaitContext(run_id=run.id, org_id=run.org_id, app_id=run.app_id, node_id=wait.node_id or "",
                          suspend=wait.suspend, session=session, settings=self.settings)
        if session is not None:
            handler(ctx)  # a failure rolls the whole step back: the node never waits unhandled
            return True
        try:
            handler(ctx)
        except Exception:  # the node stays waiting; its timeout or a retry of the sender acts
            log.exception("wait_handler_failed", run_id=str(run.id), node_id=wait.node_id,
                          kind=wait.suspend.kind)
        return True

    @contextmanager
    def _heartbeat(self, run_id: uuid.UUID) -> Iterator[None]:
        """Tell the reaper this run is alive while a slow block runs outside any transaction."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.settings.heartbeat_s):
                try:
                    with session_scope(self.sessions) as session:
                        session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow()))
                except Exception:  # a missed beat only risks a harmless re-enqueue
                    log.warning("heartbeat_failed", run_id=str(run_id))

        thread = threading.Thread(target=beat, daemon=True, name="mantle-heartbeat")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def record_result(self, run_id: uuid.UUID, node_id: str, result: dict[str, Any],
                      also: Callable[[Session, Run], None] | None = None) -> bool:
        """Store a deferred node's result and enqueue the run (see `record_result`)."""
        return record_result(self.sessions, self.settings.max_value_bytes, self.enqueue, run_id, node_id,
                             result, also)

    def reap(self) -> int:
        """Re-enqueue runs whose worker went quiet and runs due to wake; returns how many."""
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.stale_after_s)
        revived: list[uuid.UUID] = []
        with session_scope(self.sessions) as session:
            # A waiting run whose node already has its result (a review decided while the broker
            # was down) is as stuck as a quiet one. An unset result is stored as JSON null.
            has_result = select(NodeRun.id).where(
                NodeRun.run_id == Run.id, NodeRun.status == "waiting",
                func.coalesce(cast(NodeRun.result, String), "null") != "null").exists()
            quiet = session.scalars(
                select(Run).where(or_(Run.status.in_(("queued", "running")),
                                      and_(Run.status == "waiting", has_result)), Run.heartbeat_at < stale)
                .with_for_update(skip_locked=True).limit(500)
            ).all()
            for run in quiet:
                # A node claimed by a worker that died never finished: claim it again, and do not
                # charge the lost attempt to the node's retry budget.
                for row in session.scalars(select(NodeRun).where(NodeRun.run_id == run.id,
                                                                 NodeRun.status == "running")):
                    row.status, row.attempts, row.started_at = "pending", max(row.attempts - 1, 0), None
                    session.add(RunEvent(run_id=run.id, type="node_recovered", node_id=row.node_id,
                                         data={"reason": "its worker stopped"}))
                run.heartbeat_at = now
                revived.append(run.id)
            due = session.scalars(
                select(Run.id).where(Run.status.in_(("running", "waiting")), Run.wake_at <= now)
                .limit(500)
            ).all()
            revived.extend(r for r in due if r not in revived)
            orphans = self.composer.orphans(session)
        if orphans:  # child runs whose parent ended while they were busy
            self.composer.cancel(orphans, "its parent run, which ended")
        for run_id in revived:
            self.enqueue(run_id, None)
        if revived:
            log.info("reaped_runs", count=len(revived))
        return len(revived)
