"""Runs, their node runs and their event log: the durable record of every execution."""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any, NoReturn

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    false,
    func,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.errors import Conflict, NotFound
from core.statuses import LIVE, TERMINAL, UNFINISHED, NodeStatus, RunStatus
from models.base import Base, new_id, transient, utcnow
from models.db import driver, fetch_dicts, insert_rows, select_sql

# SQLite only auto-increments an INTEGER PRIMARY KEY.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class RunKind(enum.StrEnum):
    """What a run is for: the app itself, or one node of its draft tried alone in the builder."""

    run = "run"
    node_test = "node_test"
    # One item of a `flow.map`: the map's body run as a child of the run that maps (its graph is
    # that body, fed by a trigger of the item; see builder/composition.py).
    map_item = "map_item"


class Run(Base):
    """One execution of an app version (or of a draft, whose graph is copied here)."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("org_id", "idempotency_key"),
        Index("ix_runs_app_created", "app_id", "created_at"),
        Index("ix_runs_status_heartbeat", "status", "heartbeat_at"),
        # A parent's node starts one child per item and attempt: its lock makes this unique already,
        # the constraint keeps it so, and indexes the parent's look-up of its children.
        UniqueConstraint("parent_run_id", "parent_node_id", "parent_attempt", "item_index"),
        # Deleting a run (retention) sets these to NULL where they name it: without an index that
        # is a scan of every run per deleted run. Partial: most runs retry nothing, and cost nothing.
        Index("ix_runs_retry_of", "retry_of", postgresql_where=text("retry_of IS NOT NULL"),
              sqlite_where=text("retry_of IS NOT NULL")),
        Index("ix_runs_rerun_of", "rerun_of", postgresql_where=text("rerun_of IS NOT NULL"),
              sqlite_where=text("rerun_of IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    version_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("app_versions.id", ondelete="CASCADE"))
    version_number: Mapped[int | None]
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    draft_graph: Mapped[dict[str, Any] | None]
    trigger: Mapped[str] = mapped_column(String(20), default="api")
    kind: Mapped[str] = mapped_column(String(20), default=RunKind.run.value, server_default=RunKind.run.value)
    # A node test's node (its graph is that node fed by a trigger of the given inputs).
    test_node_id: Mapped[str | None] = mapped_column(String(64))
    # The run this one retries from its failed nodes, or runs again from the start.
    retry_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    rerun_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # A child run (an `app.call`'s callee, a `flow.map`'s item): the run and node that wait for it,
    # the node's attempt that started it, and the item's index in the map's list.
    parent_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    parent_node_id: Mapped[str | None] = mapped_column(String(64))
    parent_attempt: Mapped[int | None]
    item_index: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.queued)
    inputs: Mapped[dict[str, Any]]
    outputs: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    wake_at: Mapped[datetime | None]

    nodes: Mapped[list[NodeRun]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                passive_deletes=True)


class NodeRun(Base):
    """One node's record within a run: its inputs, outputs, status, attempts and timing."""

    __tablename__ = "node_runs"
    __table_args__ = (UniqueConstraint("run_id", "node_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(64))
    block_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=NodeStatus.pending)
    inputs: Mapped[dict[str, Any] | None]
    outputs: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(50))
    attempts: Mapped[int] = mapped_column(default=0)
    continued: Mapped[bool] = mapped_column(Boolean, default=False)
    # Copied from the run this one retries: it succeeded there and was not executed again.
    reused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    retry_at: Mapped[datetime | None]
    waiting_for: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]

    run: Mapped[Run] = relationship(back_populates="nodes")


@dataclass(slots=True, kw_only=True)
class NodeRunValues:
    """A node run's values as they were just inserted, read as a `NodeRun` row is (for an answer
    built from what was written, without making an ORM object per node)."""

    id: uuid.UUID
    run_id: uuid.UUID
    node_id: str
    block_type: str
    status: str
    inputs: dict[str, Any] | None
    outputs: dict[str, Any] | None
    error: str | None
    error_type: str | None
    attempts: int
    continued: bool
    reused: bool
    started_at: datetime | None
    finished_at: datetime | None
    retry_at: datetime | None
    waiting_for: dict[str, Any] | None
    result: dict[str, Any] | None


class RunEvent(Base):
    """An append-only log of what happened to a run, read by the event stream."""

    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_run_id_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(30))
    node_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


# A run is looked up by its id alone, and its organization compared here, not in the WHERE clause.
# With `org_id = $2` there too, PostgreSQL may scan the organization's index instead of the
# primary key: it did in `bench/load.py` (a table not analyzed yet; the index of one organization's
# runs is small, deduplicated), filtering out every other run of the organization, so each look-up
# cost more as runs were added (0.38 ms of the server's time per call after a minute, against
# 0.01 ms by the key). By the key alone the plan cannot depend on the table's statistics.
_RUN_BY_ID = select(Run).where(Run.id == bindparam("run_id"))  # built once: clients poll runs


def get_run(session: Session, *, org_id: uuid.UUID, run_id: uuid.UUID, lock: bool = False) -> Run:
    """The organization's run; Gone if its retention policy pruned it, else NotFound. `lock`: the
    row is locked (FOR UPDATE) once it is known to be the organization's, never another's."""
    run = session.scalar(_RUN_BY_ID, {"run_id": run_id})
    if run is None or run.org_id != org_id:
        _missing(session, org_id=org_id, run_id=run_id)
    if lock:
        session.refresh(run, with_for_update=True)
    return run


_RUN_ORG = 'SELECT "org_id" FROM "runs" WHERE "id" = %s'


def check_run(session: Session, *, org_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """As `get_run`, reading only the run's organization: Gone or NotFound unless it is `org_id`.
    On PostgreSQL through psycopg: a stream's check, where SQLAlchemy's statement cost more CPU
    than the query."""
    if session.get_bind().dialect.name == "postgresql":
        rows = driver(session).execute(_RUN_ORG, (run_id,)).fetchall()
        found = rows[0][0] if rows else None
    else:
        found = session.scalar(select(Run.org_id).where(Run.id == run_id))
    if found != org_id:
        _missing(session, org_id=org_id, run_id=run_id)


def _missing(session: Session, *, org_id: uuid.UUID, run_id: uuid.UUID) -> NoReturn:
    # Imported here: models.retention builds on this module. A pruned run is a 410, not a 404.
    from models.retention import gone_if_pruned

    gone_if_pruned(session, org_id=org_id, run_id=run_id)
    raise NotFound("run not found", loc=["run_id"])


def get_run_and_nodes(session: Session, *, org_id: uuid.UUID, run_id: uuid.UUID
                      ) -> tuple[Run, list[NodeRun] | list[NodeRunValues]]:
    """The organization's run (as `get_run`) and its node runs. On PostgreSQL both in one round
    trip through psycopg, as plain values (the run a transient `Run`): for the runs clients poll,
    where the ORM's loading and SQLAlchemy's statement machinery cost more CPU than the queries."""
    if session.get_bind().dialect.name == "postgresql":
        # By the id alone, as `get_run`; another organization's run is dropped unread.
        runs, nodes = fetch_dicts(session, [(_READ_RUN, (run_id,)), (_READ_NODES, (run_id,))])
        if runs and runs[0]["org_id"] == org_id:  # else as below: a pruned run answers 410, another 404
            recorded = [NodeRunValues(**{name: row[name] for name in _VALUES}) for row in nodes]
            return transient(Run, runs[0]), recorded
    run = get_run(session, org_id=org_id, run_id=run_id)
    return run, node_runs(session, run_id=run.id)


def insert_run(session: Session, run: Run) -> None:
    """INSERT a transient run's row through `models.db.insert_rows` (no unit of work; queued in
    `pipelined` with what follows). Unset columns are left out, so the table's defaults fill them
    as the unit of work would."""
    values = {c.name: getattr(run, c.name) for c in _RUN_TABLE.columns}
    insert_rows(session, _RUN_TABLE, [{k: v for k, v in values.items() if v is not None}])


def find_by_idempotency_key(session: Session, *, org_id: uuid.UUID, key: str) -> Run | None:
    """The run an earlier request with this Idempotency-Key created, if any."""
    return session.scalar(select(Run).where(Run.org_id == org_id, Run.idempotency_key == key))


def check_replay(run: Run, *, app_id: uuid.UUID, inputs: dict[str, Any], draft: bool = False,
                 version: int | None = None) -> Run:
    """Accept a retried request only if it asks for the same thing as the first: the same app, draft
    or version (None: whichever the first ran) and inputs (as the trigger accepted them)."""
    same_graph = run.draft == draft and version in (None, run.version_number)
    if run.app_id != app_id or not same_graph or run.inputs != inputs:
        raise Conflict("this Idempotency-Key was used for a different request",
                       loc=["header", "Idempotency-Key"])
    return run


def list_runs(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, status: str | None,
              limit: int, offset: int, kind: RunKind | None = RunKind.run) -> tuple[list[Run], int]:
    """A page of an app's runs (of one kind; None: every kind), newest first, and the total count."""
    where = [Run.org_id == org_id, Run.app_id == app_id]
    if status is not None:
        where.append(Run.status == status)
    if kind is not None:
        where.append(Run.kind == kind.value)
    total = session.scalar(select(func.count()).select_from(Run).where(*where)) or 0
    stmt = select(Run).where(*where).order_by(Run.created_at.desc(), Run.id).limit(limit).offset(offset)
    return list(session.scalars(stmt)), total


@cache
def _node_runs_statement() -> Select[NodeRun]:
    return select(NodeRun).where(NodeRun.run_id == bindparam("run_id"))  # built once, as `_RUN_BY_ID`


def node_runs(session: Session, *, run_id: uuid.UUID) -> list[NodeRun]:
    """Every node run of a run."""
    return list(session.scalars(_node_runs_statement(), {"run_id": run_id}))


def events_after(session: Session, *, run_id: uuid.UUID, after: int, limit: int = 500) -> list[RunEvent]:
    """The run's events with an id above `after`, oldest first."""
    stmt = (select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.id > after)
            .order_by(RunEvent.id).limit(limit))
    return list(session.scalars(stmt))


_EVENT_FIELDS = ("id", "type", "node_id", "at", "data")
_STATUS = 'SELECT "status" FROM "runs" WHERE "id" = %s'
_EVENTS_AFTER = ("SELECT " + ", ".join(f'"{name}"' for name in _EVENT_FIELDS) + ' FROM "run_events" '
                 'WHERE "run_id" = %s AND "id" > %s ORDER BY "id" LIMIT %s')


def status_and_events_after(session: Session, *, run_id: uuid.UUID, after: int, limit: int = 500
                            ) -> tuple[str | None, list[dict[str, Any]]]:
    """The run's status (None once it is deleted), then its events after `after` as `events_after`
    reads them, as column values (`_EVENT_FIELDS`). The status is read first: each statement sees
    what was committed when it began, and a run's events are committed with or before its final
    status, so a status that says the run ended comes with every event it had.

    On PostgreSQL both go in one round trip through psycopg (`models.db.fetch_dicts`): a stream
    reads this on every notice of its run, and the ORM's loading of the events cost more CPU than
    the queries."""
    if session.get_bind().dialect.name == "postgresql":
        statuses, events = fetch_dicts(session, [(_STATUS, (run_id,)),
                                                 (_EVENTS_AFTER, (run_id, after, limit))])
        return (statuses[0]["status"] if statuses else None), events
    status = session.scalar(select(Run.status).where(Run.id == run_id))
    return status, [{name: getattr(event, name) for name in _EVENT_FIELDS}
                    for event in events_after(session, run_id=run_id, after=after, limit=limit)]


def compact_json(value: Any) -> str:
    """`value` as compact JSON, as a JSON column stores it (what JSON cannot hold, as its text)."""
    return json.dumps(value, separators=(",", ":"), default=str)


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (as a JSON column stores it)."""
    return len(compact_json(value))


def waiting_node(session: Session, *, run_id: uuid.UUID, node_id: str,
                 attempt: int | None = None) -> tuple[Run, NodeRun] | str:
    """The run (now locked) and its node run still waiting for a result (for that attempt, if
    given), or why there is none."""
    run = session.scalar(select(Run).where(Run.id == run_id).with_for_update())
    if run is None or run.status in TERMINAL:
        return f"the run has ended ({run.status if run else 'deleted'})"
    row = session.scalar(select(NodeRun).where(NodeRun.run_id == run_id, NodeRun.node_id == node_id))
    if row is None or row.status != NodeStatus.waiting or row.result is not None \
            or (attempt is not None and row.attempts != attempt):
        return "the node no longer waits for a result"
    return run, row


def store_result(*, run: Run, node: NodeRun, result: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Record a waiting node's result (its run locked: `waiting_node`) and mark the run alive; the
    run must then be sent to a worker. A result over `max_bytes` of JSON is never stored: the node
    fails as if its sender had reported an error. Returns what was stored."""
    size = json_size(result)
    if size > max_bytes:
        result = {"error": f"the result is {size} bytes; the limit is {max_bytes}"}
    node.result = result
    run.heartbeat_at = utcnow()  # the reaper re-sends the run only if nobody advances it soon
    return result


# The statuses of a run that may still change, in a fixed order (the same statement in every process).
_LIVE = tuple(sorted(LIVE))


def cancel_run(session: Session, *, run: Run, actor: str) -> Run:
    """Stop a run that has not ended; its unfinished nodes are skipped (the run row must be locked)."""
    if run.status in TERMINAL:
        raise Conflict(f"the run already ended ({run.status})", loc=["run_id"])
    now = utcnow()
    for row in session.scalars(select(NodeRun).where(NodeRun.run_id == run.id)):
        if row.status in UNFINISHED:
            row.status, row.finished_at = NodeStatus.skipped, now
    error = {"type": "cancelled", "node_id": None, "message": f"cancelled by {actor}"}
    run.status, run.finished_at, run.error, run.wake_at = RunStatus.cancelled, now, error, None
    session.add(RunEvent(run_id=run.id, type="run_finished", at=now,
                         data={"status": RunStatus.cancelled.value, "outputs": None, "error": error}))
    wake_parent(session, run=run)
    # Its child runs too: parent before child, never waiting for one busy in a step (the
    # reaper's sweep of orphans ends those).
    live = select(Run).where(Run.parent_run_id == run.id, Run.status.in_(_LIVE))
    for child in session.scalars(live.with_for_update(skip_locked=True)):
        cancel_run(session, run=child, actor="its parent run")
    return run


def wake_parent(session: Session, *, run: Run) -> None:
    """A child run ended: make its parent due, so the reaper advances it even if no message does."""
    if run.parent_run_id is not None:
        session.execute(update(Run).where(Run.id == run.parent_run_id,
                                          Run.status.in_(_LIVE))
                        .values(wake_at=utcnow()))


_RUN_TABLE = Base.metadata.tables[Run.__tablename__]
_READ_RUN = select_sql(_RUN_TABLE, '"id" = %s')
_READ_NODES = select_sql(NodeRun.__table__, '"run_id" = %s')  # type: ignore[arg-type]
_VALUES = tuple(f.name for f in fields(NodeRunValues))
