"""Fault injection at full scale: Mantle's promises under crashes and outages, as counts.

It starts a private PostgreSQL and a private Redis (never the machine's shared servers), then
the API, two run workers and the Twilio simulator as real processes, and plays four scenarios:

* `sms_worker_kills`: phones text the shipped SMS example while a random run worker is
  SIGKILLed and restarted every `--kill-every` seconds;
* `redis_restart`: the broker restarts empty in the middle of `--redis-runs` runs;
* `postgres_restart`: the database crashes and comes back in the middle of `--pg-runs` runs,
  whose clients retry 503s with the same `Idempotency-Key`;
* `review_races`: every review decision arrives twice at once while no worker runs.

Prints one JSON line: totals of `runs`, `succeeded`, `duplicates` and `lost` (goal:
succeeded == runs, duplicates == 0, lost == 0), and each scenario's counts and details.
tests/chaos runs the same scenarios at a smaller scale.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.chaos_checks import Counts  # noqa: E402
from bench.chaos_outages import postgres_restart, redis_restart  # noqa: E402
from bench.chaos_reviews import review_races  # noqa: E402
from bench.chaos_sms import worker_kills  # noqa: E402
from bench.cluster import running_cluster  # noqa: E402
from bench.services import PrivatePostgres, PrivateRedis, private_services  # noqa: E402

# A short reply window: quick runs still answer inline, while runs delayed by a dead worker
# answer through Twilio's REST API, so both ways of replying are exercised under the kills.
# The greeter's runs go through the queue these scenarios break: started without waiting, a pure
# app's run would otherwise end in the API (MANTLE_DIRECT_RUN_S), with no broker or worker involved.
CHAOS_ENV = {"MANTLE_TWILIO_REPLY_WINDOW_S": "0.1", "MANTLE_DIRECT_RUN_S": "0"}


def play(postgres: PrivatePostgres, redis_server: PrivateRedis, data_dir: Path, args: argparse.Namespace
         ) -> list[Counts]:
    """Every scenario on one deployment, one after another."""
    results = []
    with running_cluster(postgres.url, redis_server.url, data_dir, env_overrides=CHAOS_ENV) as cluster:
        if args.sms_runs:
            results.append(worker_kills(cluster, runs=args.sms_runs, rate=args.rate,
                                        kill_every=args.kill_every, timeout=args.timeout))
        if args.redis_runs:
            results.append(redis_restart(cluster, redis_server.start, redis_server.stop,
                                         runs=args.redis_runs, timeout=args.timeout))
        if args.pg_runs:
            results.append(postgres_restart(cluster, postgres.stop, postgres.start, runs=args.pg_runs,
                                            down_s=args.pg_down, timeout=args.timeout))
        if args.review_runs:
            results.append(review_races(cluster, runs=args.review_runs, timeout=args.timeout))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sms-runs", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2.0, help="Texts per second.")
    parser.add_argument("--kill-every", type=float, default=3.0, help="Seconds between worker kills.")
    parser.add_argument("--redis-runs", type=int, default=50)
    parser.add_argument("--pg-runs", type=int, default=50)
    parser.add_argument("--pg-down", type=float, default=3.0, help="Seconds the database stays down.")
    parser.add_argument("--review-runs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=180, help="Seconds each scenario may take to drain.")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    started = time.monotonic()
    with private_services() as (postgres, redis_server), \
            tempfile.TemporaryDirectory(prefix="mantle-chaos-") as folder:
        results = play(postgres, redis_server, Path(folder), args)
    print(json.dumps({
        "bench": "chaos",
        "runs": sum(c.runs for c in results), "succeeded": sum(c.succeeded for c in results),
        "duplicates": sum(c.duplicates for c in results), "lost": sum(c.lost for c in results),
        "goal": "succeeded == runs, duplicates == 0, lost == 0",
        "seconds": round(time.monotonic() - started, 1), "database": "postgresql (private)",
        "broker": "redis (private, nothing on disk)", "run_workers": 2,
        "scenarios": {c.scenario: c.as_dict() for c in results},
    }))


if __name__ == "__main__":
    main()
