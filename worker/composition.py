"""Child runs in the engine: the `flow.map` and `app.call` nodes a run waits on.

The executor suspends such a node like any deferred node; `Composer.settle`, called by the
engine inside the parent's step (its row locked), reads the node's children, asks
builder/composition.py what to do, inserts the child runs to start (enqueued after the commit)
and, once the children are over, writes the node's result, which the executor then resumes.
The record is the child runs themselves, so a crash anywhere loses nothing and repeats nothing:
a finished item is a finished run, never started again.

Locks are taken parent first: a parent's step never waits for a child's row (children it
stops are cancelled after its commit, skipping any that are busy), while a child's last step
sets its parent's `wake_at` (the reaper's due list) before it commits, so the parent hears of
it even if the message that follows is lost.

`Directory` is the organization's published apps as the validator sees them (the API and the
submitter pass it in `Limits.apps`).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, sessionmaker

from blocks.app_call import WAIT_KIND as CALL_KIND
from blocks.app_call import AppCallBlock, CalleeInterface
from blocks.flow_map import WAIT_KIND as MAP_KIND
from blocks.flow_map import MapBlock
from blocks.registry import Registry
from builder.composition import (
    Child,
    body_graph,
    calls_in,
    chain_refusal,
    interface_of,
    item_inputs,
    map_outputs,
    pin_interfaces,
    plan_map,
)
from builder.executor import Executor, RunState
from builder.graph import Graph
from builder.validation import Analysis, Limits, analyze
from core.statuses import LIVE, TERMINAL, NodeStatus, RunStatus
from models import apps as app_store
from models.apps import App, AppVersion, VersionRef
from models.base import new_id
from models.db import session_scope
from models.runs import Run, RunKind, cancel_run

log = structlog.get_logger("mantle.composition")

KINDS = frozenset({MAP_KIND, CALL_KIND})
# Run statuses in a fixed order, so a statement is the same in every process.
_LIVE, _TERMINAL = tuple(sorted(LIVE)), tuple(sorted(TERMINAL))
Analyses = Callable[[object, Callable[[], dict[str, Any]]], Analysis]


class Directory:
    """One organization's published apps, for `app.call` validation (see `blocks.app_call.AppDirectory`)."""

    def __init__(self, session: Session, org_id: uuid.UUID, analyses: Analyses) -> None:
        self.session = session
        self.org_id = org_id
        self.analyses = analyses
        self._names: dict[uuid.UUID, str | None] = {}

    def _find(self, app_id: uuid.UUID, version: int | None) -> VersionRef | None:
        return app_store.published_version(self.session, org_id=self.org_id, app_id=app_id, number=version)

    def _name(self, app_id: uuid.UUID) -> str | None:
        if app_id not in self._names:
            self._names[app_id] = self.session.scalar(
                select(App.name).where(App.id == app_id, App.org_id == self.org_id))
        return self._names[app_id]

    def name(self, app_id: uuid.UUID) -> str:
        """The app's name (its id when this organization has no such app)."""
        return self._name(app_id) or str(app_id)

    def interface(self, app_id: uuid.UUID, version: int | None) -> CalleeInterface | str:
        """The ports of that version of the app, or why it cannot be called."""
        name = self._name(app_id)
        if name is None:  # another organization's app reads exactly like one that does not exist
            return f"no app {app_id} in this organization"
        ref = self._find(app_id, version)
        if ref is None:
            return (f"app {name!r} has no version {version}" if version is not None
                    else f"app {name!r} is not published yet")
        analysis = self.analyses(ref.id, lambda: self.session.get_one(AppVersion, ref.id).graph)
        return interface_of(analysis, name, ref.number)

    def calls(self, app_id: uuid.UUID, version: int | None) -> list[tuple[uuid.UUID, int | None]]:
        """The apps that version of the app calls."""
        ref = self._find(app_id, version)
        if ref is None:
            return []
        graph = app_store.version_graph(self.session, version_id=ref.id) or {}
        return [(callee, number) for _, callee, number in calls_in(graph)]


def pinned_graph(graph: dict[str, Any], registry: Registry, limits: Limits) -> dict[str, Any]:
    """`graph` as a version or a draft run keeps it: each app.call with its callee's interface as
    validated under `limits` (which carry the organization's apps)."""
    if not calls_in(graph):
        return graph
    return pin_interfaces(graph, analyze(Graph.model_validate(graph), registry, limits).blocks)


@dataclass
class StepWork:
    """What a step's children need once it has committed."""

    enqueue: list[uuid.UUID] = field(default_factory=list)
    cancel: list[uuid.UUID] = field(default_factory=list)
    created: bool = False
    kinds: list[str] = field(default_factory=list)  # of the children started, for the metrics


def stored_graph(session: Session, run: Run) -> dict[str, Any]:
    """The graph a run's app stored (before the policies a run adds): its draft copy, an item's
    body graph, or its version's."""
    if run.draft or run.kind == RunKind.map_item.value:
        return run.draft_graph or {}
    graph = app_store.version_graph(session, version_id=run.version_id) if run.version_id else None
    return graph or {}


class Composer:
    """Starts and collects the child runs of one worker's runs."""

    def __init__(self, analyses: Analyses, sessions: sessionmaker[Session], size: int = 256) -> None:
        self.analyses = analyses
        self.sessions = sessions
        self.size = size
        self._bodies: OrderedDict[object, dict[str, Any]] = OrderedDict()

    def settle(self, session: Session, run: Run, state: RunState, executor: Executor,
               save: Callable[[str], None], work: StepWork) -> bool:
        """Start what the run's waiting map and call nodes need; write the result of each whose
        children are over (then `save(node_id)`). Returns whether any node got its result."""
        changed = False
        for node_id, node in state.nodes.items():
            kind = (node.waiting_for or {}).get("kind")
            if node.status is not NodeStatus.waiting or node.result is not None or kind not in KINDS:
                continue
            children = self._children(session, run.id, node_id)
            block = executor.block(node_id)
            if isinstance(block, MapBlock):
                result = self._map(session, run, node_id, block, node.inputs or {}, node.attempts, children,
                                   work)
            elif isinstance(block, AppCallBlock):
                result = self._call(session, run, node_id, block, node.inputs or {}, node.attempts, children,
                                    work)
            else:
                continue
            if result is not None:
                node.result = result
                save(node_id)
                changed = True
        return changed

    def _children(self, session: Session, run_id: uuid.UUID, node_id: str) -> list[Child]:
        rows = session.execute(select(Run.id, Run.item_index, Run.parent_attempt, Run.status, Run.error)
                               .where(Run.parent_run_id == run_id, Run.parent_node_id == node_id))
        return [Child(r.id, r.item_index, r.parent_attempt or 0, r.status,
                      str((r.error or {}).get("message") or "") or None, (r.error or {}).get("type"))
                for r in rows]

    def _start(self, session: Session, child: Run, work: StepWork) -> None:
        child.id = new_id()
        session.add(child)
        work.enqueue.append(child.id)
        work.kinds.append(child.kind if child.kind == RunKind.map_item.value else child.trigger)
        work.created = True

    # -- flow.map ----------------------------------------------------------------------------

    def _map(self, session: Session, run: Run, node_id: str, block: MapBlock, inputs: dict[str, Any],
             attempt: int, children: list[Child], work: StepWork) -> dict[str, Any] | None:
        items = inputs.get("items") or []
        plan = plan_map(count=len(items), concurrency=block.config.concurrency,
                        skip=block.config.on_failure == "skip", attempt=attempt, children=children)
        work.cancel.extend(plan.cancel)
        if plan.failed is not None:
            failed = plan.failed
            return {"error": f"item {failed.index} failed: {failed.error or failed.status}",
                    "error_type": "blocked" if failed.status == RunStatus.blocked else "item_failed"}
        if plan.done:
            outputs = self._outputs(session, [run_id for _, run_id in plan.collect])
            collected = [(index, outputs.get(run_id)) for index, run_id in plan.collect]
            return {"outputs": map_outputs(block, collected, plan.errors)}
        graph = self._body(session, run, node_id) if plan.start else {}
        for index in plan.start:
            self._start(session, Run(
                org_id=run.org_id, app_id=run.app_id, version_id=run.version_id,
                version_number=run.version_number, draft=run.draft, draft_graph=graph, trigger="map",
                kind=RunKind.map_item.value, inputs=item_inputs(block, inputs, index), status="queued",
                parent_run_id=run.id, parent_node_id=node_id, parent_attempt=attempt, item_index=index),
                work)
        return None

    def _body(self, session: Session, run: Run, node_id: str) -> dict[str, Any]:
        """The graph each item of the map runs (computed once per version and node)."""
        key = (("draft", run.id) if run.draft else run.version_id, node_id)
        found = self._bodies.get(key)
        if found is None:
            found = self._bodies[key] = body_graph(stored_graph(session, run), node_id)
            while len(self._bodies) > self.size:
                self._bodies.popitem(last=False)
        return found

    def _outputs(self, session: Session, run_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
        found: dict[uuid.UUID, Any] = {}
        for start in range(0, len(run_ids), 500):  # within every database's limit on parameters
            chunk = run_ids[start:start + 500]
            found.update(session.execute(select(Run.id, Run.outputs).where(Run.id.in_(chunk))).tuples().all())
        return found

    # -- app.call ----------------------------------------------------------------------------

    def _call(self, session: Session, run: Run, node_id: str, block: AppCallBlock, inputs: dict[str, Any],
              attempt: int, children: list[Child], work: StepWork) -> dict[str, Any] | None:
        current = [c for c in children if c.attempt == attempt]
        if current:
            child = current[-1]
            if child.status not in TERMINAL:
                return None
            name = self._app_name(session, block.config.app_id)
            if child.status == RunStatus.succeeded:
                outputs = self._outputs(session, [child.run_id]).get(child.run_id)
                return {"outputs": outputs or {}, "run_id": str(child.run_id)}
            return {"error": f"the called app {name!r} {child.status} (run {child.run_id}): "
                             f"{child.error or child.status}",
                    "error_type": "blocked" if child.status == RunStatus.blocked else "app_call_failed"}
        refusal, child_run = self._callee_run(session, run, node_id, block, inputs, attempt)
        if refusal is not None:
            return {"error": refusal, "error_type": "app_call_refused"}
        assert child_run is not None
        self._start(session, child_run, work)
        return None

    def _app_name(self, session: Session, app_id: uuid.UUID) -> str:
        return session.scalar(select(App.name).where(App.id == app_id)) or str(app_id)

    def _callee_run(self, session: Session, run: Run, node_id: str, block: AppCallBlock,
                    inputs: dict[str, Any], attempt: int) -> tuple[str | None, Run | None]:
        """The callee's child run to start, or why it may not start."""
        config = block.config
        callee_id = config.app_id
        number = None if config.version == "latest" else config.version
        name = session.scalar(select(App.name).where(App.id == callee_id, App.org_id == run.org_id))
        if name is None:  # another organization's app is never reached, nor said to exist
            return f"no app {callee_id} in this organization", None
        ref = app_store.published_version(session, org_id=run.org_id, app_id=callee_id, number=number)
        if ref is None:
            return (f"app {name!r} has no version {number}" if number is not None
                    else f"app {name!r} is not published"), None
        refusal = chain_refusal(self._lineage(session, run), (callee_id, name))
        if refusal is not None:
            return refusal, None
        analysis = self.analyses(ref.id, lambda: session.get_one(AppVersion, ref.id).graph)
        trigger = analysis.blocks.get(analysis.trigger or "")
        interface = interface_of(analysis, name, ref.number)
        if trigger is None or isinstance(interface, str):
            return str(interface), None
        try:
            accepted = trigger.accept(inputs)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                 for e in exc.errors(include_url=False, include_input=False))
            return f"app {name!r} (version {ref.number}) refused the inputs: {problems}", None
        return None, Run(org_id=run.org_id, app_id=callee_id, version_id=ref.id, version_number=ref.number,
                         trigger="app_call", inputs=accepted, status="queued", parent_run_id=run.id,
                         parent_node_id=node_id, parent_attempt=attempt)

    def _lineage(self, session: Session, run: Run) -> list[tuple[uuid.UUID, str]]:
        """The apps that called each other down to `run`'s, outermost first (a map's items run their
        parent's app: they add no link)."""
        apps: list[uuid.UUID] = []
        current: Run | None = run
        seen: set[uuid.UUID] = set()
        while current is not None and current.id not in seen:
            seen.add(current.id)
            if current.kind != RunKind.map_item.value:
                apps.append(current.app_id)
            parent = current.parent_run_id
            current = session.get(Run, parent) if parent is not None else None
        names = dict(session.execute(select(App.id, App.name).where(App.id.in_(set(apps)))).tuples().all())
        return [(app_id, names.get(app_id, str(app_id))) for app_id in reversed(apps)]

    # -- after the commit --------------------------------------------------------------------

    def live_children(self, session: Session, run_id: uuid.UUID) -> list[uuid.UUID]:
        """The run's children that have not ended."""
        return list(session.scalars(select(Run.id).where(Run.parent_run_id == run_id,
                                                         Run.status.not_in(_TERMINAL))))

    def cancel(self, run_ids: Sequence[uuid.UUID], why: str) -> None:
        """Cancel child runs no one waits for any more; one busy in a step is left to the reaper."""
        for run_id in run_ids:
            try:
                with session_scope(self.sessions) as session:
                    child = session.scalar(select(Run).where(Run.id == run_id)
                                           .with_for_update(skip_locked=True))
                    if child is not None and child.status not in TERMINAL:
                        cancel_run(session, run=child, actor=why)
            except Exception:  # the reaper's sweep of orphans tries again
                log.warning("cancel_child_failed", run_id=str(run_id))

    def orphans(self, session: Session, limit: int = 500) -> list[uuid.UUID]:
        """Children still going whose parent run has ended."""
        parent = aliased(Run)
        # The live statuses spelled out (not NOT IN the ended ones): the reaper asks this every few
        # seconds, and only an IN list is read through the status index instead of every run.
        return list(session.scalars(
            select(Run.id).join(parent, parent.id == Run.parent_run_id)
            .where(Run.status.in_(_LIVE), parent.status.in_(_TERMINAL)).limit(limit)))
