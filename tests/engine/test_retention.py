"""Run retention with a real worker and its scheduler, on both stacks: what a policy prunes, what it
keeps, and what a reader of a pruned run is told.

Runs are made through the API and then aged in the database (their creation and end moved back),
which is what a month of waiting would do. Each test has its own organization, so one test's policy
never reaches another's runs; pruning is the worker's `runs.prune`, sent by its beat or by the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from models.base import utcnow
from models.db import session_factory, session_scope
from models.orgs import Role, create_key, create_org
from models.reviews import ReviewItem
from models.runs import NodeRun, Run, RunEvent
from models.sms import SmsInbound
from models.usage import ModelUsage, UsageSource, record_usage
from tests.engine.conftest import ENDED, Stack, running_stack, wait_until
from tests.engine.test_composition import mapping
from tests.factories import edge, greeter_graph, node
from tests.reviews import review_graph


@pytest.fixture(scope="module", params=["embedded", "production"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A running stack whose scheduler prunes every second."""
    with running_stack(request.param, tmp_path_factory.mktemp("retention"),
                       extra={"retention_interval_s": 1.0}) as built:
        yield built


def tenant(stack: Stack, role: Role = Role.admin) -> tuple[uuid.UUID, TestClient]:
    """A new organization of the stack and a client with its key."""
    with session_scope(session_factory(stack.database_url)) as session:
        org = create_org(session, name=f"retention-{uuid.uuid4().hex[:8]}")
        _, key = create_key(session, org_id=org.id, name="keeper", role=role)
        org_id = org.id
    return org_id, client_for(stack, key)


def client_for(stack: Stack, key: str) -> TestClient:
    """A client of the stack's API sending `key`."""
    return TestClient(stack.client.app, headers={"Authorization": f"Bearer {key}"},
                      raise_server_exceptions=False)


def publish(client: TestClient, graph: dict[str, Any]) -> str:
    """Create and publish an app; returns its id."""
    created = client.post("/v1/apps", json={"name": f"app {uuid.uuid4().hex[:6]}", "graph": graph})
    assert created.status_code == 201, created.text
    app_id: str = created.json()["id"]
    assert client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    return app_id


def finished_run(client: TestClient, app_id: str, name: str = "Ada") -> str:
    """A run of the greeter app, once it succeeded."""
    answer = client.post(f"/v1/apps/{app_id}/runs", params={"wait": 20}, json={"inputs": {"name": name}})
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded", answer.text
    run_id: str = answer.json()["id"]
    return run_id


def age(stack: Stack, run_ids: list[str], days: int) -> None:
    """Move the runs' creation (and end, if they ended) `days` back, keeping their order."""
    with session_scope(session_factory(stack.database_url)) as session:
        for i, run_id in enumerate(run_ids):
            at = utcnow() - timedelta(days=days) + timedelta(seconds=i)
            run = session.get(Run, uuid.UUID(run_id))
            assert run is not None
            session.execute(update(Run).where(Run.id == run.id).values(
                created_at=at, finished_at=at + timedelta(seconds=1) if run.finished_at else None))


def prune(stack: Stack) -> None:
    """Have the worker prune now (beside its beat's own sweeps) and wait until it did."""
    line = stack.task_done(stack.send("runs.prune"), timeout=60)
    assert "succeeded" in line, line


def rows(stack: Stack, table: Any, run_id: str) -> int:
    """How many rows of `table` name the run."""
    with session_scope(session_factory(stack.database_url)) as session:
        count = select(func.count()).select_from(table).where(table.run_id == uuid.UUID(run_id))
        return session.scalar(count) or 0


def status_of(client: TestClient, run_id: str) -> int:
    """The status code of reading the run."""
    return client.get(f"/v1/runs/{run_id}").status_code


def test_runs_past_the_organizations_days_are_pruned_and_answer_410(stack: Stack) -> None:
    org_id, client = tenant(stack)
    app_id = publish(client, greeter_graph())
    old = [finished_run(client, app_id, f"old {i}") for i in range(3)]
    recent = finished_run(client, app_id, "recent")
    age(stack, old, days=40)
    with session_scope(session_factory(stack.database_url)) as session:  # a model call of an old run
        record_usage(session, org_id=org_id, source=UsageSource.run, deployment="smollm2-135m-instruct",
                     prompt_tokens=12, completion_tokens=34, latency_s=0.5, cost=None,
                     app_id=uuid.UUID(app_id), run_id=uuid.UUID(old[0]), node_id="greet")
    assert rows(stack, NodeRun, old[0]) > 0 and rows(stack, RunEvent, old[0]) > 0

    answer = client.put("/v1/org/retention", json={"keep_days": 30})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"keep_days": 30, "keep_runs": None, "description": "keep 30 days"}

    # No task sent: the worker's scheduler prunes on its own.
    wait_until(lambda: all(status_of(client, r) == 410 for r in old), 60, "the old runs to be pruned")
    gone = client.get(f"/v1/runs/{old[0]}")
    today = utcnow().date().isoformat()
    assert gone.json()["detail"][0]["msg"] == (
        f"run {old[0]} was deleted on {today} by the organization's retention policy (keep 30 days)")
    assert client.get(f"/v1/runs/{old[0]}/graph").status_code == 410
    assert client.get(f"/v1/runs/{old[0]}/events").status_code == 410
    assert client.post(f"/v1/runs/{old[0]}/rerun").status_code == 410
    assert rows(stack, NodeRun, old[0]) == 0 and rows(stack, RunEvent, old[0]) == 0

    # The recent run is whole; the old run's model usage still counts.
    kept = client.get(f"/v1/runs/{recent}")
    assert kept.status_code == 200 and kept.json()["outputs"] == {"text": "Hello, recent!"}, kept.text
    assert rows(stack, ModelUsage, old[0]) == 1
    listed = client.get(f"/v1/apps/{app_id}/runs").json()
    assert [r["id"] for r in listed["items"]] == [recent] and listed["total"] == 1

    # Another organization learns nothing: the pruned run is as unknown as any other id.
    _, stranger = tenant(stack)
    assert stranger.get(f"/v1/runs/{old[0]}").status_code == 404
    assert stranger.get(f"/v1/runs/{old[0]}/events").status_code == 404


def test_the_last_runs_are_kept_and_an_apps_own_setting_wins(stack: Stack) -> None:
    _, client = tenant(stack)
    follows, own, forever = (publish(client, greeter_graph()) for _ in range(3))
    runs = {app: [finished_run(client, app, f"n{i}") for i in range(4)] for app in (follows, own, forever)}
    # Another organization's old runs, under no policy of its own.
    _, neighbour = tenant(stack)
    theirs = publish(neighbour, greeter_graph())
    their_runs = [finished_run(neighbour, theirs) for _ in range(2)]
    age(stack, their_runs, days=400)

    # The apps' own policies first: the worker's scheduler prunes meanwhile too, and the
    # organization's policy alone, for a moment, would have pruned their runs to 2.
    assert client.put(f"/v1/apps/{own}/retention", json={"keep_runs": 3}).status_code == 200
    assert client.put(f"/v1/apps/{forever}/retention", json={}).status_code == 200
    assert client.put("/v1/org/retention", json={"keep_runs": 2}).status_code == 200
    assert client.get(f"/v1/apps/{follows}/retention").json() == {
        "app_id": follows, "keep_days": None, "keep_runs": 2, "description": "keep the last 2 runs",
        "source": "organization"}
    assert client.get(f"/v1/apps/{forever}/retention").json()["description"] == "keep forever"
    prune(stack)

    def kept(app: str) -> list[int]:
        return [status_of(client, r) for r in runs[app]]

    assert kept(follows) == [410, 410, 200, 200]
    assert kept(own) == [410, 200, 200, 200]
    assert kept(forever) == [200, 200, 200, 200]
    assert [status_of(neighbour, r) for r in their_runs] == [200, 200]
    own_gone = client.get(f"/v1/runs/{runs[own][0]}").json()["detail"][0]["msg"]
    assert own_gone.endswith("by the app's retention policy (keep the last 3 runs)"), own_gone

    # Back to the organization's policy: the app keeps its last 2 runs, like its sibling.
    reset = client.delete(f"/v1/apps/{own}/retention")
    assert reset.status_code == 200 and reset.json()["source"] == "organization", reset.text
    prune(stack)
    assert kept(own) == [410, 410, 200, 200]


def test_a_live_run_is_never_pruned_and_reviews_and_sms_follow_their_run(stack: Stack) -> None:
    org_id, client = tenant(stack)
    app_id = publish(client, review_graph())

    def waiting_run() -> tuple[str, str]:
        run_id = client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"message": "hi"}}).json()["id"]
        items = wait_until(lambda: client.get("/v1/reviews", params={"app_id": app_id,
                                                                        "status": "pending"}).json()["items"],
                           30, "the run's review item")
        assert len(items) == 1 and items[0]["run_id"] == run_id, items
        return run_id, items[0]["id"]

    def decided(run_id: str, review_id: str) -> None:
        answer = client.post(f"/v1/reviews/{review_id}/decision", json={"action": "approve"})
        assert answer.status_code == 200, answer.text
        wait_until(lambda: client.get(f"/v1/runs/{run_id}").json()["status"] in ENDED, 30, "the run to end")

    ended_old, ended_old_review = waiting_run()
    decided(ended_old, ended_old_review)
    ended_new, ended_new_review = waiting_run()
    decided(ended_new, ended_new_review)
    live, live_review = waiting_run()
    age(stack, [ended_old, live], days=90)
    with session_scope(session_factory(stack.database_url)) as session:  # the texts that started them
        for run_id in (ended_old, ended_new):
            session.add(SmsInbound(org_id=org_id, app_id=uuid.UUID(app_id), run_id=uuid.UUID(run_id),
                                   message_sid=f"SM{uuid.uuid4().hex}", from_number="+15550001111",
                                   to_number="+15550002222", body=f"text of {run_id}"))

    assert client.put(f"/v1/apps/{app_id}/retention", json={"keep_days": 30}).status_code == 200
    prune(stack)

    assert status_of(client, ended_old) == 410
    still = client.get(f"/v1/runs/{live}")
    assert still.status_code == 200 and still.json()["status"] == "waiting", still.text
    assert client.get(f"/v1/reviews/{live_review}").json()["status"] == "pending"
    assert client.get(f"/v1/reviews/{ended_new_review}").status_code == 200
    assert client.get(f"/v1/reviews/{ended_old_review}").status_code == 404
    with session_scope(session_factory(stack.database_url)) as session:
        inbound = session.scalars(select(SmsInbound).where(SmsInbound.org_id == org_id))
        texts = {m.body: m.run_id for m in inbound}
        reviews = session.scalar(select(func.count()).select_from(ReviewItem)
                                 .where(ReviewItem.run_id == uuid.UUID(ended_old)))
    # The conversation keeps every text; only the pruned run's link is gone.
    assert texts == {f"text of {ended_old}": None, f"text of {ended_new}": uuid.UUID(ended_new)}
    assert reviews == 0

    # The live run ends now, 90 days after it started: it ended within the policy's 30 days.
    decided(live, live_review)
    prune(stack)
    assert status_of(client, live) == 200


def test_child_runs_go_with_their_parent_and_a_rerun_outlives_what_it_repeated(stack: Stack) -> None:
    _, client = tenant(stack)
    body = [node("t", "text.template", template="#{{ index }}: {{ value }}")]
    wiring = [edge("m", "item", "t", "value"), edge("m", "index", "t", "index")]
    mapper = publish(client, mapping(body, wiring, [{"name": "texts", "node": "t", "port": "text"}]))
    answer = client.post(f"/v1/apps/{mapper}/runs", params={"wait": 20},
                         json={"inputs": {"items": ["a", "b"]}})
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded", answer.text
    parent = answer.json()
    items = [c["id"] for n in parent["trace"] if n["node_id"] == "m" for c in n["children"]]
    assert len(items) == 2 and all(status_of(client, c) == 200 for c in items)
    greeter = publish(client, greeter_graph())
    repeated = finished_run(client, greeter)
    again = client.post(f"/v1/runs/{repeated}/rerun", params={"wait": 20})
    assert again.status_code == 200 and again.json()["rerun_of"] == repeated, again.text
    age(stack, [parent["id"], repeated], days=40)  # the items themselves are recent

    assert client.put("/v1/org/retention", json={"keep_days": 30}).status_code == 200
    prune(stack)

    assert [status_of(client, r) for r in (parent["id"], *items, repeated)] == [410, 410, 410, 410]
    rerun = client.get(f"/v1/runs/{again.json()['id']}")
    assert rerun.status_code == 200 and rerun.json()["rerun_of"] is None, rerun.text


def test_bad_settings_are_refused_naming_the_field(stack: Stack) -> None:
    org_id, admin = tenant(stack)
    app_id = publish(admin, greeter_graph())
    for body, field in (({"keep_days": 0}, "keep_days"), ({"keep_runs": -1}, "keep_runs"),
                        ({"keep_days": 100_000}, "keep_days"), ({"keep_runs": "many"}, "keep_runs"),
                        ({"keep_hours": 3}, "keep_hours")):
        for path in ("/v1/org/retention", f"/v1/apps/{app_id}/retention"):
            answer = admin.put(path, json=body)
            assert answer.status_code == 422, (path, body, answer.text)
            assert answer.json()["detail"][0]["loc"] == ["body", field], answer.text
    assert admin.get("/v1/org/retention").json()["description"] == "keep forever"

    with session_scope(session_factory(stack.database_url)) as session:
        _, key = create_key(session, org_id=org_id, name="builder", role=Role.builder)
    builder = client_for(stack, key)
    refused = builder.put("/v1/org/retention", json={"keep_days": 1})
    assert refused.status_code == 403 and "admin" in refused.json()["detail"][0]["msg"], refused.text
    assert builder.get("/v1/org/retention").status_code == 403
    assert builder.put(f"/v1/apps/{app_id}/retention", json={"keep_days": 7}).status_code == 200
    _, stranger = tenant(stack)
    assert stranger.put(f"/v1/apps/{app_id}/retention", json={"keep_days": 1}).status_code == 404
    assert stranger.get(f"/v1/apps/{app_id}/retention").status_code == 404
