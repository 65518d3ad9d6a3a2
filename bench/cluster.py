"""Mantle as it runs in production, as real processes: the API (uvicorn), run workers and the
Twilio simulator, on a given PostgreSQL database and Redis broker.

Each process runs in its own process group, so killing one (SIGKILL, as a crash would) takes its
children with it; a worker can be started again in its slot. Logs go to files in the data folder
(one per start), so a failure can be explained after the fact.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.services import free_port
from migrations.run import upgrade
from models.db import session_factory, session_scope
from models.orgs import Role, create_key, create_org
from twilio_sim.store import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_NUMBERS

# Numbers routed by bench/chaos_sms.py, bench/api_cpu.py, bench/load.py and bench/sms.py.
SIM_NUMBERS = (*DEFAULT_NUMBERS, "+15550007777", "+15550008888")

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cli"]


@dataclass
class Proc:
    """One service process, restartable in place."""

    name: str
    command: list[str]
    env: dict[str, str]
    logs: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    health_url: str | None = None  # a worker's /healthz, /readyz and /metrics (`--health-port`)

    @property
    def log_file(self) -> Path:
        """The log of the current (latest) start."""
        return self.logs / f"{self.name}.{self.starts}.log"

    def start(self) -> None:
        """Start the process (in its own group); does not wait for it to be ready."""
        self.starts += 1
        with self.log_file.open("wb") as out:
            self.process = subprocess.Popen(self.command, cwd=REPO, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children: no clean-up, no acknowledgements."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL if it lingers."""
        if not self.alive:
            return
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_for_log(self, needle: str, timeout: float = 90) -> None:
        """Wait until the current start's log contains `needle`."""
        deadline = time.monotonic() + timeout
        while needle not in self.log_file.read_text(errors="replace"):
            if not self.alive or time.monotonic() > deadline:
                tail = self.log_file.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} did not log {needle!r}:\n{tail}")
            time.sleep(0.05)

    def rss_bytes(self) -> int:
        """Resident memory of the process and all its children (0 when not running)."""
        if not self.alive:
            return 0
        assert self.process is not None
        total = 0
        for pid in _group_pids(self.process.pid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total


def _group_pids(pgid: int) -> list[int]:
    """Every process in process group `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # Field 5 of /proc/PID/stat is the process group; the name (field 2) may hold spaces.
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    found.append(int(entry.name))
    return found


def wait_http(url: str, timeout: float = 90) -> None:
    """Wait until `url` answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up within {timeout} s")
        time.sleep(0.05)


@dataclass
class Cluster:
    """The processes of one Mantle deployment and an admin key of one organization."""

    database_url: str
    broker_url: str
    data_dir: Path
    run_workers: int = 2
    api_workers: int = 1
    worker_concurrency: int = 1
    inference_workers: int = 0  # each serves the `inference` queue (the default model, pinned)
    health_ports: bool = False  # each worker serves /readyz and /metrics on a port of its own
    warm_up: bool = True  # run workers build the policy engine before they consume (as deployed)
    env_overrides: dict[str, str] = field(default_factory=dict)
    key: str = ""
    org_id: uuid.UUID | None = None
    api: Proc | None = None
    sim: Proc | None = None
    workers: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api_port, self.sim_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        """What every process of the deployment is configured with."""
        return {**os.environ, "PYTHONPATH": str(REPO), "MANTLE_DATABASE_URL": self.database_url,
                "MANTLE_BROKER_URL": self.broker_url, "MANTLE_DATA_DIR": str(self.data_dir),
                "MANTLE_SECRET_KEY": "cluster-secret", "MANTLE_LOG_FORMAT": "json",
                "MANTLE_PUBLIC_BASE_URL": self.base_url, "MANTLE_TWILIO_API_BASE_URL": self.sim_url,
                # A crashed worker's runs are noticed within seconds, not the production default.
                "MANTLE_HEARTBEAT_S": "0.3", "MANTLE_STALE_AFTER_S": "2", "MANTLE_REAPER_INTERVAL_S": "0.5",
                "MANTLE_REVIEW_SWEEP_INTERVAL_S": "1", **self.env_overrides}

    def start(self) -> None:
        """Migrate, create the organization, start every process and wait until each is ready."""
        upgrade(self.database_url)
        with session_scope(session_factory(self.database_url)) as session:
            org = create_org(session, name=f"cluster-{uuid.uuid4().hex[:8]}")
            _, self.key = create_key(session, org_id=org.id, name="cluster admin", role=Role.admin)
            self.org_id = org.id
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        env = self.env
        # The simulated account owns the numbers the benchmarks route (routing asks Twilio).
        owned = [arg for number in SIM_NUMBERS for arg in ("--number", number)]
        self.sim = Proc("twilio-sim", CLI + ["twilio-sim", "--port", str(self.sim_port),
                                             "--status-delay", "0.02", *owned], env, logs)
        self.api = Proc("api", CLI + ["api", "--port", str(self.api_port),
                                      "--workers", str(self.api_workers)], env, logs)
        for n in range(self.run_workers):
            command = CLI + ["worker", "--queues", "runs", "--concurrency", str(self.worker_concurrency)]
            if n == 0:
                command.append("--beat")  # one scheduler (the reaper) for the deployment
            if not self.warm_up:
                command.append("--no-warm-up")
            self.workers.append(self._worker(f"worker{n}", command, env, logs))
        for n in range(self.inference_workers):
            self.workers.append(self._worker(f"inference{n}", CLI + ["worker", "--queues", "inference"],
                                             env, logs))
        for proc in (self.sim, self.api, *self.workers):
            proc.start()
        wait_http(f"{self.sim_url}/sim/callbacks")
        wait_http(f"{self.base_url}/healthz")
        for worker in self.workers:
            worker.wait_for_log(" ready.")

    def _worker(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> Proc:
        """A worker process, with a health port when the cluster asks for them."""
        if not self.health_ports:
            return Proc(name, command, env, logs)
        port = free_port()
        return Proc(name, [*command, "--health-port", str(port)], env, logs,
                    health_url=f"http://127.0.0.1:{port}")

    def restart_worker(self, n: int, *, kill: bool = True) -> None:
        """Kill (or stop) worker `n` and start it again; waits until it consumes."""
        worker = self.workers[n]
        worker.kill() if kill else worker.stop()
        worker.start()
        worker.wait_for_log(" ready.")

    def client(self, key: str | None = None, timeout: float = 30) -> httpx.Client:
        """An HTTP client of the API sending the organization's admin key (or `key`)."""
        return httpx.Client(base_url=self.base_url, timeout=timeout,
                            headers={"Authorization": f"Bearer {key or self.key}"})

    def processes(self) -> list[Proc]:
        """Every process of the deployment."""
        return [p for p in (self.api, self.sim, *self.workers) if p is not None]

    def close(self) -> None:
        """Stop every process."""
        for proc in self.processes():
            proc.stop()

    def store_twilio(self, client: httpx.Client) -> None:
        """Give the organization the simulator's Twilio account (once: a second time is a 409)."""
        answer = client.post("/v1/credentials", json={"type": "twilio", "data": {
            "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN}})
        if answer.status_code != 409:
            answer.raise_for_status()


@contextlib.contextmanager
def running_cluster(database_url: str, broker_url: str, data_dir: Path, **options: object
                    ) -> Iterator[Cluster]:
    """A started cluster, stopped when the block ends."""
    cluster = Cluster(database_url, broker_url, data_dir, **options)  # type: ignore[arg-type]
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
