"""A run worker's step, alone: `RunEngine.advance` in this process on a fresh PostgreSQL database.

`bench/load.py` measures the workers inside the whole mix, where their CPU per request moves with
everything else on the machine. This script times only what a run worker does with a run it
takes from the queue, without Celery or the broker:

- `pure`: a queued run of `trigger.api → text.template → output`, the load mix's run: one step,
  every node run inside it;
- `claimed`: a queued run of `trigger.api → governance.policy → text.template → output` (a deny
  list only, no PII model): two steps, the second loading the node runs the first wrote and
  updating one of them, as a run with an impure block (an SMS reply, an HTTP call) does.

The runs are created first (queued, as the API leaves them), then advanced one after another.
Each figure: median wall time per run, and CPU per run of this process and of the PostgreSQL
server (its backends' CPU, read from /proc). Prints one JSON line.

    .venv/bin/python bench/ab.py OLD NEW bench/advance.py   # two revisions, alternating
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import structlog  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.chaos_outages import GREETER  # noqa: E402
from bench.engine import REDIS, database  # noqa: E402
from blocks.registry import load_registry  # noqa: E402
from core.settings import Settings  # noqa: E402
from migrations.run import upgrade  # noqa: E402
from models import apps as app_store  # noqa: E402
from models.db import session_factory, session_scope  # noqa: E402
from models.orgs import create_org  # noqa: E402
from models.runs import Run  # noqa: E402
from worker.engine import RunEngine  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PURE = GREETER  # the load mix's app (bench/load.py)
CLAIMED = {
    "nodes": [{"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "name"}]}},
              {"id": "policy", "type": "governance.policy",
               "config": {"pii": None, "toxicity": None, "injection": None,
                          "deny_list": {"keywords": ["forbidden"], "action": "block"}}},
              {"id": "greet", "type": "text.template", "config": {"template": "Hello, {{ name }}!"}},
              {"id": "out", "type": "output", "config": {}}],
    "edges": [{"source": "in", "source_port": "name", "target": "policy", "target_port": "text"},
              {"source": "policy", "source_port": "text", "target": "greet", "target_port": "name"},
              {"source": "greet", "source_port": "text", "target": "out", "target_port": "text"}],
}


class ServerCpu:
    """CPU seconds used so far by the PostgreSQL backends connected to this benchmark's database."""

    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions

    def seconds(self) -> float:
        with session_scope(self.sessions) as session:
            pids = session.scalars(text("SELECT pid FROM pg_stat_activity "
                                        "WHERE datname = current_database()"))
            total = 0.0
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:  # a server on another machine: not counted
                    continue
                total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
        return total


def queued(sessions: Any, org_id: uuid.UUID, app_id: uuid.UUID, version: Any, n: int) -> list[uuid.UUID]:
    """`n` queued runs of the app's version, as the API leaves them for a worker."""
    runs = [Run(org_id=org_id, app_id=app_id, version_id=version.id, version_number=version.number,
                trigger="api", status="queued", inputs={"name": f"n{i}"}) for i in range(n)]
    with session_scope(sessions) as session:
        session.add_all(runs)
    return [r.id for r in runs]


def measure(engine: RunEngine, server: ServerCpu, run_ids: list[uuid.UUID]) -> dict[str, float]:
    """Advance each run to its end; median wall ms, CPU ms per run here and in PostgreSQL."""
    walls = []
    cpu, db = time.process_time(), server.seconds()
    for run_id in run_ids:
        start = time.perf_counter()
        status = engine.advance(run_id)
        walls.append(time.perf_counter() - start)
        assert status is not None and status.value == "succeeded", status
    cpu, db = time.process_time() - cpu, server.seconds() - db
    n = len(run_ids)
    return {"p50_ms": round(statistics.median(walls) * 1000, 3), "cpu_ms": round(cpu / n * 1000, 3),
            "postgresql_cpu_ms": round(db / n * 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000, help="Runs per app (after 200 to warm up).")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    # Not the engine's line per finished run: a terminal's speed is not the engine's.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with database() as url:
        upgrade(url)
        settings = Settings(database_url=url, broker_url=REDIS)
        sessions = session_factory(url)
        with session_scope(sessions) as session:
            org = create_org(session, name="advance")
            versions = {}
            for name, graph in (("pure", PURE), ("claimed", CLAIMED)):
                app = app_store.create_app(session, org_id=org.id, name=name, description="", draft=graph)
                versions[name] = (app.id, app_store.publish(session, app=app, graph=graph, note="",
                                                            actor="bench"))
            org_id = org.id
        engine = RunEngine(sessions, load_registry(()), settings, enqueue=lambda _run, _at: None)
        server = ServerCpu(sessions)
        results: dict[str, Any] = {}
        for name, (app_id, version) in versions.items():
            measure(engine, server, queued(sessions, org_id, app_id, version, 200))
            results[name] = measure(engine, server, queued(sessions, org_id, app_id, version, args.runs))
        sessions.kw["bind"].dispose()
    print(json.dumps({"bench": "advance", "runs": args.runs, **results}))


if __name__ == "__main__":
    main()
