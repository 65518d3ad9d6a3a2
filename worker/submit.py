"""Starting runs: what every trigger (API call, web form, SMS) does to create one."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from celery import Celery
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blocks.registry import Registry
from builder.analysis_cache import AnalysisCache
from builder.composition import pin_interfaces
from builder.graph import Graph
from builder.node_test import accept_inputs, find_node, node_test_graph, testable_block
from builder.retry import reusable
from builder.validation import Analysis, Limits, analyze
from core.errors import Conflict, GraphInvalid, InvalidInputs, TooLarge
from core.guesses import Guesses
from core.nesting import MAX_INPUT_DEPTH, depth
from core.settings import Settings
from core.statuses import TERMINAL, NodeStatus, RunStatus
from models import apps as app_store
from models.apps import App, AppVersion, VersionRef
from models.base import new_id, utcnow
from models.db import check_failed, on_commit, pipelined
from models.runs import (
    NodeRun,
    Run,
    RunEvent,
    RunKind,
    check_replay,
    find_by_idempotency_key,
    get_run,
    insert_run,
    json_size,
    node_runs,
)
from worker.composition import Directory
from worker.direct import DirectRunner, all_pure
from worker.engine import run_graph
from worker.transport import make_celery, send_advance

log = structlog.get_logger("mantle.submit")


class LatestVersions(Guesses[tuple[uuid.UUID, uuid.UUID], VersionRef]):
    """The latest version of each app (by organization and app) this process started a run of, as
    it last found it. A guess, always checked: see `Submitter._on_known_version`."""


class Submitter:
    """Creates runs for one process (the API), caching the analysis of published versions."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.analyses = AnalysisCache(registry)
        self.direct = DirectRunner(registry, settings)
        # Each app's latest version as this process last found it (`_on_known_version`).
        self.latest = LatestVersions()
        self._celery: Celery | None = None

    @property
    def celery(self) -> Celery:
        """A Celery app on this process's configured broker (made on first use)."""
        if self._celery is None:
            self._celery = make_celery(self.settings)
        return self._celery

    def create(self, session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, inputs: dict[str, Any],
               version: int | None = None, draft: bool = False, trigger: str = "api",
               idempotency_key: str | None = None, published: VersionRef | None = None,
               wait_s: float = 0, commit: bool = False, end_here: bool = False) -> tuple[Run, bool]:
        """A queued run and whether it is new (False: the Idempotency-Key's earlier run).

        `published`: the version to run, when the caller has just looked it up (else `version`).
        `wait_s`: how long the caller waits for the run's end; a run that can end within the step's
        slice in this process is then returned ended (`worker/direct.py`): enqueue only runs that
        have not (`needs_worker`).
        `commit`: the caller writes nothing more in its transaction and commits it next.
        A run of the app's latest version then starts on that version as this process last found
        it, checked in the round trip that records the run and commits it instead of looked up
        first (`_on_known_version`).
        `end_here`: the caller hands the run to a worker only when `needs_worker` says so; a pure
        run may then end here even if nobody waits for it, within `settings.direct_run_s` (no
        queue hop, no worker's step: see `worker/direct.py`).
        """
        # How long a direct run may take here: the caller's wait, else the unwaited allowance.
        if wait_s <= 0 and end_here:
            wait_s = self.settings.direct_run_s
        # PostgreSQL only (SQLite has no round trips to save, and no check to send), in a
        # transaction not begun yet (a failed check rolls it back, losing nothing).
        if (commit and idempotency_key is None and version is None and published is None and not draft
                and not session.in_transaction() and session.get_bind().dialect.name == "postgresql"):
            known = self._on_known_version(session, org_id=org_id, app_id=app_id, inputs=inputs,
                                           trigger=trigger, wait_s=wait_s)
            if known is not None:
                return known, True
        if idempotency_key is not None:
            earlier = find_by_idempotency_key(session, org_id=org_id, key=idempotency_key)
            if earlier is not None:
                return self._replay(session, earlier, app_id=app_id, inputs=inputs, draft=draft,
                                    version=version), False
        run = Run(org_id=org_id, app_id=app_id, draft=draft, trigger=trigger, kind=RunKind.run.value,
                  idempotency_key=idempotency_key, status="queued")
        if draft:
            app = app_store.get_app(session, org_id=org_id, app_id=app_id)
            analysis = self._draft_analysis(session, app)
            # The run keeps the ports each app.call found its callee with, as a version does.
            run.draft_graph = pin_interfaces(app.draft, analysis.blocks)
        else:
            # The graph is read only when this process has not analysed the version yet.
            ref = published or app_store.find_version(session, org_id=org_id, app_id=app_id, number=version)
            if version is None and published is None:
                self.latest.put((org_id, app_id), ref)
            analysis = self.analyses.get(ref.id, lambda: session.get_one(AppVersion, ref.id).graph)
            run.version_id, run.version_number = ref.id, ref.number
        run.inputs = self._accept(analysis, inputs)
        if idempotency_key is None:  # nothing unique to race on: no savepoint, one INSERT
            self._insert(session, run, wait_s, commit=commit)
            return run, True
        try:
            with session.begin_nested():
                self._insert(session, run, wait_s)
        except IntegrityError:
            # A concurrent request with the same Idempotency-Key won the race: answer with its run.
            earlier = find_by_idempotency_key(session, org_id=org_id, key=idempotency_key or "")
            if earlier is None:
                raise
            return self._replay(session, earlier, app_id=app_id, inputs=inputs, draft=draft,
                                version=version), False
        return run, True

    def _insert(self, session: Session, run: Run, wait_s: float, *, commit: bool = False,
                check: Callable[[Session], None] | None = None) -> bool:
        """Insert the new run: ended already when its caller waits and it can run here at once
        (`worker/direct.py`, True), else queued for a worker (unless `check` is given: then
        nothing is written and False says so). `check`, `commit`: see `Recorder.save_new_run`."""
        if wait_s > 0 and not run.draft:
            recorder = self.direct.execute(session, run, within_s=wait_s, check=check, commit=commit)
            if recorder is not None:
                # Counted once its transaction commits, as a worker's step is.
                on_commit(session, recorder.metrics.publish)
                return True
        if check is None:
            session.add(run)
            session.flush()
        return False

    def known_latest(self, org_id: uuid.UUID, app_id: uuid.UUID) -> tuple[VersionRef, Analysis] | None:
        """The app's latest version as this process last found it, and its analysis, when both are
        known here (a guess: `start_on_known_version` checks it as it records the run)."""
        ref = self.latest.get((org_id, app_id))
        analysis = self.analyses.peek(ref.id) if ref is not None else None
        return None if ref is None or analysis is None else (ref, analysis)

    def ends_at_once(self, org_id: uuid.UUID, app_id: uuid.UUID, version_id: uuid.UUID | None = None) -> bool:
        """Whether a run of the app's latest version as this process knows it (and that version is
        `version_id`, if given) would be a direct run recorded in one round trip: the version and
        its analysis are known here, and every node is pure (`_on_known_version`, given a wait or
        `end_here`). A guess, as `known_latest` is: the run is still checked as it is recorded."""
        known = self.known_latest(org_id, app_id)
        return (known is not None and (version_id is None or known[0].id == version_id)
                and self.direct.knows(known[0].id) and all_pure(known[1]))

    def start_on_known_version(self, session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID,
                               inputs: dict[str, Any], trigger: str,
                               also: Callable[[Session, Run], None] | None = None,
                               check: Callable[[Session], None] | None = None,
                               version_id: uuid.UUID | None = None, wait_s: float = 0,
                               end_here: bool = False) -> Run | None:
        """A run of the app's latest version as this process knows it, recorded with `also`'s rows
        (written in the same round trip, after the run's) and committed; None (nothing written, the
        session rolled back) when the version is not known here (or is not `version_id`) or no
        longer the latest, `check` (a `models.db.send_check`, sent with the version's) does not
        hold, or the inputs are refused: the caller then starts it the usual way. PostgreSQL only,
        in a transaction not begun (see `create`). An error of `also`'s rows (a unique index's)
        rolls everything back and is raised. `wait_s`, `end_here`: as `create` takes them (a pure
        run may be recorded ended; `also` is for queued runs only)."""
        if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
            return None
        if wait_s <= 0 and end_here:
            wait_s = self.settings.direct_run_s
        return self._on_known_version(session, org_id=org_id, app_id=app_id, inputs=inputs, trigger=trigger,
                                      wait_s=wait_s, also=also, check=check, version_id=version_id)

    def _on_known_version(self, session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID,
                          inputs: dict[str, Any], trigger: str, wait_s: float,
                          also: Callable[[Session, Run], None] | None = None,
                          check: Callable[[Session], None] | None = None,
                          version_id: uuid.UUID | None = None) -> Run | None:
        """A run of the version this process last found to be the app's latest, recorded and
        committed with a check that it still is, all in one round trip: no query is answered
        before it. A direct run (its caller waits, every node pure) is recorded ended, else the
        run is recorded queued (the caller hands it to a worker). None when it cannot be started
        this way: nothing was written, and the caller starts the run as usual.

        Used only where the outcome cannot differ from looking the version up first: the version
        and its analysis are known to this process, its inputs are accepted (a refusal is left to
        the usual path, which looks the version up), and a failed check rolls everything back (a
        version published, or the app deleted, meanwhile; or the caller's `check`, sent with it)
        so the usual path starts it again. `version_id`: only if that is the version known here.
        """
        key = (org_id, app_id)
        known = self.known_latest(org_id, app_id)
        if known is None or (version_id is not None and known[0].id != version_id):
            return None
        ref, analysis = known
        try:
            accepted = self._accept(analysis, inputs)
        except (InvalidInputs, TooLarge):
            return None
        run = Run(org_id=org_id, app_id=app_id, draft=False, trigger=trigger, kind=RunKind.run.value,
                  status="queued", version_id=ref.id, version_number=ref.number, inputs=accepted)
        number = ref.number

        def checks(session: Session) -> None:
            app_store.check_latest_version(session, org_id=org_id, app_id=app_id, number=number)
            if check is not None:
                check(session)

        try:
            direct = wait_s > 0 and self.direct.knows(ref.id) and all_pure(analysis)
            if not (direct and self._insert(session, run, wait_s, commit=True, check=checks)):
                # Queued (or its nodes did not end in time here: nothing of them was written).
                self._insert_queued(session, run, check=checks, also=also)
        except Exception as exc:
            if not check_failed(exc):
                raise
            session.rollback()
            self.latest.forget(key)
            return None
        return run

    @staticmethod
    def _insert_queued(session: Session, run: Run, *, check: Callable[[Session], None],
                       also: Callable[[Session, Run], None] | None = None) -> None:
        """Insert the new run queued, after `check`, then `also`'s rows, and commit, in one round
        trip (PostgreSQL, in a transaction not begun). Through `models.db.insert_rows`, not the
        unit of work: its flush of this one object cost more CPU than the rest of the run's start
        in the API."""
        run.id = new_id()
        run.created_at = run.heartbeat_at = utcnow()
        with pipelined(session, commit=True):
            check(session)
            insert_run(session, run)
            if also is not None:
                also(session, run)

    def _replay(self, session: Session, earlier: Run, *, app_id: uuid.UUID, inputs: dict[str, Any],
                draft: bool, version: int | None) -> Run:
        """The Idempotency-Key's earlier run, if this request asks for the same thing (else Conflict).

        Its inputs were stored as its trigger accepted them (defaults added, values coerced), so a
        retry's inputs are compared after the same treatment.
        """
        if earlier.draft:
            analysis = analyze(Graph.model_validate(earlier.draft_graph or {}), self.registry)
        else:
            version_id = earlier.version_id
            analysis = self.analyses.get(version_id, lambda: session.get_one(AppVersion, version_id).graph)
        trigger = analysis.blocks.get(analysis.trigger or "")
        if trigger is not None:
            with contextlib.suppress(ValidationError):  # then they cannot match the stored inputs
                inputs = trigger.accept(inputs)
        return check_replay(earlier, app_id=app_id, inputs=inputs, draft=draft, version=version)

    def _draft_analysis(self, session: Session, app: App) -> Analysis:
        limits = Limits(apps=Directory(session, app.org_id, self.analyses.get), app=(app.id, app.name))
        analysis = analyze(Graph.model_validate(app.draft), self.registry, limits)
        if not analysis.valid:
            raise GraphInvalid([p.as_dict() for p in analysis.problems])
        return analysis

    def _check_size(self, inputs: dict[str, Any]) -> None:
        # Depth first: json_size would recurse into a value nested past what JSON can print.
        if depth(inputs, stop_past=MAX_INPUT_DEPTH) > MAX_INPUT_DEPTH:
            message = f"inputs are nested deeper than the limit of {MAX_INPUT_DEPTH} levels"
            raise InvalidInputs([{"loc": ["body", "inputs"], "msg": message, "type": "too_deep"}])
        size = json_size(inputs)
        if size > self.settings.max_input_bytes:
            raise TooLarge(f"inputs are {size} bytes; the limit is {self.settings.max_input_bytes}",
                           loc=["body", "inputs"])

    def _accept(self, analysis: Analysis, inputs: dict[str, Any]) -> dict[str, Any]:
        self._check_size(inputs)
        assert analysis.trigger is not None  # a valid graph has exactly one
        try:
            return analysis.blocks[analysis.trigger].accept(inputs)
        except ValidationError as exc:
            raise InvalidInputs([
                {"loc": ["body", "inputs", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]) from None

    def create_node_test(self, session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, node_id: str,
                         inputs: dict[str, Any], side_effects: bool = False) -> Run:
        """A queued run of one node of the app's current draft, fed `inputs` (see builder/node_test.py)."""
        app = app_store.get_app(session, org_id=org_id, app_id=app_id)
        node = find_node(Graph.model_validate(app.draft), node_id)
        block = testable_block(node, self.registry, side_effects=side_effects)
        self._check_size(inputs)
        accepted = accept_inputs(block, inputs)
        graph, _ = node_test_graph(node, accepted)
        analysis = analyze(Graph.model_validate(graph), self.registry)
        if not analysis.valid:  # the node alone passed; its wiring to the inputs cannot fail
            raise GraphInvalid([p.as_dict() for p in analysis.problems])
        run = Run(org_id=org_id, app_id=app_id, draft=True, draft_graph=graph, kind=RunKind.node_test.value,
                  test_node_id=node_id, inputs=analysis.blocks[analysis.trigger or ""].accept(accepted),
                  status="queued")
        session.add(run)
        session.flush()
        return run

    def create_again(self, session: Session, *, org_id: uuid.UUID, run_id: uuid.UUID, retry: bool,
                     idempotency_key: str | None = None) -> tuple[Run, bool]:
        """A queued run on the same graph with the same inputs as an ended run, and whether it is new.

        `retry`: the earlier run failed, and the nodes it completed are reused (their outputs copied,
        marked `reused`, never executed again: see builder/retry.py); else everything runs again.
        """
        if idempotency_key is not None:
            earlier = find_by_idempotency_key(session, org_id=org_id, key=idempotency_key)
            if earlier is not None:
                return self._again_replay(earlier, run_id=run_id, retry=retry), False
        source = get_run(session, org_id=org_id, run_id=run_id)
        status = RunStatus(source.status)
        if retry and status is not RunStatus.failed:
            hint = "; re-run it instead (POST /v1/runs/{run_id}/rerun)" if status in TERMINAL else ""
            raise Conflict(f"only a failed run can be retried from its failed nodes; this run is "
                           f"{status.value}{hint}", loc=["path", "run_id"])
        if status not in TERMINAL:
            raise Conflict(f"the run has not ended ({status.value}); cancel it or wait for it first",
                           loc=["path", "run_id"])
        run = Run(org_id=org_id, app_id=source.app_id, version_id=source.version_id,
                  version_number=source.version_number, draft=source.draft, draft_graph=source.draft_graph,
                  trigger=source.trigger, kind=source.kind, test_node_id=source.test_node_id,
                  inputs=source.inputs, status="queued", idempotency_key=idempotency_key,
                  retry_of=source.id if retry else None, rerun_of=None if retry else source.id)
        try:
            with session.begin_nested():
                session.add(run)
        except IntegrityError:
            # A concurrent request with the same Idempotency-Key won the race: answer with its run.
            earlier = find_by_idempotency_key(session, org_id=org_id, key=idempotency_key or "")
            if earlier is None:
                raise
            return self._again_replay(earlier, run_id=run_id, retry=retry), False
        if retry:
            self._reuse(session, source, run)
        return run, True

    def _again_replay(self, earlier: Run, *, run_id: uuid.UUID, retry: bool) -> Run:
        """The Idempotency-Key's earlier run, if it was this same retry or re-run (else Conflict)."""
        if (earlier.retry_of if retry else earlier.rerun_of) != run_id:
            raise Conflict("this Idempotency-Key was used for a different request",
                           loc=["header", "Idempotency-Key"])
        return earlier

    def _reuse(self, session: Session, source: Run, run: Run) -> None:
        """Copy the nodes of `source` that a retry reuses into `run`, each with a `node_finished` event."""
        analysis = analyze(Graph.model_validate(run_graph(session, run)), self.registry)
        earlier = {row.node_id: row for row in node_runs(session, run_id=source.id)}
        succeeded = {node_id: row.block_type for node_id, row in earlier.items()
                     if row.status == NodeStatus.succeeded.value}
        now = utcnow()
        for node_id in reusable(analysis, succeeded):
            row = earlier[node_id]
            session.add(NodeRun(run_id=run.id, node_id=node_id, block_type=row.block_type,
                                status=NodeStatus.succeeded.value, inputs=row.inputs, outputs=row.outputs,
                                attempts=0, reused=True))
            session.add(RunEvent(run_id=run.id, type="node_finished", node_id=node_id, at=now,
                                 data={"status": NodeStatus.succeeded.value, "reused": True,
                                       "from_run": str(source.id)}))
        session.flush()

    @staticmethod
    def needs_worker(run: Run) -> bool:
        """Whether a new run must be handed to a worker (it did not end where it was created)."""
        return RunStatus(run.status) not in TERMINAL

    def enqueue(self, run_id: uuid.UUID) -> bool:
        """Hand the run to a worker; if the broker is down the run stays queued for the reaper."""
        try:
            send_advance(self.celery, run_id)
            return True
        except Exception as exc:  # the run is safe in the database either way
            log.warning("enqueue_failed", run_id=str(run_id), error=str(exc).splitlines()[0])
            return False
