"""A real stack for engine tests: a migrated database, a broker, Celery worker subprocesses
and the API in-process.

Two stacks: `embedded` (SQLite and the filesystem broker, always) and `production`
(PostgreSQL and Redis, where reachable locally and always in CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from fastapi.testclient import TestClient

from api.main import create_app
from core.settings import Settings
from migrations.run import upgrade
from models.db import session_factory, session_scope
from models.orgs import Role, create_key, create_org
from tests.conftest import (
    create_postgres_database,
    drop_postgres_database,
    redis_database,
    require_postgres,
    require_redis,
)
from tests.engine.blocks import ensure_counter_table
from worker.transport import RUNS_QUEUE, make_celery

REPO = Path(__file__).resolve().parents[2]
ENDED = ("succeeded", "failed", "blocked", "cancelled")
# One Redis database per test process, so two suites on one machine never take each other's tasks.
REDIS_URL = os.environ.get("MANTLE_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{redis_database(10)}")


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)


@dataclass
class Worker:
    """A Celery worker subprocess and what it has logged."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acks, nothing cleaned up."""
        # The whole process group: `--beat` runs the scheduler in a child process, which would
        # otherwise outlive its worker and keep running after the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown, then kill if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stack:
    """Everything an engine test needs."""

    name: str
    settings: Settings
    env: dict[str, str]
    client: TestClient
    org_id: uuid.UUID
    workers: list[Worker] = field(default_factory=list)
    _celery: Celery | None = field(default=None, init=False, repr=False)

    @property
    def database_url(self) -> str:
        return self.settings.resolved_database_url

    def start_worker(self, *, beat: bool = True, queues: str = "runs", pool: str = "solo",
                     timeout: float = 60) -> Worker:
        """Start a worker process and wait until it consumes."""
        # No policy-engine warm-up: seconds of CPU per worker start, and these tests time nothing.
        args = [sys.executable, "-m", "cli", "worker", "--queues", queues, "--pool", pool,
                "--no-warm-up"]
        if beat:
            args.append("--beat")
        process = subprocess.Popen(args, cwd=REPO, env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        worker = Worker(process)

        def read() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                worker.lines.append(line)
                if " ready." in line:
                    worker.ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not worker.ready.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                worker.stop()
                raise AssertionError("worker did not start:\n" + "".join(worker.lines[-40:]))
        self.workers.append(worker)
        return worker

    def publish(self, graph: dict[str, Any], name: str = "app") -> str:
        """Create and publish an app; returns its id."""
        created = self.client.post("/v1/apps", json={"name": name, "graph": graph})
        assert created.status_code == 201, created.text
        app_id: str = created.json()["id"]
        published = self.client.post(f"/v1/apps/{app_id}/publish")
        assert published.status_code == 201, published.text
        return app_id

    def run(self, app_id: str, inputs: dict[str, Any], **params: Any) -> dict[str, Any]:
        """Start a run; returns the response body (status code checked by the caller)."""
        response = self.client.post(f"/v1/apps/{app_id}/runs", json={"inputs": inputs}, params=params)
        assert response.status_code in (200, 202), response.text
        body: dict[str, Any] = response.json()
        return body

    def get_run(self, run_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_run(self, run_id: str, statuses: tuple[str, ...] = ENDED, timeout: float = 30) -> dict[str, Any]:
        """The run once its status is one of `statuses`."""
        try:
            found: dict[str, Any] = wait_until(
                lambda: (r := self.get_run(run_id)) and r["status"] in statuses and r,
                timeout, f"run {run_id} to reach {statuses}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nrun: {self.get_run(run_id)}\n{self.worker_logs()}") from None
        return found

    def worker_logs(self, lines: int = 30) -> str:
        """The last lines each worker logged (for failure messages)."""
        return "\n".join(f"--- worker {w.process.pid} (exit {w.process.poll()})\n" + "".join(w.lines[-lines:])
                         for w in self.workers)

    @property
    def celery(self) -> Celery:
        """A Celery app on the stack's broker, to send tasks as another process would."""
        if self._celery is None:
            self._celery = make_celery(self.settings)
        return self._celery

    def send(self, task: str, *args: Any) -> str:
        """Send a task to the run queue; returns its id (for `task_done`)."""
        task_id: str = self.celery.send_task(task, args=list(args), queue=RUNS_QUEUE).id
        return task_id

    def task_done(self, task_id: str, timeout: float = 20) -> str:
        """What the worker that finished the task logged (`Task ... succeeded in ...s: <result>`)."""
        def finished() -> str | None:
            return next((line for w in self.workers for line in list(w.lines)
                         if f"[{task_id}] succeeded in " in line or f"[{task_id}] raised " in line), None)

        try:
            line: str = wait_until(finished, timeout, f"task {task_id} to finish")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.worker_logs()}") from None
        with contextlib.suppress(ValueError, KeyError, TypeError):
            line = json.loads(line)["event"]  # MANTLE_LOG_FORMAT=json
        return line.strip()

    def events(self, run_id: str, last_event_id: int | None = None) -> list[dict[str, Any]]:
        """The run's Server-Sent Events (following it until it ends), parsed from `id:`/`event:`/`data:`."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        with self.client.stream("GET", f"/v1/runs/{run_id}/events", headers=headers) as stream:
            assert stream.status_code == 200, stream.read()
            assert stream.headers["content-type"].startswith("text/event-stream")
            text = "".join(stream.iter_text())
        events = []
        for block in text.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines()
                          if ": " in line and not line.startswith(":"))
            if "event" in fields:
                data: dict[str, Any] = json.loads(fields["data"])
                assert data["id"] == int(fields["id"]) and data["type"] == fields["event"], block
                events.append(data)
        return events

    def new_org_key(self, role: Role = Role.admin) -> str:
        """An API key of a new organization, which must see nothing of this stack's."""
        with session_scope(session_factory(self.database_url)) as session:
            org = create_org(session, name=f"other-{uuid.uuid4().hex[:8]}")
            _, key = create_key(session, org_id=org.id, name="other", role=role)
        return key


def _build_stack(name: str, tmp: Path, database_url: str, broker_url: str,
                 extra: dict[str, Any] | None = None) -> Stack:
    """A migrated database, an organization with an admin key, the API; `extra` settings reach the
    API and (as `MANTLE_*` variables) the workers."""
    upgrade(database_url)
    ensure_counter_table(database_url)
    overrides = {
        "MANTLE_DATABASE_URL": database_url, "MANTLE_BROKER_URL": broker_url,
        "MANTLE_DATA_DIR": str(tmp), "MANTLE_BLOCK_PLUGINS": json.dumps(["tests.engine.blocks"]),
        "MANTLE_HEARTBEAT_S": "0.3", "MANTLE_STALE_AFTER_S": "1.5", "MANTLE_REAPER_INTERVAL_S": "0.5",
        "MANTLE_REVIEW_SWEEP_INTERVAL_S": "0.5",
        "MANTLE_LOG_FORMAT": "json", "MANTLE_SECRET_KEY": "test-secret",
    }
    extra = extra or {}
    overrides.update({f"MANTLE_{k.upper()}": v if isinstance(v, str) else json.dumps(v)
                      for k, v in extra.items()})
    env = {**os.environ, **overrides, "PYTHONPATH": str(REPO)}
    # Numbers are routed unverified here: tests/integration/test_sms_numbers.py asks the simulator.
    settings = Settings(database_url=database_url, broker_url=broker_url, data_dir=tmp,
                        block_plugins=["tests.engine.blocks"], secret_key="test-secret",
                        **{"twilio_verify_numbers": False, **extra})
    with session_scope(session_factory(database_url)) as session:
        org = create_org(session, name=f"engine-{uuid.uuid4().hex[:8]}")
        _, key = create_key(session, org_id=org.id, name="engine", role=Role.admin)
        org_id = org.id
    client = TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"},
                        raise_server_exceptions=False)
    return Stack(name, settings, env, client, org_id)


@contextlib.contextmanager
def running_stack(kind: str, tmp: Path, extra: dict[str, Any] | None = None) -> Iterator[Stack]:
    """A stack of `kind` (`embedded` or `production`) with one run worker (running the reaper too)."""
    admin_url = None
    if kind == "embedded":
        database_url, broker_url = f"sqlite:///{tmp / 'mantle.db'}", "filesystem://"
    else:
        require_postgres()
        require_redis(REDIS_URL)
        from tests.conftest import POSTGRES_URL

        admin_url = POSTGRES_URL
        database_url, broker_url = create_postgres_database(admin_url), REDIS_URL
        redis.Redis.from_url(REDIS_URL).flushdb()
    built = _build_stack(kind, tmp, database_url, broker_url, extra)
    try:
        built.start_worker()
        yield built
    finally:
        for worker in built.workers:
            worker.stop()
        if admin_url is not None:
            drop_postgres_database(admin_url, database_url)


@pytest.fixture(scope="module", params=["embedded", "production"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A running stack with one worker (running the reaper too); more workers on demand."""
    with running_stack(request.param, tmp_path_factory.mktemp("stack")) as built:
        yield built
