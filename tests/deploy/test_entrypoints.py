"""Every command an image runs starts outside Docker, with compose's arguments, and says it is ready.

The `deployment` fixture started compose's `migrate`, `api`, `worker`, `beat` and
`inference-cpu` commands as processes and waited for each one's `/readyz`; here each compose
health check is run against its process. (tests/integration/test_entrypoints.py stops the broker
under them and checks that readiness names it.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.deploy.compose import image_services, local_command
from tests.deploy.conftest import STARTED, Deployment
from tests.topology import Topology

# Starting the deployment (and converting the default model once) takes minutes on 2 cores.
pytestmark = pytest.mark.timeout(900)


def test_migration_job_ran_to_completion(deployment: Deployment) -> None:
    migrate = deployment.topology.services["migrate"]
    assert migrate.command[:3] == ["mantle", "db", "upgrade"], migrate.command
    assert migrate.exit_code == 0
    assert "database is up to date" in migrate.tail()


@pytest.mark.parametrize("name", STARTED)
def test_service_is_ready_and_passes_its_compose_health_check(deployment: Deployment, name: str) -> None:
    service = deployment.topology.services[name]
    assert service.command[0] == "mantle" and service.alive, service.command
    ready = httpx.get(service.ready_url or "", timeout=10)
    assert ready.status_code == 200, ready.text
    expected = {"database", "broker"} | ({"model"} if "inference" in name else set())
    assert expected <= set(ready.json()), ready.json()
    assert service.wait_ready(path="/healthz") == {"status": "ok"}
    check = deployment.commands[name].healthcheck
    assert check is not None, f"compose gives {name} no health check"
    done = subprocess.run(check, env=service.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{name}'s health check failed: {done.stdout}{done.stderr}"


def test_every_image_service_is_covered() -> None:
    """Each service of Mantle's images runs one of the commands started here (or a one-shot job)."""
    started = {tuple(local_command(n, image_services()[n], 1).argv[:4]) for n in (*STARTED, "migrate")}
    for name, service in image_services().items():
        argv = tuple(local_command(name, service, 1).argv[:4])
        assert argv in started, f"{name} runs {argv}, which no test starts"


def test_migration_gives_up_clearly_when_the_database_never_answers(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {**Topology("", "", tmp_path).env,
           "MANTLE_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/mantle"}
    done = subprocess.run([sys.executable, "-m", "cli", "db", "upgrade", "--wait", "1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "the database did not answer within 1 s" in done.stderr, done.stderr
