"""Mantle's production topology as separate processes on this machine, without Docker.

PostgreSQL and Redis (a fresh database and a Redis database of their own), then the processes
docker-compose.yml runs, started with the same `mantle` commands: the API (uvicorn workers),
run workers (one of them the scheduler, like compose's `beat`) and an inference worker. Every
service is "ready" only when its health endpoint says so (`/readyz` of the API, of each worker's
`--health-port`), exactly what the compose health checks ask.

Each process runs in its own process group and logs (JSON lines) to its own file per start, so
a test can kill one (SIGKILL, as a crash would), start it again in its slot, and explain a
failure from the logs afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from bench.cluster import Proc
from tests.conftest import (
    POSTGRES_URL,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    redis_database,
    require_postgres,
    require_redis,
)

REPO = Path(__file__).resolve().parents[1]
# What the image's `mantle` console script runs, with this interpreter.
MANTLE = [sys.executable, "-m", "cli"]
# Not the engine tests' Redis databases (10-15): suites on one machine never share a queue.
REDIS_URL = os.environ.get("MANTLE_TEST_TOPOLOGY_REDIS_URL", f"redis://127.0.0.1:6379/{redis_database(2)}")


@dataclass
class Service(Proc):
    """One process of the deployment, restartable in place (bench/cluster.py's `Proc`, plus URLs)."""

    ready_url: str | None = None
    metrics_url: str | None = None

    def wait_ready(self, timeout: float = 90, path: str = "/readyz") -> dict[str, Any]:
        """Poll the readiness URL (or another `path` beside it, e.g. /healthz) until it answers 200;
        returns its JSON body."""
        assert self.ready_url is not None, f"{self.name} has no readiness URL"
        url = self.ready_url.removesuffix("/readyz") + path
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            if not self.alive:
                raise AssertionError(f"{self.name} exited ({self.exit_code}) before it was ready:\n"
                                     f"{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(url, timeout=5)
                if answer.status_code == 200:
                    body: dict[str, Any] = answer.json()
                    return body
                last = f"{answer.status_code} {answer.text}"
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready after {timeout} s ({last}):\n{self.tail()}")
            time.sleep(0.1)

    def wait_exit(self, timeout: float = 90) -> int:
        """Wait for a one-shot process to finish; returns its exit code."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout} s:\n{self.tail()}") from None

    @property
    def exit_code(self) -> int | None:
        """The exit status, None while it runs."""
        return None if self.process is None else self.process.poll()

    def restart(self, *, kill: bool = True, timeout: float = 90) -> None:
        """Kill (or stop) the process, start it again and wait until it is ready."""
        self.kill() if kill else self.stop()
        self.start()
        if self.ready_url is not None:
            self.wait_ready(timeout)

    def tail(self, chars: int = 4000) -> str:
        """The end of the current start's log."""
        if not self.log_file.exists():
            return ""
        return self.log_file.read_text(errors="replace")[-chars:]

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON log line of every start (other lines are skipped)."""
        found = []
        for start in range(1, self.starts + 1):
            path = self.logs / f"{self.name}.{start}.log"
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict):
                        found.append(record)
        return found


@dataclass
class Topology:
    """The processes of one deployment on a given database and broker."""

    database_url: str
    broker_url: str
    data_dir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logs = self.data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        """What every process is configured with (the compose file's `environment:`)."""
        # This virtualenv's scripts first, as the image's PATH has its own (`mantle`, `celery`).
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return {**os.environ, "PATH": path, "PYTHONPATH": str(REPO), "MANTLE_ENV": "production",
                "MANTLE_SECRET_KEY": "topology-secret-key-0123456789", "MANTLE_LOG_FORMAT": "json",
                "MANTLE_DATABASE_URL": self.database_url, "MANTLE_BROKER_URL": self.broker_url,
                "MANTLE_DATA_DIR": str(self.data_dir), **self.env_overrides}

    def add(self, name: str, args: list[str], ready_path: str | None = "/readyz", port: int | None = None,
            env: dict[str, str] | None = None) -> Service:
        """Declare a service running `mantle ARGS` (its health port, if any, is `port`)."""
        return self.add_command(name, MANTLE + args, ready_path, port, env)

    def add_command(self, name: str, argv: list[str], ready_path: str | None = "/readyz",
                    port: int | None = None, env: dict[str, str] | None = None) -> Service:
        """Declare a service running `argv` as it is (a compose file's command, say)."""
        base = f"http://127.0.0.1:{port}" if port is not None else None
        service = Service(name, argv, {**self.env, **(env or {})}, self.logs,
                          ready_url=f"{base}{ready_path}" if base and ready_path else None,
                          metrics_url=f"{base}/metrics" if base else None)
        self.services[name] = service
        return service

    def add_api(self, name: str = "api", workers: int = 2) -> Service:
        """The API (`mantle api`) on a free port."""
        port = free_port()
        return self.add(name, ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                        port=port)

    def add_worker(self, name: str, queues: str, *, beat: bool = False,
                   env: dict[str, str] | None = None) -> Service:
        """A worker (`mantle worker --queues QUEUES`) with its health endpoint on a free port."""
        port = free_port()
        args = ["worker", "--queues", queues, "--health-port", str(port)] + (["--beat"] if beat else [])
        return self.add(name, args, port=port, env=env)

    def migrate(self, argv: list[str] | None = None, timeout: float = 120) -> None:
        """Run the one-shot migration (`mantle db upgrade --wait`, or `argv`) and check it succeeded."""
        job = self.add_command("migrate", argv or MANTLE + ["db", "upgrade", "--wait", "30"], ready_path=None)
        job.start()
        code = job.wait_exit(timeout)
        assert code == 0, f"migration failed ({code}):\n{job.tail()}"

    def start(self, timeout: float = 120) -> None:
        """Start every long-running service declared so far, then wait until each is ready."""
        pending = [s for s in self.services.values() if s.ready_url is not None and s.process is None]
        for service in pending:
            service.start()
        for service in pending:
            service.wait_ready(timeout)

    @property
    def api_url(self) -> str:
        """The API's base URL."""
        url = self.services["api"].ready_url
        assert url is not None
        return url.removesuffix("/readyz")

    def client(self, key: str, timeout: float = 60) -> httpx.Client:
        """An HTTP client of the API sending `key`."""
        return httpx.Client(base_url=self.api_url, timeout=timeout,
                            headers={"Authorization": f"Bearer {key}"})

    def metrics_text(self, name: str) -> str:
        """What a service's /metrics answers."""
        url = self.services[name].metrics_url
        assert url is not None, f"{name} serves no metrics"
        answer = httpx.get(url, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.text

    def metrics(self, name: str) -> dict[str, float]:
        """A service's metrics as `name{label="value",...}` to value (samples sorted by label)."""
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(self.metrics_text(name)):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                found[f"{sample.name}{{{labels}}}"] = sample.value
        return found

    def close(self) -> None:
        """Stop every process (warm shutdown first)."""
        for service in self.services.values():
            service.stop()


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(value for key, value in samples.items()
               if key.startswith(name + "{") and all(w in key for w in wanted))


@contextlib.contextmanager
def fresh_services() -> Iterator[tuple[str, str]]:
    """A new database on the test PostgreSQL server and an emptied Redis database: (database URL,
    broker URL); the database is dropped afterwards."""
    require_postgres()
    require_redis(REDIS_URL)
    url = create_postgres_database(POSTGRES_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    try:
        yield url, REDIS_URL
    finally:
        drop_postgres_database(POSTGRES_URL, url)


@contextlib.contextmanager
def running(topology: Topology, migrate: list[str] | None = None, timeout: float = 120) -> Iterator[Topology]:
    """Migrate (with `migrate`, if given), start every declared service, stop them all at the end."""
    try:
        topology.migrate(migrate)
        topology.start(timeout)
        yield topology
    finally:
        topology.close()
