"""An app's schedule through the API: read with its next run, set in the draft, stopped until a publish."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from blocks.trigger_schedule import next_tick
from core.settings import Settings
from models.orgs import Role, create_key
from tests.conftest import Tenant, make_tenant
from tests.factories import greeter_graph
from worker.schedules import Scheduler


def say_graph() -> dict[str, Any]:
    """An app without a trigger yet: a template and an output."""
    say = {"id": "say", "type": "text.template", "config": {"template": "tick {{ scheduled_at }}"}}
    return {"nodes": [say, {"id": "out", "type": "output"}],
            "edges": [{"source": "say", "source_port": "text", "target": "out", "target_port": "text"}]}


def new_app(client: TestClient, graph: dict[str, Any]) -> str:
    created = client.post("/v1/apps", json={"name": "clock", "graph": graph})
    assert created.status_code == 201, created.text
    app_id: str = created.json()["id"]
    return app_id


def scheduled_app(client: TestClient, cron: str = "0 9 * * 1-5", timezone: str = "Europe/Paris") -> str:
    """An app whose draft gets a schedule trigger through the API, wired and published."""
    app_id = new_app(client, say_graph())
    answer = client.put(f"/v1/apps/{app_id}/schedule", json={"cron": cron, "timezone": timezone})
    assert answer.status_code == 200, answer.text
    draft = client.get(f"/v1/apps/{app_id}/draft").json()["graph"]
    draft["edges"].append({"source": "schedule", "source_port": "scheduled_at", "target": "say",
                           "target_port": "scheduled_at"})
    assert client.put(f"/v1/apps/{app_id}/draft", json=draft).status_code == 200
    published = client.post(f"/v1/apps/{app_id}/publish", json={"note": "on a clock"})
    assert published.status_code == 201, published.text
    return app_id


def test_setting_a_schedule_adds_the_trigger_to_the_draft_and_says_when_it_would_run(tenant: Tenant) -> None:
    client = tenant.client
    app_id = new_app(client, say_graph())
    empty = client.get(f"/v1/apps/{app_id}/schedule").json()
    assert empty == {"published": None, "draft": None, "draft_trigger": None}

    before = datetime.now(UTC)
    answer = client.put(f"/v1/apps/{app_id}/schedule", json={"cron": "30 8 * * *", "timezone": "Asia/Tokyo"})
    assert answer.status_code == 200, answer.text
    draft = answer.json()["draft"]
    assert (draft["node_id"], draft["cron"], draft["timezone"]) == ("schedule", "30 8 * * *", "Asia/Tokyo")
    expected = next_tick("30 8 * * *", "Asia/Tokyo", before)
    assert datetime.fromisoformat(draft["next_at"]).replace(tzinfo=UTC) == expected
    assert answer.json()["published"] is None  # nothing runs before a publish

    nodes = client.get(f"/v1/apps/{app_id}/draft").json()["graph"]["nodes"]
    assert [n for n in nodes if n["type"] == "trigger.schedule"] == [
        {"id": "schedule", "type": "trigger.schedule", "position": {"x": 0, "y": 0},
         "config": {"cron": "30 8 * * *", "timezone": "Asia/Tokyo"}}]
    # Setting it again changes the same node.
    client.put(f"/v1/apps/{app_id}/schedule", json={"cron": "@daily", "timezone": "UTC"})
    nodes = client.get(f"/v1/apps/{app_id}/draft").json()["graph"]["nodes"]
    configs = [n["config"] for n in nodes if n["type"] == "trigger.schedule"]
    assert configs == [{"cron": "@daily", "timezone": "UTC"}]


def test_bad_schedules_are_refused_at_their_field(tenant: Tenant) -> None:
    app_id = new_app(tenant.client, say_graph())
    for body, loc, words in [
        ({"cron": "0 9 * *", "timezone": "UTC"}, ["body", "cron"], "five fields"),
        ({"cron": "99 9 * * *", "timezone": "UTC"}, ["body", "cron"], "99"),
        ({"cron": "@sometimes", "timezone": "UTC"}, ["body", "cron"], "unknown shorthand"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, ["body", "timezone"], "unknown time zone"),
    ]:
        answer = tenant.client.put(f"/v1/apps/{app_id}/schedule", json=body)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert [d["loc"] for d in detail] == [loc], detail
        assert words in detail[0]["msg"]
    assert tenant.client.get(f"/v1/apps/{app_id}/draft").json()["revision"] == 1  # nothing saved


def test_a_draft_started_by_another_trigger_is_not_rewritten(tenant: Tenant) -> None:
    app_id = new_app(tenant.client, greeter_graph())
    assert tenant.client.get(f"/v1/apps/{app_id}/schedule").json()["draft_trigger"] == "trigger.api"
    answer = tenant.client.put(f"/v1/apps/{app_id}/schedule", json={"cron": "@hourly"})
    assert answer.status_code == 409
    assert "trigger.api" in answer.json()["detail"][0]["msg"]


def test_stop_holds_until_the_next_publish(tenant: Tenant, sessions: sessionmaker[Session],
                                           settings: Settings) -> None:
    client = tenant.client
    app_id = scheduled_app(client)
    published = client.get(f"/v1/apps/{app_id}/schedule").json()["published"]
    assert published["version"] == 1 and published["active"] is True
    assert (published["cron"], published["timezone"]) == ("0 9 * * 1-5", "Europe/Paris")
    assert published["next_at"] is not None

    started: list[uuid.UUID] = []
    clock = Scheduler(sessions, client.app.state.registry, settings, started.append)  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    clock.read_versions(now)
    read = client.get(f"/v1/apps/{app_id}/schedule").json()["published"]
    expected = next_tick("0 9 * * 1-5", "Europe/Paris", now)
    assert datetime.fromisoformat(read["next_at"]).replace(tzinfo=UTC) == expected

    stopped = client.delete(f"/v1/apps/{app_id}/schedule")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["published"]["active"] is False and stopped.json()["published"]["next_at"] is None
    assert clock.sweep(now + timedelta(days=8)) == []  # a week of ticks, none fired

    again = client.post(f"/v1/apps/{app_id}/publish", json={"note": "back on"})
    assert again.status_code == 201
    assert client.get(f"/v1/apps/{app_id}/schedule").json()["published"]["active"] is True
    clock.read_versions(now)
    assert len(clock.sweep(now + timedelta(days=8))) == 1  # the new version's schedule runs


def test_stopping_needs_a_published_schedule_and_a_builder(tenant: Tenant, sessions: sessionmaker[Session],
                                                           api: TestClient) -> None:
    app_id = new_app(tenant.client, greeter_graph())
    assert tenant.client.delete(f"/v1/apps/{app_id}/schedule").status_code == 409
    assert tenant.client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    answer = tenant.client.delete(f"/v1/apps/{app_id}/schedule")
    assert answer.status_code == 409 and "trigger.schedule" in answer.json()["detail"][0]["msg"]

    stranger = make_tenant(sessions, api, "strangers")
    own = scheduled_app(tenant.client)
    assert stranger.client.get(f"/v1/apps/{own}/schedule").status_code == 404  # another organization's
    with sessions() as s:
        _, secret = create_key(s, org_id=tenant.org_id, name="reviewer", role=Role.reviewer)
        s.commit()
    reviewer = TestClient(api.app, headers={"Authorization": f"Bearer {secret}"})
    assert reviewer.get(f"/v1/apps/{own}/schedule").status_code == 403  # reviewing needs no schedule
    assert reviewer.put(f"/v1/apps/{own}/schedule", json={"cron": "@daily"}).status_code == 403
    assert reviewer.delete(f"/v1/apps/{own}/schedule").status_code == 403
