"""A run accepted while the broker is unreachable is not lost: the database holds it and the
workers' reaper hands it to a worker once it has been quiet too long."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient

from api.main import create_app
from core.settings import Settings
from tests.engine.conftest import Stack
from tests.factories import greeter_graph

DEAD_BROKER = "redis://127.0.0.1:6399/0"  # nothing listens there


def cut_off_api(stack: Stack, data_dir: Path) -> TestClient:
    """The stack's API, as the same organization, but unable to reach the workers' broker.

    Production: a Redis URL nobody answers. Embedded: a broker folder no worker reads.
    """
    broker = DEAD_BROKER if stack.name == "production" else "filesystem://"
    # Every run handed to a worker (MANTLE_DIRECT_RUN_S=0): a pure app's would otherwise end here.
    settings = Settings(database_url=stack.database_url, broker_url=broker, data_dir=data_dir,
                        block_plugins=stack.settings.block_plugins, secret_key=stack.settings.secret_key,
                        direct_run_s=0)
    return TestClient(create_app(settings), headers={"Authorization": stack.client.headers["Authorization"]},
                      raise_server_exceptions=False)


def test_a_run_accepted_during_a_broker_outage_is_run_by_the_reaper(stack: Stack, tmp_path: Path) -> None:
    app_id = stack.publish(greeter_graph(), name="outage")
    api = cut_off_api(stack, tmp_path)

    response = api.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": "Ada"}})

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"  # read back from the database after the failed enqueue
    run = stack.wait_run(accepted["id"])
    assert run["status"] == "succeeded" and run["outputs"] == {"text": "Hello, Ada!"}
    # No message ever reached a worker: the reaper started it once it had been quiet too long.
    quiet = datetime.fromisoformat(run["started_at"]) - datetime.fromisoformat(run["created_at"])
    assert quiet.total_seconds() >= float(stack.env["MANTLE_STALE_AFTER_S"])
