"""Load: the API under many concurrent clients, with real run workers on PostgreSQL and Redis.

`--clients` clients (default 100) for `--duration` seconds (default 60), each looping over a
mix: start a run, read a run, list apps, answer a signed Twilio SMS webhook; one client in ten
instead starts runs and follows each one's Server-Sent Events to its end. Everything runs as
real processes (the API under uvicorn, `--run-workers` run workers, the Twilio simulator) on a
private PostgreSQL and Redis.

Two phases, reported apart in one JSON line:
- paced (the headline figures): each client thinks between requests, `--rate` requests per
  second on average (default 1: 100 clients offer about 100 requests/s, like people clicking),
  with jitter, so latency is measured below saturation. The latency goal is checked here.
- `saturation`: the same clients with no think time (a closed loop): the throughput the
  deployment reaches at full load; its latencies are queueing time, not service time.
The line has requests per second, p50/p95/p99 latency per route, errors over both phases
(goal: 0), p99 of the routes that do not start or follow a run (goal: < 100 ms, paced), the
CPU each process used per request in each phase (`cpu_ms_per_request`: the API, run workers,
Twilio simulator, PostgreSQL, Redis and the load generator itself, which shares the machine),
and the resident memory of each process before and after the load, after a warm-up (bound: no
process grows by more than `RSS_BOUND_MIB`). The cluster runs with the deployment's own
heartbeat and reaper timings, not the chaos tests' fast ones.

tests/chaos runs it for a few seconds with a few clients and checks only that nothing failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from twilio.request_validator import RequestValidator  # noqa: E402

from bench.chaos_outages import publish_greeter  # noqa: E402
from bench.chaos_sms import publish_sms_example  # noqa: E402
from bench.cluster import Cluster, running_cluster  # noqa: E402
from bench.cpu_usage import CpuMeter, Selector, group, single, tree  # noqa: E402
from bench.services import private_services  # noqa: E402
from core.settings import Settings  # noqa: E402
from twilio_sim.store import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN  # noqa: E402

RSS_BOUND_MIB = 100
LOAD_NUMBER = "+15550008888"
RUN_ROUTES = {"POST /v1/apps/{app_id}/runs", "GET /v1/runs/{run_id}/events", "POST /twilio/sms/{target}"}
MIX = [("create_run", 3), ("read_run", 3), ("list_apps", 3), ("sms", 2)]


class Recorder:
    """Latencies by route, and every failure by kind."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()

    async def call(self, route: str, method: str, url: str, **options: Any) -> Any:
        """Send one request, timing it (to the end of its body) under `route`; the decoded JSON
        body of a 2xx answer, else None (a non-2xx answer or an exception is an error)."""
        started = time.perf_counter()
        try:
            async with self.session.request(method, url, **options) as answer:
                body = await answer.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.errors[f"{route}: {type(exc).__name__}"] += 1
            return None
        self.latency[route].append((time.perf_counter() - started) * 1000)
        if answer.status >= 400:
            self.errors[f"{route}: {answer.status}"] += 1
            return None
        return json.loads(body) if answer.content_type == "application/json" else body


class Workload:
    """The apps and ids the clients use."""

    def __init__(self, cluster: Cluster) -> None:
        with cluster.client() as client:
            self.app_id = publish_greeter(client)
            _, self.webhook = publish_sms_example(cluster, client, LOAD_NUMBER)
            first = client.post(f"/v1/apps/{self.app_id}/runs", json={"inputs": {"name": "first"}})
            first.raise_for_status()
        self.path = "/" + self.webhook.split("/", 3)[3]
        self.run_ids: list[str] = [first.json()["id"]]
        self.signer = RequestValidator(DEFAULT_AUTH_TOKEN)

    def sms_form(self, phone: str, body: str) -> tuple[dict[str, str], dict[str, str]]:
        """A signed inbound-SMS form, as Twilio posts it: (form, headers)."""
        sid = "SM" + uuid.uuid4().hex
        form = {"MessageSid": sid, "SmsSid": sid, "AccountSid": DEFAULT_ACCOUNT_SID, "From": phone,
                "To": LOAD_NUMBER, "Body": body, "NumMedia": "0", "NumSegments": "1",
                "ApiVersion": "2010-04-01"}
        return form, {"X-Twilio-Signature": self.signer.compute_signature(self.webhook, form)}


async def think(rng: random.Random, rate: float, stop: float, scale: float = 1.0) -> None:
    """A client's pause between requests: on average 1/`rate` s (±50 %), never past `stop`."""
    if rate > 0:
        await asyncio.sleep(max(0.0, min(stop - time.monotonic(), scale * rng.uniform(0.5, 1.5) / rate)))


async def client_loop(n: int, rec: Recorder, work: Workload, stop: float, rate: float = 0.0) -> None:
    """One client: a weighted mix of calls (or, for every tenth, runs followed over SSE) until `stop`;
    `rate` > 0 paces it to about that many requests per second, 0 is a closed loop."""
    rng = random.Random(n)
    follower = n % 10 == 9
    i = 0
    await think(rng, rate, stop, scale=rng.random())  # clients start spread out, not all at once
    while time.monotonic() < stop:
        if i:
            await think(rng, rate, stop)
            if time.monotonic() >= stop:  # a pause cut short by the end: no request (else every
                break  # client would send one at the same instant, a burst no real load has)
        i += 1
        kind = "follow" if follower else rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind in ("create_run", "follow"):
            run = await rec.call("POST /v1/apps/{app_id}/runs", "POST", f"/v1/apps/{work.app_id}/runs",
                                 json={"inputs": {"name": f"c{n}-{i}"}})
            if run is not None:
                work.run_ids.append(run["id"])
                if kind == "follow":
                    await rec.call("GET /v1/runs/{run_id}/events", "GET", f"/v1/runs/{run['id']}/events")
        elif kind == "read_run":
            await rec.call("GET /v1/runs/{run_id}", "GET", f"/v1/runs/{rng.choice(work.run_ids[-200:])}")
        elif kind == "list_apps":
            await rec.call("GET /v1/apps", "GET", "/v1/apps")
        else:
            form, headers = work.sms_form(f"+1555{n:03d}{i % 10_000:04d}", f"load {n}-{i}")
            await rec.call("POST /twilio/sms/{target}", "POST", work.path, data=form, headers=headers)


async def drive(cluster: Cluster, work: Workload, clients: int, seconds: float, rate: float = 0.0
                ) -> Recorder:
    """`clients` concurrent clients for `seconds`, each paced to `rate` requests/s (0: closed loop).

    aiohttp rather than httpx: the clients share the machine with what they measure, and aiohttp
    spends a fraction of httpx's CPU per request."""
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base_url=cluster.base_url, connector=connector,
                                     # 60 s without a byte is a failure; a long SSE stream is not
                                     timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
                                     headers={"Authorization": f"Bearer {cluster.key}"}) as session:
        rec = Recorder(session)
        stop = time.monotonic() + seconds
        await asyncio.gather(*(client_loop(n, rec, work, stop, rate) for n in range(clients)))
    return rec


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 2)


def summary(rec: Recorder, elapsed: float) -> dict[str, Any]:
    """Throughput, errors and latency per route of one phase."""
    routes = {route: {"count": len(v), "p50_ms": percentile(v, 0.5), "p95_ms": percentile(v, 0.95),
                      "p99_ms": percentile(v, 0.99)} for route, v in sorted(rec.latency.items())}
    other = [x for route, v in rec.latency.items() if route not in RUN_ROUTES for x in v]
    requests = sum(len(v) for v in rec.latency.values())
    return {"seconds": round(elapsed, 1), "requests": requests,
            "requests_per_s": round(requests / elapsed, 1), "errors": sum(rec.errors.values()),
            "error_kinds": dict(rec.errors), "routes": routes,
            "non_run_p99_ms": percentile(other, 0.99) if other else None}


def phase(cluster: Cluster, work: Workload, clients: int, seconds: float, rate: float,
          services: dict[str, Selector] | None = None) -> dict[str, Any]:
    """One timed phase of load, summarized, with the CPU seconds each process used (the
    cluster's, `services` and this process: the load generator shares the machine)."""
    meter = CpuMeter({**{p.name: group(p.process.pid) for p in cluster.processes() if p.process},
                      **(services or {}), "load generator": single(os.getpid())})
    started = time.monotonic()
    meter.start()
    rec = asyncio.run(drive(cluster, work, clients, seconds, rate))
    cpu = meter.stop()
    result = summary(rec, time.monotonic() - started)
    result["cpu_seconds"] = cpu
    per_request = 1000 / max(1, result["requests"])
    result["cpu_ms_per_request"] = {k: round(v * per_request, 2) for k, v in cpu.items()}
    return result


def measure(cluster: Cluster, clients: int, seconds: float, warmup: float = 3.0, rate: float = 1.0,
            saturation_seconds: float | None = None, services: dict[str, Selector] | None = None
            ) -> dict[str, Any]:
    """Warm up, load the cluster paced at `rate` (the headline), then in a closed loop (the
    saturation figure); the figures as one JSON-ready dict. Errors count both phases."""
    work = Workload(cluster)
    asyncio.run(drive(cluster, work, min(clients, 10), warmup))
    before = {p.name: p.rss_bytes() for p in cluster.processes()}
    paced = phase(cluster, work, clients, seconds, rate, services)
    closed_seconds = seconds if saturation_seconds is None else saturation_seconds
    saturation = phase(cluster, work, clients, closed_seconds, 0, services)
    after = {p.name: p.rss_bytes() for p in cluster.processes()}
    mib = 1024 * 1024
    growth = {name: round((after[name] - before[name]) / mib, 1) for name in before}
    return {
        "bench": "api_load", "clients": clients, "mode": "paced", "rate_per_client": rate, **paced,
        "errors": paced["errors"] + saturation["errors"],
        "error_kinds": dict(Counter(paced["error_kinds"]) + Counter(saturation["error_kinds"])),
        "goal_errors": 0, "goal_non_run_p99_ms": 100,
        "goal_met": paced["non_run_p99_ms"] is not None and paced["non_run_p99_ms"] < 100,
        "saturation": {"mode": "closed loop, no think time", **saturation},
        "rss_mib_before": {k: round(v / mib, 1) for k, v in before.items()},
        "rss_mib_after": {k: round(v / mib, 1) for k, v in after.items()},
        "rss_growth_mib": growth, "rss_bound_mib": RSS_BOUND_MIB,
        "rss_within_bound": all(g <= RSS_BOUND_MIB for g in growth.values()),
        "api_workers": cluster.api_workers, "run_workers": len(cluster.workers),
        "database": "postgresql", "broker": "redis",
    }


def production_timings() -> dict[str, str]:
    """The deployment's own heartbeat and reaper timings (a cluster's defaults are the chaos
    tests' fast ones, which would have the workers sweep for stale runs twice a second)."""
    fields = Settings.model_fields
    names = ("heartbeat_s", "stale_after_s", "reaper_interval_s", "review_sweep_interval_s")
    return {f"MANTLE_{name.upper()}": str(fields[name].default) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds of load (each phase).")
    parser.add_argument("--rate", type=float, default=1.0,
                        help="Requests per second per client in the paced phase (think time, with jitter).")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--run-workers", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the set-up's requests
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with private_services() as (postgres, redis_server), \
            tempfile.TemporaryDirectory(prefix="mantle-load-") as folder, \
            running_cluster(postgres.url, redis_server.url, Path(folder), api_workers=args.api_workers,
                            run_workers=args.run_workers, env_overrides=production_timings()) as cluster:
        services = {"postgresql": tree(postgres.pid), "redis": tree(redis_server.pid)}
        print(json.dumps(measure(cluster, args.clients, args.duration, rate=args.rate, services=services)))


if __name__ == "__main__":
    main()
