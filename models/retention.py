"""Run retention: how long an organization (or one of its apps) keeps its runs, and the pruning.

Runs, their node runs and their events would otherwise grow forever. An organization may keep
runs for `keep_days` days and/or only its apps' last `keep_runs` runs (either, both, or neither:
unset keeps forever, the default); an app's own setting replaces the organization's whole (an app
may also keep forever under an organization that prunes). Both limits prune, as n8n's do: a run
goes when it ended more than `keep_days` days ago, or when it is not among its app's last
`keep_runs` runs.

The pruner (`worker/retention.py`, on the scheduler) deletes in small batches, one transaction
each, and only what the hot path never touches:

* only runs that ended (succeeded, failed, blocked, cancelled), locked `FOR UPDATE SKIP LOCKED`
  on PostgreSQL so a run some transaction holds is simply left for the next sweep;
* a run is pruned with its child runs (an `app.call`'s callee, a `flow.map`'s items), never
  alone: children are counted and pruned through their top-level run, and a tree with a child
  still live is left whole;
* per batch: its node runs and events, then its review items (they hold the reviewed text and
  mean nothing without the run, whose retention they follow), then its SMS messages are detached
  (`run_id` cleared: they are the phone conversation's record, which Twilio's delivery callbacks
  update and an app's conversation view reads, and which opt-outs rely on; they outlive the run as
  they outlive a deleted app), then the runs. Runs that retried or re-ran a pruned run lose the
  link (the foreign keys' `SET NULL`, indexed for it). Model usage keeps the run id as a plain
  value (no foreign key): billing and usage reports never lose a call.
* a tombstone per pruned run (`pruned_runs`), in the same transaction, so reading a pruned run
  answers 410 with when and by which policy, to its own organization only (another's gets 404).
  Tombstones go after `MANTLE_RETENTION_TOMBSTONE_DAYS`, then the run is simply unknown (404).

A retried request with the Idempotency-Key of a pruned run starts a new run: the key went with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Executable,
    ForeignKey,
    Select,
    String,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Gone
from models.apps import App
from models.base import Base, utcnow
from models.reviews import ReviewItem
from models.runs import NodeRun, Run, RunEvent
from models.sms import SmsInbound, SmsOutbound

ENDED = ("succeeded", "failed", "blocked", "cancelled")
MAX_KEEP_DAYS = 3650
MAX_KEEP_RUNS = 1_000_000


@dataclass(frozen=True, slots=True)
class Policy:
    """What to keep: runs of the last `keep_days` days and/or the last `keep_runs` runs (None: no limit)."""

    keep_days: int | None = None
    keep_runs: int | None = None

    @property
    def forever(self) -> bool:
        """Whether nothing is ever pruned under this policy."""
        return self.keep_days is None and self.keep_runs is None

    def describe(self) -> str:
        """The policy in words: `keep 30 days`, `keep the last 100 runs`, both, or `keep forever`."""
        parts = []
        if self.keep_days is not None:
            parts.append(f"keep {self.keep_days} day{'s' if self.keep_days != 1 else ''}")
        if self.keep_runs is not None:
            parts.append(f"keep the last {self.keep_runs} run{'s' if self.keep_runs != 1 else ''}")
        return " and ".join(parts) or "keep forever"


def effective_policy(org: Policy | None, app: Policy | None) -> Policy:
    """The policy an app's runs follow: its own when it has one (even `keep forever`), else its
    organization's, else keep forever."""
    if app is not None:
        return app
    return org or Policy()


def age_cutoff(policy: Policy, now: datetime) -> datetime | None:
    """Runs that ended before this time are past the policy's days (None: no day limit)."""
    return None if policy.keep_days is None else now - timedelta(days=policy.keep_days)


def gone_message(run_id: uuid.UUID, pruned_at: datetime, policy: Policy, source: str) -> str:
    """What a reader of a pruned run is told."""
    return (f"run {run_id} was deleted on {pruned_at.date().isoformat()} by the {source}'s retention "
            f"policy ({policy.describe()})")


class OrgRetention(Base):
    """An organization's retention policy (no row: keep forever)."""

    __tablename__ = "org_retention"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                              primary_key=True)
    keep_days: Mapped[int | None]
    keep_runs: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppRetention(Base):
    """An app's own retention policy, replacing its organization's (no row: the organization's)."""

    __tablename__ = "app_retention"

    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    keep_days: Mapped[int | None]
    keep_runs: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PrunedRun(Base):
    """A tombstone: the run was deleted by a retention policy (read as 410 by its organization)."""

    __tablename__ = "pruned_runs"

    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    pruned_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    keep_days: Mapped[int | None]
    keep_runs: Mapped[int | None]
    # Whose policy it was: "organization" or "app".
    source: Mapped[str] = mapped_column(String(20), default="organization")


def get_org_policy(session: Session, *, org_id: uuid.UUID) -> Policy | None:
    """The organization's policy, if it set one."""
    row = session.get(OrgRetention, org_id)
    return None if row is None else Policy(row.keep_days, row.keep_runs)


def set_org_policy(session: Session, *, org_id: uuid.UUID, policy: Policy) -> Policy:
    """Set (or replace) the organization's policy; `Policy()` keeps forever."""
    row = session.get(OrgRetention, org_id, with_for_update=True)
    if row is None:
        row = OrgRetention(org_id=org_id)
        session.add(row)
    row.keep_days, row.keep_runs, row.updated_at = policy.keep_days, policy.keep_runs, utcnow()
    return policy


def get_app_policy(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID) -> Policy | None:
    """The app's own policy, if it has one (the caller checked the app is the organization's)."""
    row = session.get(AppRetention, app_id)
    return None if row is None or row.org_id != org_id else Policy(row.keep_days, row.keep_runs)


def set_app_policy(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, policy: Policy | None) -> None:
    """Give the app its own policy, or (None) let it follow its organization's again."""
    row = session.get(AppRetention, app_id, with_for_update=True)
    if policy is None:
        if row is not None:
            session.delete(row)
            session.flush()  # a read in the same transaction must no longer find it
        return
    if row is None:
        row = AppRetention(app_id=app_id, org_id=org_id)
        session.add(row)
    row.keep_days, row.keep_runs, row.updated_at = policy.keep_days, policy.keep_runs, utcnow()


def gone_if_pruned(session: Session, *, org_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """Raise Gone when the organization's run was pruned (another organization's: nothing)."""
    row = session.scalar(select(PrunedRun).where(PrunedRun.run_id == run_id, PrunedRun.org_id == org_id))
    if row is not None:
        policy = Policy(row.keep_days, row.keep_runs)
        raise Gone(gone_message(run_id, row.pruned_at, policy, row.source), loc=["run_id"])


@dataclass(frozen=True, slots=True)
class AppToPrune:
    """An app whose runs a policy limits."""

    org_id: uuid.UUID
    app_id: uuid.UUID
    policy: Policy
    source: str  # "organization" or "app"


def apps_to_prune(session: Session) -> list[AppToPrune]:
    """Every app under a policy that prunes something (its own, or its organization's)."""
    org = OrgRetention
    own = AppRetention
    rows = session.execute(
        select(App.org_id, App.id, org.keep_days, org.keep_runs, own.app_id, own.keep_days, own.keep_runs)
        .outerjoin(org, org.org_id == App.org_id).outerjoin(own, own.app_id == App.id)
        .where(or_(own.app_id.is_not(None), org.org_id.is_not(None)))
        .order_by(App.org_id, App.id)
    ).all()
    found = []
    for org_id, app_id, org_days, org_runs, own_id, own_days, own_runs in rows:
        app_policy = None if own_id is None else Policy(own_days, own_runs)
        policy = effective_policy(Policy(org_days, org_runs), app_policy)
        if not policy.forever:
            found.append(AppToPrune(org_id, app_id, policy, "organization" if own_id is None else "app"))
    return found


def boundary_statement(app_id: uuid.UUID, keep_runs: int) -> Select[datetime, uuid.UUID]:
    """The statement finding the newest of the app's top-level runs beyond its last `keep_runs`."""
    return (select(Run.created_at, Run.id).where(Run.app_id == app_id, Run.parent_run_id.is_(None))
            .order_by(Run.created_at.desc(), Run.id.desc()).offset(keep_runs).limit(1))


def count_boundary(session: Session, *, app_id: uuid.UUID,
                   keep_runs: int) -> tuple[datetime, uuid.UUID] | None:
    """The newest of the app's top-level runs beyond its last `keep_runs` (None: it has no more)."""
    row = session.execute(boundary_statement(app_id, keep_runs)).first()
    return None if row is None else (row[0], row[1])


def selection(app: AppToPrune, *, now: datetime, boundary: tuple[datetime, uuid.UUID] | None,
              limit: int) -> Select[uuid.UUID] | None:
    """The statement choosing up to `limit` of the app's ended top-level runs the policy prunes,
    oldest first, locked where the database can (None: nothing can be pruned)."""
    cutoff = age_cutoff(app.policy, now)
    reasons = []
    upper = None  # no run past either limit was created after this: the index's range
    if cutoff is not None:
        reasons.append(Run.finished_at < cutoff)
        upper = cutoff
    if boundary is not None:
        at, run_id = boundary
        reasons.append(or_(Run.created_at < at, and_(Run.created_at == at, Run.id <= run_id)))
        upper = at if upper is None else max(upper, at)
    if upper is None:
        return None
    return (select(Run.id)
            .where(Run.app_id == app.app_id, Run.created_at <= upper, Run.parent_run_id.is_(None),
                   Run.status.in_(ENDED), or_(*reasons))
            .order_by(Run.created_at).limit(limit)
            .with_for_update(skip_locked=True))


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one batch deleted."""

    runs: int = 0
    node_runs: int = 0
    events: int = 0
    reviews: int = 0
    sms_detached: int = 0


def _trees(session: Session, roots: Sequence[uuid.UUID]) -> list[list[uuid.UUID]]:
    """The runs of the roots' trees level by level (roots first), one query per level, leaving out
    every tree with a run still live."""
    root_of = {run_id: run_id for run_id in roots}
    levels = [list(roots)]
    live_roots = set()
    while levels[-1]:
        children = session.execute(select(Run.id, Run.status, Run.parent_run_id)
                                   .where(Run.parent_run_id.in_(levels[-1]))).all()
        for child_id, status, parent_id in children:
            assert parent_id is not None  # it was asked for by its parent
            root_of[child_id] = root_of[parent_id]
            if status not in ENDED:
                live_roots.add(root_of[parent_id])
        levels.append([child_id for child_id, _, _ in children])
    return [[run_id for run_id in level if root_of[run_id] not in live_roots] for level in levels[:-1]]


def prune_batch(session: Session, *, app: AppToPrune, now: datetime,
                boundary: tuple[datetime, uuid.UUID] | None, limit: int) -> Pruned:
    """Delete one batch of the app's runs the policy prunes (with their children), leaving
    tombstones; the caller commits. Pruned() when nothing was left to prune."""
    stmt = selection(app, now=now, boundary=boundary, limit=limit)
    if stmt is None:
        return Pruned()
    roots = list(session.scalars(stmt))
    if not roots:
        return Pruned()
    levels = _trees(session, roots)  # a root whose tree has a live child waits; the others go
    ids = [run_id for level in levels for run_id in level]
    if not ids:
        return Pruned()
    session.execute(insert(PrunedRun), [
        {"run_id": run_id, "org_id": app.org_id, "app_id": app.app_id, "pruned_at": now,
         "keep_days": app.policy.keep_days, "keep_runs": app.policy.keep_runs, "source": app.source}
        for run_id in ids])
    events = _count(session, delete(RunEvent).where(RunEvent.run_id.in_(ids)))
    nodes = _count(session, delete(NodeRun).where(NodeRun.run_id.in_(ids)))
    reviews = _count(session, delete(ReviewItem).where(ReviewItem.run_id.in_(ids)))
    detached = 0
    for table in (SmsInbound, SmsOutbound):
        detached += _count(session, update(table).where(table.run_id.in_(ids)).values(run_id=None))
    for level in reversed(levels):  # children first: their parents' rows are still there
        if level:
            session.execute(delete(Run).where(Run.id.in_(level)))
    return Pruned(runs=len(ids), node_runs=nodes, events=events, reviews=reviews, sms_detached=detached)


def drop_tombstones(session: Session, *, before: datetime, limit: int) -> int:
    """Forget up to `limit` tombstones older than `before` (their runs then read as unknown)."""
    old = select(PrunedRun.run_id).where(PrunedRun.pruned_at < before).limit(limit)
    return _count(session, delete(PrunedRun).where(PrunedRun.run_id.in_(old.scalar_subquery())))


def _count(session: Session, statement: Executable) -> int:
    """Rows a DELETE or UPDATE touched."""
    return int(getattr(session.execute(statement), "rowcount", 0) or 0)
