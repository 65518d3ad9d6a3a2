"""Run-engine benchmark on PostgreSQL and Redis: latency of a 10-block chain and throughput.

Prints one JSON line per measurement:
1. `engine_latency`: a 10-block inline chain through the API (`?wait=`), p50/p95 over N runs,
   beside the baseline measured in the same process, in blocks alternating with the runs (ABBA,
   10 blocks each) while both are up: a raw Celery chain of 10 no-op tasks on the same broker
   (goal: ratio <= 1.0), each call a new chain (see `chain_runner` for what reusing one measured).
2. `engine_throughput`: runs per second completed for a 3-block app with 50 concurrent clients
   (goal: >= 220 runs/s on 2 cores), with the CPU each part of the system spent per run: the API,
   the run worker, PostgreSQL, Redis and the load generator (this process), which share the cores.

The clients are light on purpose, as they share the machine with what they measure: the latency
client is the standard library's `http.client` on one kept-alive connection, the throughput clients
are aiohttp's. httpx, used before, spent more CPU per request than the API answering it (4.7 ms
against 3.0 ms at 50 clients), and its ~1 ms per call counted in the latency beside a Celery client.

It starts its own API and worker processes on a fresh database; nothing else needs to run
but PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from celery import chain  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.cpu_usage import CpuMeter, group, named, single  # noqa: E402
from bench.noop_tasks import make_bench_celery  # noqa: E402
from migrations.run import upgrade  # noqa: E402
from models.db import session_factory, session_scope  # noqa: E402
from models.orgs import Role, create_key, create_org  # noqa: E402

PG_ADMIN = os.environ.get("MANTLE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("MANTLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@contextmanager
def database() -> Any:
    name = f"mantle_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def processes(*commands: tuple[list[str], dict[str, str]]) -> Any:
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for cmd, env in commands]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def chain_graph(blocks: int) -> dict[str, Any]:
    """trigger → (blocks - 2) templates → output."""
    nodes = [{"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "text"}]}}]
    edges = []
    previous, port = "in", "text"
    for i in range(blocks - 2):
        nodes.append({"id": f"t{i}", "type": "text.template", "config": {"template": "{{ text }}."}})
        edges.append({"source": previous, "source_port": port, "target": f"t{i}", "target_port": "text"})
        previous, port = f"t{i}", "text"
    nodes.append({"id": "out", "type": "output", "config": {}})
    edges.append({"source": previous, "source_port": port, "target": "out", "target_port": "text"})
    return {"nodes": nodes, "edges": edges}


def publish(client: httpx.Client, graph: dict[str, Any]) -> str:
    app_id: str = client.post("/v1/apps", json={"name": "bench", "graph": graph}).json()["id"]
    assert client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    return app_id


def celery_worker(env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command of the Celery worker that runs the baseline's no-op tasks."""
    return ([sys.executable, "-m", "celery", "-A", "bench.noop_tasks", "worker", "-Q", "bench",
             "--concurrency", "2", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"], env)


def chain_runner() -> Any:
    """A call running a raw Celery chain of 10 no-op tasks on the benchmark's broker (its worker
    must be up: `celery_worker`), once it answers.

    Each call builds a new chain. A chain signature applied again keeps the task ids it was given
    the first time, its last task's included, and `.get()` then finds that task's first result in
    the backend at once, without waiting for the new chain: this baseline did that until 12-05,
    and so read 2.5 to 3.5 ms (a publish and a lookup) while the chains it sent ran afterwards, a
    backlog of hundreds of tasks that loaded the machine during Mantle's next block. Each call
    now checks that its result is a new one."""
    app = make_bench_celery(REDIS)
    seen: set[str] = set()

    def run() -> None:
        result = chain(*[app.signature("bench.noop", queue="bench") for _ in range(10)]).apply_async()
        assert result.id not in seen, "a chain answered with an earlier chain's result"
        seen.add(result.id)
        result.get(timeout=10)

    deadline = time.monotonic() + 60
    while True:  # wait for the worker to answer
        try:
            run()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
    return run


def baseline_chain(runs: int, env: dict[str, str]) -> list[float]:
    """Seconds for a raw Celery chain of 10 no-op tasks, on the same broker."""
    with processes(celery_worker(env)):
        run = chain_runner()
        for _ in range(20):
            run()
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
    return samples


def mantle_runner(port: int, key: str, app_id: str) -> Any:
    """A call running the app once (`?wait=`) on one kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def run(text: str = "x") -> None:
        conn.request("POST", f"/v1/apps/{app_id}/runs?wait=30", json.dumps({"inputs": {"text": text}}),
                     headers)
        answer = conn.getresponse()
        body = answer.read()
        assert answer.status == 200 and json.loads(body)["status"] == "succeeded", body

    return run


def side_by_side(calls: dict[str, Any], runs: int, blocks: int = 10) -> dict[str, list[float]]:
    """Seconds per call of each of `calls`, `runs` each, in `blocks` alternating blocks (ABBA), so a
    machine that gets busier or quieter meanwhile weighs on both alike."""
    for call in calls.values():
        for _ in range(20):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for block in range(blocks):
        for name in names if block % 2 == 0 else reversed(names):
            for _ in range(max(runs // blocks, 1)):
                start = time.perf_counter()
                calls[name]()
                samples[name].append(time.perf_counter() - start)
    return samples


async def throughput(base: str, key: str, app_id: str, clients: int, seconds: float,
                     meter: CpuMeter) -> dict[str, Any]:
    done = failed = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base_url=base, connector=connector,
                                     headers={"Authorization": f"Bearer {key}"},
                                     timeout=aiohttp.ClientTimeout(total=60)) as client:
        async def one_client(n: int) -> None:
            nonlocal done, failed
            i = 0
            while time.monotonic() < stop:
                async with client.post(f"/v1/apps/{app_id}/runs", params={"wait": "30"},
                                       json={"inputs": {"text": f"{n}-{i}"}}) as r:
                    ok = r.status == 200 and (await r.json())["status"] == "succeeded"
                i += 1
                if ok:
                    done += 1
                else:
                    failed += 1

        stop = time.monotonic() + seconds
        meter.start()
        start = time.monotonic()
        await asyncio.gather(*(one_client(n) for n in range(clients)))
        elapsed = time.monotonic() - start
        cpu = meter.stop()
    per_run = {name: round(used * 1000 / max(done, 1), 2) for name, used in cpu.items()}
    return {"completed": done, "failed": failed, "seconds": round(elapsed, 2),
            "runs_per_s": round(done / elapsed, 1), "cpu_seconds": cpu, "cpu_ms_per_run": per_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--run-workers", type=int, default=2)
    args = parser.parse_args()

    redis.Redis.from_url(REDIS).flushdb()
    with database() as db_url:
        upgrade(db_url)
        with session_scope(session_factory(db_url)) as session:
            org = create_org(session, name="bench")
            _, key = create_key(session, org_id=org.id, name="bench", role=Role.admin)
        data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"mantle-bench-{uuid.uuid4().hex[:6]}"
        env = {**os.environ, "MANTLE_DATABASE_URL": db_url, "MANTLE_BROKER_URL": REDIS,
               "MANTLE_DATA_DIR": str(data_dir), "MANTLE_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)}
        port = free_port()
        api = ([sys.executable, "-m", "cli", "api", "--port", str(port), "--workers",
                str(args.api_workers)], env)
        worker = ([sys.executable, "-m", "cli", "worker", "--queues", "runs", "--concurrency",
                   str(args.run_workers)], env)
        base = f"http://127.0.0.1:{port}"
        with processes(api, worker) as (api_process, worker_process):
            wait_http(f"{base}/healthz")
            auth = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
                chain_app = publish(client, chain_graph(10))
                small_app = publish(client, chain_graph(3))
            # Mantle's run and the baseline's chain in alternating blocks, in the same minutes
            # (the baseline's worker stopped before the throughput is measured).
            with processes(celery_worker(env)):
                samples = side_by_side({"mantle": mantle_runner(port, key, chain_app),
                                        "celery": chain_runner()}, args.runs)
            latency, baseline = samples["mantle"], samples["celery"]
            meter = CpuMeter({"api": group(api_process.pid), "run worker": group(worker_process.pid),
                              "postgresql": named("postgres"), "redis": named("redis-server"),
                              "load generator": single(os.getpid())})
            result = asyncio.run(throughput(base, key, small_app, args.clients, args.seconds, meter))

    p50, p95 = statistics.median(latency) * 1000, percentile(latency, 0.95) * 1000
    b50, b95 = statistics.median(baseline) * 1000, percentile(baseline, 0.95) * 1000
    print(json.dumps({
        "bench": "engine_latency", "blocks": 10, "runs": args.runs, "database": "postgresql",
        "broker": "redis", "p50_ms": round(p50, 2), "p95_ms": round(p95, 2),
        "baseline": "celery chain of 10 no-op tasks, in blocks alternating with the runs",
        "baseline_p50_ms": round(b50, 2),
        "baseline_p95_ms": round(b95, 2), "ratio_p50": round(p50 / b50, 3), "goal_ratio": 1.0,
    }))
    print(json.dumps({
        "bench": "engine_throughput", "blocks": 3, "clients": args.clients, **result,
        "api_workers": args.api_workers, "run_workers": args.run_workers, "goal_runs_per_s": 220,
    }))


if __name__ == "__main__":
    main()
