"""Retention benchmark on PostgreSQL and Redis: does a big run history slow the run path, and how
fast does the pruner work it off while runs are being made?

1. Run creation through the API (`POST /v1/apps/{id}/runs?wait=30` on a 3-block app, a few
   clients in a closed loop): p50/p95 and runs/s on an empty database (the baseline), and on a
   second database holding about 1 million old runs of the same app, 5 node runs and 3 events
   each, inserted into the same tables (`INSERT ... SELECT generate_series`). The same processes
   serve each database in turn, alternating for `--rounds` rounds
   (which goes first swaps each round); medians and their ratio.
2. The organization keeps 30 days: the pruner (a separate process, as a run worker would) works
   while the same load runs; runs pruned per second, and the load's figures beside step 1's.
3. EXPLAIN of the hot path's queries (the run insert's look-ups, a run read, node runs by run,
   events, the reaper's queries) and of the pruner's (its selection, the count boundary, child
   runs, the foreign-key look-ups deleting a run makes, a pruned run's tombstone): whether each
   avoids a Seq Scan on runs, node_runs and run_events.

Prints one JSON line. It starts its own API and worker processes on two fresh databases; nothing
else needs to run but PostgreSQL and Redis. About 10 minutes on 2 cores, most of it the insert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import ClauseElement, select, text  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402
from sqlalchemy.orm import aliased  # noqa: E402

from bench.engine import REDIS, chain_graph, database, free_port, percentile, processes, publish, wait_http  # noqa: E402
from core.settings import Settings  # noqa: E402
from migrations.run import upgrade  # noqa: E402
from models.apps import AppVersion  # noqa: E402
from models.base import utcnow  # noqa: E402
from models.db import make_engine, session_factory, session_scope  # noqa: E402
from models.orgs import Role, create_key, create_org  # noqa: E402
from models.retention import (  # noqa: E402
    AppToPrune,
    Policy,
    PrunedRun,
    boundary_statement,
    selection,
    set_org_policy,
)
from models.runs import NodeRun, Run, RunEvent  # noqa: E402
from worker.retention import Pruner  # noqa: E402

BIG = {"runs", "node_runs", "run_events"}
LIVE = ("queued", "running", "waiting")
ENDED = ("succeeded", "failed", "blocked", "cancelled")
logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise


async def load(base: str, key: str, app_id: str, clients: int, seconds: float) -> dict[str, Any]:
    """A closed loop of `clients` creating runs and waiting for them: latency and runs/s."""
    samples: list[float] = []
    failed = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=60) as client:
        async def one_client(n: int, until: float, keep: bool) -> None:
            nonlocal failed
            i = 0
            while time.monotonic() < until:
                start = time.perf_counter()
                r = await client.post(f"/v1/apps/{app_id}/runs", params={"wait": 30},
                                      json={"inputs": {"text": f"{n}-{i}"}})
                i += 1
                if not keep:
                    continue
                if r.status_code == 200 and r.json()["status"] == "succeeded":
                    samples.append(time.perf_counter() - start)
                else:
                    failed += 1

        warm = time.monotonic() + 3
        await asyncio.gather(*(one_client(n, warm, False) for n in range(clients)))
        started = time.monotonic()
        await asyncio.gather(*(one_client(n, started + seconds, True) for n in range(clients)))
        elapsed = time.monotonic() - started
    return {"runs": len(samples), "failed": failed, "p50_ms": round(statistics.median(samples) * 1000, 2),
            "p95_ms": round(percentile(samples, 0.95) * 1000, 2),
            "runs_per_s": round(len(samples) / elapsed, 1)}


def fill(url: str, org_id: uuid.UUID, app_id: uuid.UUID, runs: int) -> dict[str, Any]:
    """`runs` old succeeded runs of the app (90 to 60 days ago), 5 node runs and 3 events each."""
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        version = conn.execute(select(AppVersion.id).where(AppVersion.app_id == app_id)).scalar_one()
        params = {"org": org_id, "app": app_id, "version": version, "n": runs,
                  "step": f"{30 * 86400 / runs} seconds"}
        conn.execute(text("""
            INSERT INTO runs (id, org_id, app_id, version_id, version_number, draft, trigger, kind, status,
                              inputs, outputs, created_at, started_at, finished_at, heartbeat_at)
            SELECT gen_random_uuid(), :org, :app, :version, 1, false, 'api', 'run', 'succeeded',
                   '{"text": "old"}'::jsonb, '{"text": "old."}'::jsonb, t, t, t + interval '40 ms',
                   t + interval '40 ms'
            FROM (SELECT now() - interval '90 days' + g * CAST(:step AS interval) AS t
                  FROM generate_series(1, :n) AS g) AS s"""), params)
        conn.execute(text("""
            INSERT INTO node_runs (id, run_id, node_id, block_type, status, inputs, outputs, attempts,
                                   continued, reused, started_at, finished_at)
            SELECT gen_random_uuid(), r.id, 'n' || k, 'text.template', 'succeeded', '{"text": "old"}'::jsonb,
                   '{"text": "old."}'::jsonb, 1, false, false, r.started_at, r.finished_at
            FROM runs AS r CROSS JOIN generate_series(1, 5) AS k
            WHERE r.app_id = :app AND r.created_at < now() - interval '50 days'"""), params)
        conn.execute(text("""
            INSERT INTO run_events (run_id, type, node_id, at, data)
            SELECT r.id, v.type, NULL, r.created_at, '{}'::jsonb
            FROM runs AS r CROSS JOIN (VALUES ('run_started'), ('node_finished'), ('run_finished')) AS v(type)
            WHERE r.app_id = :app AND r.created_at < now() - interval '50 days'"""), params)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in sorted(BIG)}
    engine.dispose()
    return {**counts, "seconds": round(time.perf_counter() - started, 1)}


def analyze(url: str) -> None:
    """VACUUM ANALYZE the database."""
    engine = make_engine(url)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()


def scans(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(node type, relation) of every node of an EXPLAIN (FORMAT JSON) plan."""
    found = [(plan["Node Type"], plan.get("Relation Name"))]
    for child in plan.get("Plans", []):
        found.extend(scans(child))
    return found


def explain(conn: Connection, statement: ClauseElement | None) -> dict[str, Any]:
    """Whether the statement's plan reads the big tables through indexes only (no Seq Scan)."""
    assert statement is not None
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    rows = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar_one()
    nodes = scans(rows[0]["Plan"])
    seq = sorted({rel for kind, rel in nodes if kind == "Seq Scan" and rel in BIG})
    # Small tables (app_versions, an empty pruned_runs) are read whole by choice: only the big ones count.
    return {"uses_index": not seq, "seq_scans": seq,
            "plan": sorted({f"{kind}:{rel}" if rel else kind for kind, rel in nodes})}


def explain_all(url: str, org_id: uuid.UUID, app_id: uuid.UUID) -> dict[str, Any]:
    """EXPLAIN of the hot path's and the pruner's queries on the filled tables."""
    now = utcnow()
    with make_engine(url).connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        some_run = conn.execute(select(Run.id, Run.created_at).where(Run.app_id == app_id).limit(1)).one()
        parent = aliased(Run)
        stale = now - timedelta(seconds=10)
        has_result = select(NodeRun.id).where(NodeRun.run_id == Run.id, NodeRun.status == "waiting").exists()
        app = AppToPrune(org_id, app_id, Policy(keep_days=30, keep_runs=1000), "organization")
        statements: dict[str, ClauseElement | None] = {
            "run_insert_idempotency_lookup": select(Run).where(Run.org_id == org_id,
                                                               Run.idempotency_key == "k"),
            "run_insert_version_lookup": select(AppVersion.id, AppVersion.number)
            .where(AppVersion.app_id == app_id).order_by(AppVersion.number.desc()).limit(1),
            "run_read": select(Run).where(Run.id == some_run.id, Run.org_id == org_id),
            "node_runs_by_run_id": select(NodeRun).where(NodeRun.run_id == some_run.id),
            "events_after": select(RunEvent).where(RunEvent.run_id == some_run.id, RunEvent.id > 0)
            .order_by(RunEvent.id).limit(500),
            "reaper_quiet": select(Run).where(
                (Run.status.in_(("queued", "running")) | ((Run.status == "waiting") & has_result)),
                Run.heartbeat_at < stale).with_for_update(skip_locked=True).limit(500),
            "reaper_due": select(Run.id).where(Run.status.in_(("running", "waiting")), Run.wake_at <= now)
            .limit(500),
            # As Composer.orphans asks it (worker/composition.py); `NOT IN` the ended statuses, as it
            # was, read every run.
            "reaper_orphans": select(Run.id).join(parent, parent.id == Run.parent_run_id)
            .where(Run.status.in_(LIVE), parent.status.in_(ENDED)).limit(500),
            "pruner_selection": selection(app, now=now, boundary=(now - timedelta(days=40), some_run.id),
                                          limit=200),
            "pruner_count_boundary": boundary_statement(app_id, 1000),
            "pruner_child_runs": select(Run.id, Run.status).where(Run.parent_run_id.in_([some_run.id])),
            "pruner_fk_retry_of": select(Run.id).where(Run.retry_of == some_run.id),
            "pruner_fk_rerun_of": select(Run.id).where(Run.rerun_of == some_run.id),
            "pruned_run_lookup": select(PrunedRun).where(PrunedRun.run_id == some_run.id,
                                                         PrunedRun.org_id == org_id),
        }
        return {name: explain(conn, stmt) for name, stmt in statements.items()}


def prune_for(url: str, seconds: float) -> None:
    """(Run as a separate process.) Prune until `seconds` passed; print runs pruned and the time."""
    settings = Settings(database_url=url, retention_sweep_s=seconds)
    pruner = Pruner(session_factory(url), settings)
    started = time.perf_counter()
    done = pruner.sweep()
    print(json.dumps({"runs": done.runs, "batches": done.batches, "seconds": time.perf_counter() - started}))


@dataclass
class Stack:
    """A database with an organization, its key and a published 3-block app."""

    url: str
    org_id: uuid.UUID
    key: str
    app_id: str = ""


def prepare(url: str) -> Stack:
    """Migrate the database and give it an organization with an admin key."""
    upgrade(url)
    with session_scope(session_factory(url)) as session:
        org = create_org(session, name="bench")
        _, key = create_key(session, org_id=org.id, name="bench", role=Role.admin)
        return Stack(url, org.id, key)


@contextmanager
def serving(stack: Stack, args: argparse.Namespace) -> Iterator[tuple[str, dict[str, str]]]:
    """The API and a run worker on the stack's database; yields the base URL and the environment."""
    redis.Redis.from_url(REDIS).flushdb()
    data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"mantle-bench-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "MANTLE_DATABASE_URL": stack.url, "MANTLE_BROKER_URL": REDIS,
           "MANTLE_DATA_DIR": str(data_dir), "MANTLE_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)}
    port = free_port()
    api = ([sys.executable, "-m", "cli", "api", "--port", str(port), "--workers",
            str(args.api_workers)], env)
    worker = ([sys.executable, "-m", "cli", "worker", "--queues", "runs", "--concurrency",
               str(args.run_workers), "--no-warm-up"], env)
    base = f"http://127.0.0.1:{port}"
    with processes(api, worker):
        wait_http(f"{base}/healthz")
        if not stack.app_id:
            auth = {"Authorization": f"Bearer {stack.key}"}
            with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
                stack.app_id = publish(client, chain_graph(3))
        yield base, env


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the rounds, and the rounds themselves."""
    keys = ("p50_ms", "p95_ms", "runs_per_s")
    return {**{k: round(statistics.median(r[k] for r in rounds), 2) for k in keys},
            "failed": sum(r["failed"] for r in rounds), "rounds": [{k: r[k] for k in keys} for r in rounds]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000_000, help="old runs to insert")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="empty and filled measured alternately")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--run-workers", type=int, default=2)
    parser.add_argument("--prune", nargs=2, metavar=("URL", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prune:
        prune_for(args.prune[0], float(args.prune[1]))
        return

    started_load = os.getloadavg()[0]
    # Two databases, the same processes started on each in turn, so a busy moment of the machine
    # falls on both sides instead of on one.
    with database() as empty_url, database() as full_url:
        empty, full = prepare(empty_url), prepare(full_url)
        for stack in (empty, full):
            with serving(stack, args):
                pass
        filled = fill(full.url, full.org_id, uuid.UUID(full.app_id), args.runs)
        analyze(empty.url)  # as fill() does: both start with statistics and a vacuumed table
        measured: dict[str, list[dict[str, Any]]] = {"empty": [], "filled": []}
        order = [("empty", empty), ("filled", full)]
        for i in range(args.rounds):
            for name, stack in order if i % 2 == 0 else order[::-1]:  # neither side always goes first
                with serving(stack, args) as (base, _env):
                    measured[name].append(asyncio.run(load(base, stack.key, stack.app_id, args.clients,
                                                           args.seconds)))
        with serving(full, args) as (base, env):
            with session_scope(session_factory(full.url)) as session:
                set_org_policy(session, org_id=full.org_id, policy=Policy(keep_days=30))
            pruner = subprocess.Popen([sys.executable, str(Path(__file__)), "--prune", full.url,
                                       str(args.seconds + 3)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                      text=True)
            pruning = asyncio.run(load(base, full.key, full.app_id, args.clients, args.seconds))
            out, _ = pruner.communicate(timeout=600)
            pruned = json.loads(out.strip().splitlines()[-1])
        # After pruning: the tables are still big, and the tombstones' table is no longer empty.
        plans = explain_all(full.url, full.org_id, uuid.UUID(full.app_id))

    before, after = medians(measured["empty"]), medians(measured["filled"])
    print(json.dumps({
        "bench": "retention", "database": "postgresql", "broker": "redis", "clients": args.clients,
        "blocks": 3, "api_workers": args.api_workers, "run_workers": args.run_workers,
        "baseline": "run creation on an empty database", "empty": before,
        "filled": {**after, "tables": filled},
        "ratio_p50": round(after["p50_ms"] / before["p50_ms"], 3),
        "ratio_p95": round(after["p95_ms"] / before["p95_ms"], 3),
        "ratio_runs_per_s": round(after["runs_per_s"] / before["runs_per_s"], 3),
        "while_pruning": {**pruning, "pruned_runs": pruned["runs"], "batches": pruned["batches"],
                          "prune_seconds": round(pruned["seconds"], 1),
                          "pruned_runs_per_s": round(pruned["runs"] / pruned["seconds"], 1)},
        "explain": plans,
        "all_indexed": all(found["uses_index"] for found in plans.values()),
        "load_average": {"start": started_load, "end": os.getloadavg()[0]},
    }))


if __name__ == "__main__":
    main()
