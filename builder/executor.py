"""The pure executor: a validated graph, its run state and a clock in; typed events out.

It knows nothing of SQLAlchemy, Celery or HTTP. A driver asks `plan(state)` what happens
now (skips, deferred starts, resumes, the end of the run, and at most one claim of a
ready inline node), records those events, runs the claimed node with `run_node`, records
that outcome, and asks again. `drive` is the in-memory driver; the run worker drives the
same methods with a database transaction around each step.

Every state change goes through `apply`, so a driver that persists events and one that
replays them reach the same state.

Every block runs with a work budget (`blocks/limits.py`): steps, and a time limit (its policy's
`timeout_s`; a pure block at most `pure_timeout_s`, a deferred block's `start` at most
`start_timeout_s`, since the driver may hold a lock while it plans). A block that charges the
budget (`Block.bounded`) stops itself when its time is up; any other is given up on from a
watchdog thread. What a block builds once per process (`Block.prepare`: a model's first load in
a worker started without warm-up) is built before its node's time starts. A driver that can offer
only part of a pure node's time (`within_s`: it runs pure nodes inside a transaction) gets
`SliceSpent` when that part runs out, and should run the node again, with its full limit, where
it holds no lock.
"""

from __future__ import annotations

import contextvars
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from blocks.base import AnyBlock, BlockContext, Port, Suspend, port_values, value_fits
from blocks.limits import Budget, OutOfTime, budget
from builder.validation import Analysis
from core.errors import ContractBroken, MantleError, PolicyViolation
from core.statuses import TERMINAL, UNFINISHED, NodeStatus, RunStatus

PURE_TIMEOUT_S = 10.0
START_TIMEOUT_S = 10.0


def utcnow() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass
class NodeState:
    """One node's record within a run."""

    status: NodeStatus = NodeStatus.pending
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retry_at: datetime | None = None
    waiting_for: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    continued: bool = False

    @property
    def delivered(self) -> bool:
        """Whether downstream nodes may read this node's outputs."""
        return self.status is NodeStatus.succeeded or (self.status is NodeStatus.failed and self.continued)


@dataclass
class RunState:
    """Everything the executor needs to know about one run."""

    run_id: uuid.UUID
    org_id: uuid.UUID
    app_id: uuid.UUID
    inputs: dict[str, Any]
    created_at: datetime
    status: RunStatus = RunStatus.queued
    nodes: dict[str, NodeState] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def node(self, node_id: str) -> NodeState:
        """The node's state (a node never touched yet is pending)."""
        state = self.nodes.get(node_id)
        if state is None:
            state = self.nodes[node_id] = NodeState()
        return state


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a run; `node_id` is None for run-level events."""

    at: datetime
    node_id: str | None


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """A worker began the run."""


@dataclass(frozen=True, slots=True)
class NodeStarted(Event):
    """A node was claimed for an attempt with these inputs."""

    attempt: int
    inputs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NodeSucceeded(Event):
    """A node emitted these output ports."""

    outputs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NodeFailed(Event):
    """An attempt failed; with `retry_at` it will be tried again, with `continued` the run goes on."""

    error: str
    error_type: str = "error"
    retry_at: datetime | None = None
    continued: bool = False


@dataclass(frozen=True, slots=True)
class NodeSkipped(Event):
    """A node can never receive a required input (its branch was not taken)."""

    reason: str


@dataclass(frozen=True, slots=True)
class NodeWaiting(Event):
    """A deferred node handed work elsewhere and waits for its result."""

    suspend: Suspend


@dataclass(frozen=True, slots=True)
class RunWaiting(Event):
    """Nothing can run until a deferred result arrives."""


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    """The run ended."""

    status: RunStatus
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class SliceSpent(Exception):  # noqa: N818 (a signal to the driver, not an error of the run)
    """A pure node used up the part of its time its driver could give it in place."""


def _error_text(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, MantleError):
        return exc.message, exc.type
    return f"{type(exc).__name__}: {exc}", "error"


class Executor:
    """Runs one validated graph; holds no state of its own between calls."""

    def __init__(self, analysis: Analysis, *, clock: Callable[[], datetime] = utcnow,
                 services: Mapping[str, Any] | None = None, outputs_of: str | None = None,
                 pure_timeout_s: float = PURE_TIMEOUT_S, start_timeout_s: float = START_TIMEOUT_S,
                 handled_kinds: frozenset[str] | None = None) -> None:
        if not analysis.valid:
            raise ValueError("the executor needs a valid graph")
        self.analysis = analysis
        self.clock = clock
        self.services = services or {}
        self.pure_timeout_s = pure_timeout_s
        self.start_timeout_s = start_timeout_s
        # A node test's run: its outputs are what this node emitted (it has no `output` node).
        self.outputs_of = outputs_of
        # The suspend kinds the driver has handlers for (None: it does not say); a wait of another
        # kind fails its node at once instead of waiting for its timeout.
        self.handled_kinds = handled_kinds

    def block(self, node_id: str) -> AnyBlock:
        """The configured block of a node."""
        return self.analysis.blocks[node_id]

    def context(self, state: RunState, node_id: str) -> BlockContext:
        """The context a node's block runs with."""
        return BlockContext(run_id=state.run_id, node_id=node_id, org_id=state.org_id,
                            app_id=state.app_id, attempt=max(state.node(node_id).attempts, 1),
                            services=self.services, connected=frozenset(
                                e.source_port for e in self.analysis.outgoing.get(node_id, ())))

    # -- state transitions ---------------------------------------------------------------

    def apply(self, state: RunState, event: Event) -> None:
        """Change `state` as `event` says; the only place state changes."""
        node = state.node(event.node_id) if event.node_id is not None else None
        match event:
            case RunStarted():
                state.status = RunStatus.running
            case RunWaiting():
                state.status = RunStatus.waiting
            case RunFinished(status=status, outputs=outputs, error=error):
                state.status, state.outputs, state.error = status, outputs, error
            case NodeStarted(attempt=attempt, inputs=inputs):
                assert node is not None
                node.status, node.attempts, node.inputs = NodeStatus.running, attempt, inputs
                node.started_at, node.finished_at, node.retry_at = event.at, None, None
                node.error, node.result, node.waiting_for = None, None, None
                if state.status is RunStatus.waiting:
                    state.status = RunStatus.running
            case NodeWaiting(suspend=suspend):
                assert node is not None
                node.status = NodeStatus.waiting
                node.waiting_for = {"kind": suspend.kind, "payload": dict(suspend.payload)}
                if suspend.resume_after_s is not None:  # a timer: its due time is part of the record
                    due = event.at + timedelta(seconds=suspend.resume_after_s)
                    node.waiting_for.update(resume_at=due.isoformat(), result=dict(suspend.result or {}))
            case NodeSucceeded(outputs=outputs):
                assert node is not None
                node.status, node.outputs, node.finished_at = NodeStatus.succeeded, outputs, event.at
                node.error = node.error_type = None
            case NodeFailed(error=error, error_type=error_type, retry_at=retry_at, continued=continued):
                assert node is not None
                node.error, node.error_type, node.finished_at = error, error_type, event.at
                if retry_at is not None:
                    node.status, node.retry_at = NodeStatus.pending, retry_at
                    if state.status is RunStatus.waiting:  # a retry, not a deferred node, holds it now
                        state.status = RunStatus.running
                else:
                    node.status, node.continued = NodeStatus.failed, continued
                    if continued:
                        node.outputs = dict(self.analysis.policies[event.node_id].default)  # type: ignore[index]
            case NodeSkipped():
                assert node is not None
                node.status, node.finished_at = NodeStatus.skipped, event.at

    # -- deciding what happens next ------------------------------------------------------

    def plan(self, state: RunState) -> list[Event]:
        """Every event decidable now, applied to `state`; ends with at most one `NodeStarted`
        of an inline node, which the caller must run with `run_node`."""
        events: list[Event] = []

        def emit(event: Event) -> None:
            self.apply(state, event)
            events.append(event)

        if state.status in TERMINAL:
            return events
        now = self.clock()
        if state.status is RunStatus.queued:
            emit(RunStarted(now, None))
        deadline = self.deadline(state)
        if deadline is not None and now >= deadline:
            self._finish_unfinished(state, emit, now, "the run's deadline passed")
            emit(RunFinished(now, None, RunStatus.failed, error={
                "type": "deadline", "node_id": None,
                "message": f"the run did not finish within {self.analysis.settings.deadline_s} s"}))
            return events

        failure = self._failure(state)
        for node_id in self.analysis.order:
            if failure is not None:
                break
            node = state.node(node_id)
            if node.status is NodeStatus.waiting:
                self._check_waiting(state, node_id, node, now, emit)
                failure = self._failure(state, node_id)
            if node.status is not NodeStatus.pending:
                continue
            verdict, inputs = self._readiness(state, node_id)
            if verdict == "skip":
                emit(NodeSkipped(now, node_id, reason=inputs["reason"]))
                continue
            if verdict == "wait" or (node.retry_at is not None and node.retry_at > now):
                continue
            block = self.block(node_id)
            emit(NodeStarted(now, node_id, attempt=node.attempts + 1, inputs=inputs))
            if block.execution == "deferred":
                self._start_deferred(state, node_id, block, inputs, emit)
                failure = self._failure(state, node_id)
                continue
            return events  # the claimed inline node runs before anything downstream is decided

        statuses = {state.node(i).status for i in self.analysis.order}
        if failure is not None:
            self._finish_unfinished(state, emit, now, "the run failed")
            emit(failure)
        elif statuses <= {NodeStatus.succeeded, NodeStatus.failed, NodeStatus.skipped}:
            emit(RunFinished(now, None, RunStatus.succeeded, outputs=self.collect_outputs(state)))
        elif NodeStatus.running not in statuses and NodeStatus.waiting in statuses \
                and state.status is not RunStatus.waiting and not self._retry_pending(state):
            emit(RunWaiting(now, None))
        return events

    def _retry_pending(self, state: RunState) -> bool:
        return any(n.status is NodeStatus.pending and n.retry_at is not None for n in state.nodes.values())

    def _readiness(self, state: RunState, node_id: str) -> tuple[str, dict[str, Any]]:
        if node_id == self.analysis.trigger:
            return "ready", dict(state.inputs)
        edges = self.analysis.incoming.get(node_id, [])
        inputs: dict[str, Any] = {}
        for edge in edges:
            source = state.node(edge.source)
            if source.delivered:
                if source.outputs is not None and edge.source_port in source.outputs:
                    inputs[edge.target_port] = source.outputs[edge.source_port]
            elif source.status is not NodeStatus.skipped and source.status is not NodeStatus.failed:
                return "wait", {}
        for port in self.analysis.inputs[node_id].values():
            if port.required and port.name not in inputs:
                return "skip", {"reason": f"input {port.name!r} never arrives (its branch was not taken)"}
        if edges and not inputs:
            return "skip", {"reason": "no input arrives (its branch was not taken)"}
        return "ready", inputs

    def _start_deferred(self, state: RunState, node_id: str, block: AnyBlock, inputs: dict[str, Any],
                        emit: Callable[[Event], None]) -> None:
        limit = _least(self.analysis.policies[node_id].timeout_s, self.start_timeout_s)
        ctx = self.context(state, node_id)
        unprepared = self._prepare(state, node_id, block)
        if unprepared is not None:
            emit(unprepared)
            return
        with budget(limit) as spent:
            try:
                typed = block.typed_inputs(inputs)
                started = _call_within(lambda: block.start(typed, ctx), limit, block.bounded, spent)
                if not isinstance(started, Suspend):  # finished at once: nothing to wait for
                    outputs = self._emitted(node_id, block, started)
                else:
                    self._check_suspend(block, started)
            except Exception as exc:  # a block's failure is the node's failure, never the worker's
                timed_out = OutOfTime(f"starting the node took longer than its {limit:g} s timeout")
                emit(self._failed(state, node_id, timed_out if spent.timed_out else exc))
                return
        if isinstance(started, Suspend):
            emit(NodeWaiting(self.clock(), node_id, suspend=started))
        else:
            emit(NodeSucceeded(self.clock(), node_id, outputs=outputs))

    def _check_waiting(self, state: RunState, node_id: str, node: NodeState, now: datetime,
                       emit: Callable[[Event], None]) -> None:
        result = node.result
        due = _resume_at(node)
        if result is None and due is not None and now >= due:  # the timer went off
            result = dict((node.waiting_for or {}).get("result") or {})
        if result is not None:
            if "error" in result:
                failure = MantleError(str(result["error"]))
                failure.type = str(result.get("error_type") or failure.type)  # what the sender named it
                emit(self._failed(state, node_id, failure))
                return
            block = self.block(node_id)
            try:
                typed = block.typed_inputs(node.inputs or {})
                resumed = block.resume(typed, result, self.context(state, node_id))
                outputs = self._emitted(node_id, block, resumed)
            except Exception as exc:  # a block's failure is the node's failure, never the worker's
                emit(self._failed(state, node_id, exc))
                return
            emit(NodeSucceeded(now, node_id, outputs=outputs))
            return
        timeout = self.analysis.policies[node_id].timeout_s
        if timeout is not None and node.started_at is not None \
                and now >= node.started_at + timedelta(seconds=timeout):
            emit(self._failed(state, node_id, TimeoutError(f"no result within {timeout} s")))

    def _failure(self, state: RunState, only: str | None = None) -> RunFinished | None:
        """The end of the run if a node (or just `only`) failed for good."""
        for node_id in [only] if only is not None else self.analysis.order:
            node = state.nodes.get(node_id)
            if node is None or node.status is not NodeStatus.failed or node.continued:
                continue
            blocked = node.error_type == "blocked"
            return RunFinished(
                self.clock(), None, RunStatus.blocked if blocked else RunStatus.failed,
                error={"type": "blocked" if blocked else "node_failed", "node_id": node_id,
                       "message": f"node {node_id!r} ({self.block(node_id).type}) failed: {node.error}"},
            )
        return None

    def _finish_unfinished(self, state: RunState, emit: Callable[[Event], None], now: datetime,
                           reason: str) -> None:
        for node_id in self.analysis.order:
            if state.node(node_id).status in UNFINISHED:
                emit(NodeSkipped(now, node_id, reason=reason))

    def deadline(self, state: RunState) -> datetime | None:
        """When the run must have finished, if the graph sets a deadline."""
        seconds = self.analysis.settings.deadline_s
        return state.created_at + timedelta(seconds=seconds) if seconds else None

    def next_wakeup(self, state: RunState) -> datetime | None:
        """The earliest time something changes without outside input (a retry, a timeout, a timer)."""
        times = [n.retry_at for n in state.nodes.values()
                 if n.status is NodeStatus.pending and n.retry_at is not None]
        for node_id, node in state.nodes.items():
            timeout = self.analysis.policies.get(node_id)
            if node.status is NodeStatus.waiting and timeout and timeout.timeout_s and node.started_at:
                times.append(node.started_at + timedelta(seconds=timeout.timeout_s))
            due = _resume_at(node) if node.status is NodeStatus.waiting and node.result is None else None
            if due is not None:
                times.append(due)
        deadline = self.deadline(state)
        if deadline is not None and state.status not in TERMINAL:
            times.append(deadline)
        return min(times) if times else None

    # -- running one node ----------------------------------------------------------------

    def time_limit(self, node_id: str) -> float | None:
        """How long the node may run: its policy's timeout; a pure block at most `pure_timeout_s`."""
        timeout = self.analysis.policies[node_id].timeout_s
        return _least(timeout, self.pure_timeout_s) if self.block(node_id).pure else timeout

    def run_node(self, state: RunState, node_id: str, *, within_s: float | None = None) -> Event:
        """Run a claimed inline node and return its outcome (not yet applied).

        With `within_s`, the caller gives a pure node at most that long here; if it was not
        enough (and less than the node's own limit), `SliceSpent` is raised instead of a timeout."""
        node = state.node(node_id)
        block = self.block(node_id)
        ctx = self.context(state, node_id)
        limit = self.time_limit(node_id)
        seconds = _least(limit, within_s)
        unprepared = self._prepare(state, node_id, block)
        if unprepared is not None:
            return unprepared
        with budget(seconds) as spent:
            try:
                typed = block.typed_inputs(node.inputs or {})
                outputs = self._emitted(node_id, block, _call_within(lambda: block.run(typed, ctx), seconds,
                                                                     block.bounded, spent))
            except Exception as exc:  # a block's failure is the node's failure, never the worker's
                if not spent.timed_out:
                    return self._failed(state, node_id, exc)
        if spent.timed_out:  # whatever the block did with it, its time is up
            if within_s is not None and (limit is None or within_s < limit):
                raise SliceSpent(node_id)
            return self._failed(state, node_id,
                                OutOfTime(f"the node took longer than its {limit:g} s timeout"))
        return NodeSucceeded(self.clock(), node_id, outputs=outputs)

    def _prepare(self, state: RunState, node_id: str, block: AnyBlock) -> NodeFailed | None:
        """`block.prepare()` before the node's time starts (a model's first load in this process is
        not charged to it); the node's failure if it raised."""
        try:
            block.prepare()
        except Exception as exc:  # a block's failure is the node's failure, never the worker's
            return self._failed(state, node_id, exc)
        return None

    def _emitted(self, node_id: str, block: AnyBlock, returned: object) -> dict[str, Any]:
        """The ports a block's returned outputs model emits (its fields that were set, and extra
        values), held to its output ports: anything but its outputs model breaks its contract."""
        if not isinstance(returned, block.Outputs):
            raise ContractBroken(f"block {block.type} returned {type(returned).__name__}, not its outputs "
                                 f"model {block.Outputs.__name__}")
        outputs = port_values(returned)
        self._check_ports(node_id, outputs)
        return outputs

    def _check_ports(self, node_id: str, outputs: Mapping[str, Any]) -> None:
        """Hold what a block emitted to the output ports it declares: no unknown port, every
        required one there, each value of its port's type. A break fails the node (ContractBroken)."""
        declared = self.analysis.outputs[node_id]
        unknown = set(outputs) - set(declared)
        if unknown:
            raise ContractBroken(f"block {self.block(node_id).type} emitted ports it does not declare: "
                                 f"{', '.join(sorted(unknown))} "
                                 f"(it declares: {', '.join(declared) or 'none'})")
        broken = [f"{name!r}: {problem}" for name, port in declared.items()
                  if (problem := _port_problem(port, outputs)) is not None]
        if broken:
            raise ContractBroken(f"block {self.block(node_id).type} broke its output contract: "
                                 + "; ".join(broken))

    def _check_suspend(self, block: AnyBlock, suspend: Suspend) -> None:
        """A wait must be of a kind the block declares (when it declares any) and, unless it is a
        timer, of one the driver can hand over."""
        declared = {model.kind for model in block.suspends}
        if declared and suspend.kind not in declared:
            raise ContractBroken(f"block {block.type} suspended with kind {suspend.kind!r}; it declares "
                                 f"{', '.join(sorted(declared))}")
        if suspend.resume_after_s is None and self.handled_kinds is not None \
                and suspend.kind not in self.handled_kinds:
            raise ContractBroken(f"block {block.type} suspended with kind {suspend.kind!r}, which no wait "
                                 "handler of this worker takes")

    def _failed(self, state: RunState, node_id: str, exc: BaseException) -> NodeFailed:
        message, error_type = _error_text(exc)
        if isinstance(exc, PolicyViolation):
            return NodeFailed(self.clock(), node_id, error=message, error_type="blocked")
        policy = self.analysis.policies[node_id]
        attempts = state.node(node_id).attempts
        if attempts <= policy.retries:
            delay = policy.backoff_s * (2 ** (attempts - 1))
            return NodeFailed(self.clock(), node_id, error=message, error_type=error_type,
                              retry_at=self.clock() + timedelta(seconds=delay))
        return NodeFailed(self.clock(), node_id, error=message, error_type=error_type,
                          continued=policy.on_error == "continue")

    def collect_outputs(self, state: RunState) -> dict[str, Any]:
        """The run's outputs: what every `output` node that ran collected, in graph order (for a
        node test, what its node emitted)."""
        if self.outputs_of is not None:
            tested = state.node(self.outputs_of)
            return dict(tested.outputs or {}) if tested.delivered else {}
        outputs: dict[str, Any] = {}
        for node_id in self.analysis.order:
            node = state.node(node_id)
            if node.status is NodeStatus.succeeded:
                outputs.update(self.block(node_id).results(node.inputs or {}))
        return outputs

    def drive(self, state: RunState) -> Iterator[Event]:
        """Run everything that can run now, in memory, yielding each event as it happens."""
        while True:
            events = self.plan(state)
            yield from events
            claimed = claimed_node(state, events)
            if claimed is None:
                return
            outcome = self.run_node(state, claimed)
            self.apply(state, outcome)
            yield outcome


def claimed_node(state: RunState, events: Sequence[Event]) -> str | None:
    """The inline node that `plan` claimed among `events` (its last), if it is still running: the
    driver runs it with `run_node`. A deferred node's start is never a claim."""
    for event in reversed(events):
        if isinstance(event, NodeStarted) and event.node_id is not None \
                and state.node(event.node_id).status is NodeStatus.running:
            return event.node_id
    return None


def _port_problem(port: Port, outputs: Mapping[str, Any]) -> str | None:
    """What is wrong with the value emitted on `port`, if anything."""
    if port.name not in outputs:
        return f"required {port.type} port not emitted" if port.required else None
    value = outputs[port.name]
    if value is None:
        return None if port.nullable or port.type == "any" else f"expected {port.type}, got null"
    if value_fits(value, port.type):
        return None
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"expected {port.type}, got {type(value).__name__} {shown}"


def _resume_at(node: NodeState) -> datetime | None:
    """When a waiting timer node resumes by itself, if it is one."""
    due = (node.waiting_for or {}).get("resume_at")
    return datetime.fromisoformat(due) if isinstance(due, str) else None


def _least(*limits: float | None) -> float | None:
    """The smallest of the limits that are set."""
    given = [x for x in limits if x is not None]
    return min(given) if given else None


def _call_within(fn: Callable[[], Any], timeout: float | None, bounded: bool, spent: Budget) -> Any:
    """Call `fn` within `timeout` seconds; `spent.timed_out` tells whether it ran out.

    A bounded block charges the budget and stops itself, so it runs in this thread (a thread per
    node would cost more than most pure blocks do). Any other block runs in a watchdog thread
    given up on at the deadline: Python cannot stop a thread, so a block that overruns keeps its
    thread until it returns (or charges the spent budget, which raises); its result is discarded.
    Blocks doing I/O should also bound it themselves.
    """
    if timeout is None or bounded:
        return fn()
    box: dict[str, Any] = {}
    context = contextvars.copy_context()  # the budget goes with it

    def target() -> None:
        try:
            box["value"] = context.run(fn)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name="mantle-block")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        spent.timed_out = True
        raise OutOfTime(f"still running after {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]
