"""Fault injection: the broker (Redis) or the database (PostgreSQL) restarts in the middle of runs.

* Redis keeps nothing on disk here, so a restart loses every queued message. Runs accepted
  before, during and after the outage must all end: the database holds them, and the reaper
  hands the ones whose messages were lost (or never sent) to a worker once the broker is back.
* PostgreSQL crashes (immediate shutdown) and comes back. While it is down the API answers
  503 with a clear message (never a 500); clients retry with the same `Idempotency-Key`, and in
  the end every key has exactly one run, every run ended, and no run is half-written.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.chaos_checks import Counts, count_runs
from bench.cluster import Cluster
from models.db import session_factory
from models.runs import NodeRun, Run

GREETER = {
    "nodes": [{"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "name"}]}},
              {"id": "greet", "type": "text.template", "config": {"template": "Hello, {{ name }}!"}},
              {"id": "out", "type": "output", "config": {}}],
    "edges": [{"source": "in", "source_port": "name", "target": "greet", "target_port": "name"},
              {"source": "greet", "source_port": "text", "target": "out", "target_port": "text"}],
}


def publish_greeter(client: httpx.Client) -> str:
    """A published trigger → template → output app; its id."""
    created = client.post("/v1/apps", json={"name": f"greeter {uuid.uuid4().hex[:6]}", "graph": GREETER})
    created.raise_for_status()
    app_id: str = created.json()["id"]
    client.post(f"/v1/apps/{app_id}/publish").raise_for_status()
    return app_id


def redis_restart(cluster: Cluster, restart_broker: Callable[[], None], stop_broker: Callable[[], None],
                  *, runs: int, timeout: float = 120) -> Counts:
    """A third of `runs` before the broker dies, a third while it is down, a third after it is back."""
    started = time.monotonic()
    ids: list[uuid.UUID] = []
    during: list[uuid.UUID] = []
    accept_ms: list[float] = []
    refused: Counter[int] = Counter()
    with cluster.client() as client:
        app_id = publish_greeter(client)

        def submit(n: int, into: list[uuid.UUID]) -> None:
            for i in range(n):
                begun = time.perf_counter()
                answer = client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": f"r{i}"}})
                if answer.status_code != 202:
                    refused[answer.status_code] += 1
                    continue
                into.append(uuid.UUID(answer.json()["id"]))
                if into is during:
                    accept_ms.append((time.perf_counter() - begun) * 1000)

        third = max(runs // 3, 1)
        submit(third, ids)
        stop_broker()
        submit(third, during)
        restart_broker()
        submit(runs - 2 * third, ids)
    counts = count_runs("redis_restart", cluster.database_url, [*ids, *during], runs, timeout, started)
    found = {k: v for k, v in counts.details["not_succeeded"].items() if uuid.UUID(k) in set(during)}
    counts.details.update({"created_while_down": len(during), "created_while_down_not_succeeded": len(found),
                           "refused": dict(refused),
                           "accept_ms_while_down_max": round(max(accept_ms, default=0.0), 1)})
    return counts


async def _submit_all(base_url: str, key: str, app_id: str, keys: list[str], spacing: float,
                      seen: Counter[str], messages: set[str], deadline: float) -> dict[str, str]:
    """Start one run per idempotency key, one every `spacing` s, retrying 503s; run id by key."""
    accepted: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30) as client:
        async def one(n: int, idempotency_key: str) -> None:
            await asyncio.sleep(n * spacing)
            while time.monotonic() < deadline:
                try:
                    answer = await client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": "x"}},
                                               headers={"Idempotency-Key": idempotency_key})
                except httpx.HTTPError as exc:
                    seen[type(exc).__name__] += 1
                    await asyncio.sleep(0.2)
                    continue
                seen[str(answer.status_code)] += 1
                if answer.status_code in (200, 202):
                    accepted[idempotency_key] = answer.json()["id"]
                    return
                messages.add(_message(answer))
                await asyncio.sleep(0.2)

        await asyncio.gather(*(one(n, k) for n, k in enumerate(keys)))
    return accepted


def _message(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["detail"][0]["msg"])
    except (ValueError, KeyError, IndexError, TypeError):
        return answer.text[:200]


def half_written(database_url: str, run_ids: list[uuid.UUID]) -> int:
    """Runs whose record contradicts itself: succeeded without outputs or with unfinished nodes."""
    with session_factory(database_url)() as session:
        done = select(Run.id).where(Run.id.in_(run_ids), Run.status == "succeeded")
        unfinished = session.scalar(select(func.count(func.distinct(NodeRun.run_id))).where(
            NodeRun.run_id.in_(done), NodeRun.status.not_in(("succeeded", "skipped"))))
        no_outputs = session.scalar(select(func.count()).select_from(Run).where(
            Run.id.in_(run_ids), Run.status == "succeeded", Run.outputs.is_(None)))
    return int(unfinished or 0) + int(no_outputs or 0)


def postgres_restart(cluster: Cluster, stop_database: Callable[[], None], start_database: Callable[[], None],
                     *, runs: int, down_s: float = 2.0, timeout: float = 120) -> Counts:
    """`runs` idempotent run requests; the database crashes half-way and is down for `down_s` s."""
    started = time.monotonic()
    with cluster.client() as client:
        app_id = publish_greeter(client)
    keys = [f"chaos-{uuid.uuid4().hex}" for _ in range(runs)]
    seen: Counter[str] = Counter()
    messages: set[str] = set()
    outage: dict[str, Any] = {}

    async def scenario() -> dict[str, str]:
        # Requests span three times the outage: a third before the crash, a third while the
        # database is down (each retried until it is back), a third after.
        submitting = asyncio.create_task(_submit_all(
            cluster.base_url, cluster.key, app_id, keys, 3 * down_s / runs, seen, messages,
            time.monotonic() + timeout))
        await asyncio.sleep(down_s)
        await asyncio.to_thread(stop_database)
        outage.update(await asyncio.to_thread(_probe_while_down, cluster, down_s))
        await asyncio.to_thread(start_database)
        return await submitting

    accepted = asyncio.run(scenario())
    run_ids = [uuid.UUID(v) for v in accepted.values()]
    counts = count_runs("postgres_restart", cluster.database_url, run_ids, runs, timeout, started)
    with session_factory(cluster.database_url)() as session:
        per_key = session.execute(select(Run.idempotency_key, func.count()).where(
            Run.idempotency_key.in_(keys)).group_by(Run.idempotency_key)).all()
    counts.duplicates += sum(n - 1 for _, n in per_key if n > 1)
    counts.lost = max(counts.lost, runs - len(accepted))
    counts.details.update({"answers": dict(seen), "refusal_messages": sorted(messages), **outage,
                           "half_written": half_written(cluster.database_url, run_ids)})
    return counts


def _probe_while_down(cluster: Cluster, down_s: float) -> dict[str, Any]:
    """What the API answers (a read, a write, health) while the database is down."""
    codes: Counter[str] = Counter()
    messages: set[str] = set()
    deadline = time.monotonic() + down_s
    with cluster.client(timeout=10) as client:
        while time.monotonic() < deadline:
            for method, path in (("GET", "/v1/apps"), ("POST", "/v1/apps"), ("GET", "/readyz")):
                answer = client.request(method, path, json={"name": "during the outage"})
                codes[f"{method} {path} {answer.status_code}"] += 1
                if answer.status_code >= 500:
                    messages.add(_message(answer))
            time.sleep(0.1)
    return {"while_down": dict(codes), "while_down_messages": sorted(messages)}
