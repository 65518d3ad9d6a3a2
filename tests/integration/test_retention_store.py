"""The pruner's selection and batches on both databases, with run trees made row by row: which runs a
policy takes, that a tree goes whole or not at all, and that each pruned run leaves a tombstone."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Gone, NotFound
from core.settings import Settings
from models.apps import create_app
from models.base import utcnow
from models.orgs import create_org
from models.retention import (
    AppToPrune,
    Policy,
    PrunedRun,
    apps_to_prune,
    count_boundary,
    drop_tombstones,
    prune_batch,
    set_app_policy,
    set_org_policy,
)
from models.runs import Run, get_run
from worker.retention import Pruner

NOW = utcnow()


def an_app(session: Session) -> tuple[uuid.UUID, uuid.UUID]:
    """A new organization and one app of it."""
    org = create_org(session, name=f"keeper-{uuid.uuid4().hex[:8]}")
    app = create_app(session, org_id=org.id, name="app", description="", draft={"nodes": [], "edges": []})
    return org.id, app.id


def a_run(session: Session, org_id: uuid.UUID, app_id: uuid.UUID, *, days_ago: float,
          status: str = "succeeded", parent: uuid.UUID | None = None, index: int | None = None) -> uuid.UUID:
    """A run created `days_ago` and, when ended, finished a second later."""
    at = NOW - timedelta(days=days_ago)
    run = Run(org_id=org_id, app_id=app_id, status=status, inputs={}, created_at=at,
              finished_at=at + timedelta(seconds=1) if status in ("succeeded", "failed") else None,
              parent_run_id=parent, parent_node_id="m" if parent else None,
              parent_attempt=1 if parent else None, item_index=index)
    session.add(run)
    session.flush()
    return run.id


def existing(session: Session, ids: list[uuid.UUID]) -> list[bool]:
    """Whether each run is still there."""
    found = set(session.scalars(select(Run.id).where(Run.id.in_(ids))))
    return [run_id in found for run_id in ids]


def test_a_tree_goes_whole_and_one_with_a_live_child_waits(session: Session) -> None:
    org_id, app_id = an_app(session)
    root = a_run(session, org_id, app_id, days_ago=40)
    child = a_run(session, org_id, app_id, days_ago=40, parent=root, index=0)
    grandchild = a_run(session, org_id, app_id, days_ago=40, parent=child, index=0)
    waiting_root = a_run(session, org_id, app_id, days_ago=39)
    live_child = a_run(session, org_id, app_id, days_ago=39, status="running", parent=waiting_root, index=0)
    recent = a_run(session, org_id, app_id, days_ago=1)
    old_but_live = a_run(session, org_id, app_id, days_ago=50, status="waiting")
    app = AppToPrune(org_id, app_id, Policy(keep_days=30), "organization")

    pruned = prune_batch(session, app=app, now=NOW, boundary=None, limit=10)
    assert pruned.runs == 3
    assert existing(session, [root, child, grandchild, waiting_root, live_child, recent, old_but_live]) == [
        False, False, False, True, True, True, True]
    assert session.scalar(select(func.count()).select_from(PrunedRun).where(PrunedRun.org_id == org_id)) == 3
    with pytest.raises(Gone, match=r"by the organization's retention policy \(keep 30 days\)"):
        get_run(session, org_id=org_id, run_id=grandchild)
    other_org, _ = an_app(session)
    with pytest.raises(NotFound):
        get_run(session, org_id=other_org, run_id=grandchild)
    # Nothing more to take: the waiting tree stays until its child ends.
    assert prune_batch(session, app=app, now=NOW, boundary=None, limit=10).runs == 0


def test_the_last_runs_are_counted_among_top_level_runs_in_batches(session: Session) -> None:
    org_id, app_id = an_app(session)
    runs = [a_run(session, org_id, app_id, days_ago=10 - i) for i in range(6)]  # oldest first
    a_run(session, org_id, app_id, days_ago=0.5, parent=runs[-1], index=0)  # an item: not counted
    boundary = count_boundary(session, app_id=app_id, keep_runs=2)
    assert boundary is not None and boundary[1] == runs[3]
    app = AppToPrune(org_id, app_id, Policy(keep_runs=2), "app")

    assert prune_batch(session, app=app, now=NOW, boundary=boundary, limit=3).runs == 3
    assert prune_batch(session, app=app, now=NOW, boundary=boundary, limit=3).runs == 1
    assert prune_batch(session, app=app, now=NOW, boundary=boundary, limit=3).runs == 0
    assert existing(session, runs) == [False, False, False, False, True, True]
    assert count_boundary(session, app_id=app_id, keep_runs=2) is None


def test_apps_follow_their_own_policy_or_their_organizations(session: Session) -> None:
    org_id, follows = an_app(session)
    own = create_app(session, org_id=org_id, name="own", description="", draft={}).id
    forever = create_app(session, org_id=org_id, name="forever", description="", draft={}).id
    _, unmanaged = an_app(session)
    set_org_policy(session, org_id=org_id, policy=Policy(keep_days=30))
    set_app_policy(session, org_id=org_id, app_id=own, policy=Policy(keep_runs=5))
    set_app_policy(session, org_id=org_id, app_id=forever, policy=Policy())
    session.flush()

    found = {a.app_id: (a.policy, a.source) for a in apps_to_prune(session)}
    assert found[follows] == (Policy(keep_days=30), "organization")
    assert found[own] == (Policy(keep_runs=5), "app")
    assert forever not in found and unmanaged not in found


def test_a_sweep_stops_at_its_time_budget_and_says_work_is_left(sessions: sessionmaker[Session],
                                                               tmp_path: Path) -> None:
    with sessions() as session:
        org_id, app_id = an_app(session)
        runs = [a_run(session, org_id, app_id, days_ago=40) for _ in range(5)]
        set_org_policy(session, org_id=org_id, policy=Policy(keep_days=30))
        session.commit()
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="test-secret",
                        retention_batch=2, retention_sweep_s=1e-9)
    counted = REGISTRY.get_sample_value("mantle_runs_pruned_total", {"source": "organization"}) or 0
    out_of_time = Pruner(sessions, settings).sweep()
    assert (out_of_time.runs, out_of_time.finished) == (0, False)  # the task then sends itself again

    done = Pruner(sessions, settings.model_copy(update={"retention_sweep_s": 60})).sweep()
    assert (done.runs, done.batches, done.finished) == (5, 3, True)
    assert REGISTRY.get_sample_value("mantle_runs_pruned_total", {"source": "organization"}) == counted + 5
    with sessions() as session:
        assert existing(session, runs) == [False] * 5


def test_tombstones_are_forgotten_after_their_days(session: Session) -> None:
    org_id, app_id = an_app(session)
    run_id = a_run(session, org_id, app_id, days_ago=40)
    app = AppToPrune(org_id, app_id, Policy(keep_days=30), "organization")
    assert prune_batch(session, app=app, now=NOW - timedelta(days=2), boundary=None, limit=10).runs == 1
    assert drop_tombstones(session, before=NOW - timedelta(days=3), limit=100) == 0
    with pytest.raises(Gone):
        get_run(session, org_id=org_id, run_id=run_id)
    assert drop_tombstones(session, before=NOW - timedelta(days=1), limit=100) >= 1
    with pytest.raises(NotFound):
        get_run(session, org_id=org_id, run_id=run_id)
