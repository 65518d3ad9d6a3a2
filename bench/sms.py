"""SMS benchmark on PostgreSQL and Redis, through the Twilio simulator.

50 phones text an SMS app (`twilio.sms_input → text.template → twilio.sms_output`) through
`mantle twilio-sim`, which posts each signed inbound webhook to Mantle and times its answer.
Prints one JSON line, `sms_webhook`:

* `ack_p50_ms`/`ack_p99_ms` (goal: p99 < 50 ms): the webhook's acknowledgement latency as the
  simulator measured it, over 20 s of 50 concurrent senders that each wait for the reply to a
  text before sending the next (people in a conversation); `reply_p50_ms`/`reply_p99_ms`: from
  sending a text to its reply reaching the phone;
* `flood_ack_*`: the same 50 senders for 10 s not waiting for replies (as fast as acknowledged);
* the baseline, measured the same way in the same process: the webhook of an unknown number
  (route lookup only, no signature, no run), flooded;
* `delivered_fraction` and `duplicates` (goal: 1.0 and 0): replies the phones received, one
  per text expected, after a drain of at most `--drain` s.

The reply window is 0 by default (every reply goes by REST, as with a slow model); with
`--window` the webhook waits for quick runs and answers inline. It starts its own API, worker
and simulator processes on a fresh database; nothing else needs to run but PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.engine import database, free_port, percentile, processes, wait_http  # noqa: E402
from migrations.run import upgrade  # noqa: E402
from models.db import session_factory, session_scope  # noqa: E402
from models.orgs import Role, create_key, create_org  # noqa: E402
from twilio_sim.store import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN  # noqa: E402

REDIS = os.environ.get("MANTLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
NUMBER = "+15550001111"
GRAPH = {
    "nodes": [{"id": "sms", "type": "twilio.sms_input", "config": {"history_messages": 0}},
              {"id": "say", "type": "text.template", "config": {"template": "echo {{ body }}"}},
              {"id": "reply", "type": "twilio.sms_output", "config": {}}],
    "edges": [{"source": "sms", "source_port": "body", "target": "say", "target_port": "body"},
              {"source": "say", "source_port": "text", "target": "reply", "target_port": "body"},
              {"source": "sms", "source_port": "from_number", "target": "reply", "target_port": "to"}],
}


def setup(base: str, key: str) -> str:
    """Credentials, the app, its number; returns the webhook URL."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        client.post("/v1/credentials", json={"type": "twilio", "data": {
            "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN}}).raise_for_status()
        app_id = client.post("/v1/apps", json={"name": "bench sms", "graph": GRAPH}).json()["id"]
        client.post(f"/v1/apps/{app_id}/publish").raise_for_status()
        route = client.post(f"/v1/apps/{app_id}/phone-numbers", json={"number": NUMBER})
        route.raise_for_status()
        url: str = route.json()["webhook_url"]
        return url


PHONE_PREFIX = {"warm": "01", "base": "02", "chat": "03", "flood": "04"}


@dataclass
class Load:
    """What one load phase measured."""

    acks: list[float] = field(default_factory=list)  # ms, as the simulator timed the webhook
    replies: list[float] = field(default_factory=list)  # ms from sending to the reply reaching the phone
    bodies: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # what went wrong, by kind


async def load(sim: str, url: str, senders: int, seconds: float, tag: str, converse: bool) -> Load:
    """`senders` phones texting for `seconds`; conversing phones wait for each reply before the next."""
    found = Load()
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=2 * senders, max_keepalive_connections=2 * senders)
    async with httpx.AsyncClient(base_url=sim, limits=limits, timeout=60) as client:
        async def sender(n: int) -> None:
            phone, i, received = f"+1555{PHONE_PREFIX[tag]}{n:05d}", 0, 0  # each phase texts from new phones
            while time.monotonic() < stop:
                body, started = f"{tag}-{n}-{i}", time.perf_counter()
                i += 1
                answer = await client.post("/sim/inbound", json={"url": url, "from": phone, "to": NUMBER,
                                                                  "body": body})
                result = answer.json() if answer.status_code == 200 else {}
                if result.get("status_code") != 200:
                    why = result.get("status_code") or result.get("error") or answer.text
                    found.failures[str(why)[:80]] += 1
                    continue
                found.acks.append(float(result["ack_ms"]))
                found.bodies.append(body)
                if not converse:
                    continue
                if not result["replies"]:  # the reply comes through the REST API
                    await client.get("/sim/wait", params={"to": phone, "count": received, "timeout": 30})
                received += 1
                found.replies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(sender(n) for n in range(senders)))
    return found


def drain(sim: str, bodies: list[str], timeout: float) -> tuple[float, int, float]:
    """Wait for a reply to every body: (fraction delivered, duplicate replies, seconds waited)."""
    expected = {f"echo {b}" for b in bodies}
    start = time.monotonic()
    with httpx.Client(base_url=sim, timeout=60) as client:
        while True:
            messages = client.get("/sim/messages").json()["messages"]
            replies = Counter(m["body"] for m in messages if m["direction"] != "inbound")
            delivered = sum(1 for body in expected if replies[body] >= 1)
            if delivered == len(expected) or time.monotonic() - start > timeout:
                duplicates = sum(n - 1 for body, n in replies.items() if body in expected and n > 1)
                return delivered / max(len(expected), 1), duplicates, time.monotonic() - start
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--window", type=float, default=0.0, help="MANTLE_TWILIO_REPLY_WINDOW_S")
    parser.add_argument("--flood-seconds", type=float, default=10,
                        help="Then senders that do not wait for replies, for this long.")
    parser.add_argument("--drain", type=float, default=120)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--run-workers", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise

    redis.Redis.from_url(REDIS).flushdb()
    with database() as db_url:
        upgrade(db_url)
        with session_scope(session_factory(db_url)) as session:
            org = create_org(session, name="bench")
            _, key = create_key(session, org_id=org.id, name="bench", role=Role.admin)
        port, sim_port = free_port(), free_port()
        base, sim = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sim_port}"
        data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"mantle-bench-{uuid.uuid4().hex[:6]}"
        env = {**os.environ, "MANTLE_DATABASE_URL": db_url, "MANTLE_BROKER_URL": REDIS,
               "MANTLE_DATA_DIR": str(data_dir), "MANTLE_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO),
               "MANTLE_PUBLIC_BASE_URL": base, "MANTLE_TWILIO_API_BASE_URL": sim,
               "MANTLE_TWILIO_REPLY_WINDOW_S": str(args.window)}
        cli = [sys.executable, "-m", "cli"]
        with processes((cli + ["api", "--port", str(port), "--workers", str(args.api_workers)], env),
                       (cli + ["worker", "--queues", "runs", "--concurrency", str(args.run_workers)], env),
                       (cli + ["twilio-sim", "--port", str(sim_port), "--status-delay", "0.05"], env)):
            wait_http(f"{base}/healthz")
            wait_http(f"{sim}/sim/callbacks")
            url = setup(base, key)
            unknown = url.rsplit("/", 1)[0] + "/+15559990000"
            asyncio.run(load(sim, url, args.senders, 2, "warm", converse=True))
            baseline = asyncio.run(load(sim, unknown, args.senders, 5, "base", converse=False)).acks
            chat = asyncio.run(load(sim, url, args.senders, args.seconds, "chat", converse=True))
            flood = asyncio.run(load(sim, url, args.senders, args.flood_seconds, "flood", converse=False))
            fraction, duplicates, waited = drain(sim, chat.bodies + flood.bodies, args.drain)

    def ms(values: list[float], q: float) -> float:
        return round(percentile(values, q), 2) if values else float("nan")

    print(json.dumps({
        "bench": "sms_webhook", "senders": args.senders, "seconds": args.seconds,
        "senders_wait_for_replies": True, "inbound": len(chat.bodies),
        "inbound_per_s": round(len(chat.bodies) / args.seconds, 1),
        "non_200": dict(chat.failures + flood.failures),
        "ack_p50_ms": ms(chat.acks, 0.5), "ack_p99_ms": ms(chat.acks, 0.99), "goal_ack_p99_ms": 50,
        "reply_p50_ms": ms(chat.replies, 0.5), "reply_p99_ms": ms(chat.replies, 0.99),
        "flood_seconds": args.flood_seconds,
        "flood_inbound_per_s": round(len(flood.bodies) / args.flood_seconds, 1),
        "flood_ack_p50_ms": ms(flood.acks, 0.5), "flood_ack_p99_ms": ms(flood.acks, 0.99),
        "baseline": "webhook of an unknown number (no signature, no run), flooded the same way",
        "baseline_p50_ms": ms(baseline, 0.5), "baseline_p99_ms": ms(baseline, 0.99),
        "delivered_fraction": round(fraction, 4), "duplicates": duplicates, "drain_s": round(waited, 1),
        "goal_delivered_fraction": 1.0, "reply_window_s": args.window, "database": "postgresql",
        "broker": "redis", "api_workers": args.api_workers, "run_workers": args.run_workers,
    }))

if __name__ == "__main__":
    main()
