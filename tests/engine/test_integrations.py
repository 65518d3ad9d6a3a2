"""Integrations through real workers: the Weather-style example against a local API with a tiny
model answering, a webhook that waits for the app's output, the scheduler run by beat, and a
credential that authenticates a request without ever reaching the trace.

The local server listens on loopback, which the workers may reach only because this test's
settings put 127.0.0.1 on the allow-list (`MANTLE_HTTP_ALLOW_HOSTS`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from blocks.trigger_webhook import sign
from models.base import utcnow
from models.db import session_factory, session_scope
from models.runs import Run
from models.schedules import AppSchedule
from tests.engine.conftest import Stack, running_stack, wait_until
from tests.http_server import LocalServer, serving
from worker.inference.tiny import save_tiny

SECRET = "whsec-7a1e4c9b2d6f8e0a"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serving() as running:
        yield running


@pytest.fixture(scope="module", params=["embedded", "production"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A run worker (with beat) and an inference worker serving a tiny random GPT-J as `tiny`."""
    tiny = save_tiny(tmp_path_factory.mktemp("tiny") / "model")
    extra = {"http_allow_hosts": ["127.0.0.1"], "schedule_interval_s": 0.3,
             "model_deployments": [{"name": "tiny", "source": str(tiny), "dtype": "float32", "pinned": True,
                                    "max_context": 4096}]}
    with running_stack(request.param, tmp_path_factory.mktemp("integrations"), extra) as built:
        built.start_worker(queues="inference", pool="threads", beat=False, timeout=240)
        yield built


def node(run: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in run["trace"] if n["node_id"] == node_id)
    return found


def test_the_weather_example_looks_up_extracts_and_has_a_model_answer(stack: Stack,
                                                                      server: LocalServer) -> None:
    doc = json.loads((resources.files("cli") / "examples" / "weather_lookup.json").read_text())
    graph = doc["draft"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    nodes["lookup"]["config"]["url"] = server.url + "/weather/{{ city | urlencode }}"  # not the internet
    nodes["say"]["config"].update(model="tiny", chat=False, max_new_tokens=8, temperature=0)
    app_id = stack.publish(graph, name=doc["name"])
    run = stack.wait_run(stack.run(app_id, {"city": "Lyon, FR"})["id"], timeout=120)
    assert run["status"] == "succeeded", run
    assert node(run, "lookup")["outputs"]["status"] == 200
    assert server.seen("/weather/Lyon%2C%20FR")[-1].headers["accept"] == "application/json"
    assert node(run, "pick")["outputs"] == {"area": "Lyon", "conditions": "Light rain", "temp_c": "14"}
    assert node(run, "say")["inputs"] == {"area": "Lyon", "conditions": "Light rain", "temp_c": "14"}
    assert 0 < node(run, "say")["outputs"]["completion_tokens"] <= 8
    assert run["outputs"]["temperature_c"] == "14" and isinstance(run["outputs"]["text"], str)


def test_a_request_to_an_address_outside_the_allow_list_fails_the_node(stack: Stack) -> None:
    graph = {"nodes": [{"id": "in", "type": "trigger.api"},
                       {"id": "http", "type": "http.request", "config": {"url": "{{ text }}", "retries": 0}},
                       {"id": "out", "type": "output"}],
             "edges": [{"source": "in", "source_port": "text", "target": "http", "target_port": "text"},
                       {"source": "http", "source_port": "text", "target": "out", "target_port": "text"}]}
    app_id = stack.publish(graph, name="fetch")
    run = stack.wait_run(stack.run(app_id, {"text": "http://[::ffff:169.254.169.254]/latest/meta-data/"})["id"])
    assert run["status"] == "failed" and "IPv4-mapped" in node(run, "http")["error"]


def test_a_credential_authenticates_the_request_and_never_reaches_the_trace(stack: Stack,
                                                                           server: LocalServer) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    stored = stack.client.post("/v1/credentials", json={"type": "bearer_token", "name": "weather",
                                                        "data": {"token": token},
                                                        "allowed_urls": [server.url]})
    assert stored.status_code == 201, stored.text
    graph = {"nodes": [{"id": "in", "type": "trigger.api"},
                       {"id": "http", "type": "http.request",
                        "config": {"url": server.url + "/json?q={{ text | urlencode }}",
                                   "auth": {"type": "bearer_token", "credential": "weather"}}},
                       {"id": "out", "type": "output"}],
             "edges": [{"source": "in", "source_port": "text", "target": "http", "target_port": "text"},
                       {"source": "http", "source_port": "json", "target": "out", "target_port": "text"}]}
    app_id = stack.publish(graph, name="authed")
    run = stack.wait_run(stack.run(app_id, {"text": "hello"})["id"])
    assert run["status"] == "succeeded", run
    assert server.seen("/json")[-1].headers["authorization"] == f"Bearer {token}"
    assert token not in json.dumps(run) and token not in json.dumps(stack.events(run["id"]))


def test_a_webhook_that_waits_answers_with_the_apps_output(stack: Stack) -> None:
    assert stack.client.post("/v1/credentials", json={"type": "webhook_secret", "name": "hooks",
                                                      "data": {"secret": SECRET}}).status_code == 201
    graph = {"nodes": [{"id": "hook", "type": "trigger.webhook",
                        "config": {"respond": "output", "wait_s": 20, "signature_credential": "hooks"}},
                       {"id": "greet", "type": "text.template", "config": {"template": "Hi {{ body.name }}"}},
                       {"id": "out", "type": "output"}],
             "edges": [{"source": "hook", "source_port": "body", "target": "greet", "target_port": "body"},
                       {"source": "greet", "source_port": "text", "target": "out", "target_port": "text"}]}
    app_id = stack.publish(graph, name="hooked")
    path = "/hooks/" + stack.client.post(f"/v1/apps/{app_id}/webhook").json()["url"].rsplit("/", 1)[1]
    body = json.dumps({"name": "Ada"}).encode()
    answer = stack.client.post(path, content=body, headers={"content-type": "application/json",
                                                            "X-Mantle-Signature": sign(SECRET, body)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded" and answer.json()["outputs"] == {"text": "Hi Ada"}
    assert stack.get_run(answer.json()["run_id"])["trigger"] == "webhook"


def test_the_scheduler_in_the_worker_fires_a_missed_tick_once(stack: Stack) -> None:
    say = {"id": "say", "type": "text.template", "config": {"template": "for {{ scheduled_at }}"}}
    graph = {"nodes": [{"id": "tick", "type": "trigger.schedule", "config": {"cron": "0 0 1 1 *"}}, say,
                       {"id": "out", "type": "output"}],
             "edges": [{"source": "tick", "source_port": "scheduled_at", "target": "say",
                        "target_port": "scheduled_at"},
                       {"source": "say", "source_port": "text", "target": "out", "target_port": "text"}]}
    app_id = uuid.UUID(stack.publish(graph, name="yearly"))
    sessions = session_factory(stack.database_url)

    def row() -> AppSchedule | None:
        with sessions() as session:
            return session.get(AppSchedule, app_id)

    wait_until(row, 30, "the scheduler to read the schedule")
    with session_scope(sessions) as session:  # as if the worker had been down over new year
        session.execute(update(AppSchedule).where(AppSchedule.app_id == app_id)
                        .values(next_at=utcnow() - timedelta(days=400)))
    fired = wait_until(lambda: (r := row()) is not None and r.last_run_id is not None and r, 30, "a tick")
    run = stack.wait_run(str(fired.last_run_id))
    assert run["status"] == "succeeded" and run["trigger"] == "schedule"
    assert run["outputs"]["text"].startswith("for ") and fired.next_at > utcnow()
    with sessions() as session:
        assert len(session.scalars(select(Run.id).where(Run.app_id == app_id)).all()) == 1


def test_the_seeded_examples_include_the_weather_lookup(stack: Stack, tmp_path: Path) -> None:
    from cli.seed import seed_local

    seeded = seed_local(session_factory(stack.database_url), tmp_path)
    assert any(name == "Weather-style lookup" and version == 1 for _, name, version in seeded.apps)
