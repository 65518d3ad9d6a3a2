"""One production-shaped deployment for the fault-injection tests, on servers they may break.

A private PostgreSQL and a private Redis (never the machine's shared ones: other suites use
those), the API under uvicorn, two run workers and the Twilio simulator, all real processes,
shared by the tests of this folder. Each test leaves every process running when it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bench.chaos import CHAOS_ENV
from bench.cluster import Cluster, running_cluster
from bench.services import PrivatePostgres, PrivateRedis, missing_binaries, private_services
from tests.conftest import IN_CI


@dataclass
class Chaos:
    """The deployment and the servers under it."""

    cluster: Cluster
    postgres: PrivatePostgres
    redis: PrivateRedis


@pytest.fixture(scope="session")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    """The running deployment; skipped locally (failed in CI) without PostgreSQL's and Redis's programs."""
    missing = missing_binaries()
    if missing:
        if IN_CI:
            pytest.fail(f"the fault-injection tests need these programs in CI: {', '.join(missing)}")
        pytest.skip(f"missing {', '.join(missing)}")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # No policy-engine warm-up: a worker killed by the chaos loop must be back (and killed again)
    # within the seconds the texts take. The SMS app's policy node loads the engine in each new
    # worker, and that load is not charged to the node's time limit (`Block.prepare`).
    with private_services() as (postgres, redis_server), \
            running_cluster(postgres.url, redis_server.url, tmp_path_factory.mktemp("chaos"),
                            env_overrides=CHAOS_ENV, warm_up=False) as cluster:
        yield Chaos(cluster, postgres, redis_server)
