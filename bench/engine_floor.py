"""Where a 10-block run's time goes, against the least the same record can cost, in one process.

`bench/engine.py` compares a 10-block run through the API (`?wait=`) with a raw Celery chain of 10
no-op tasks, which records nothing. This script splits the run's cost, in this process on a fresh
PostgreSQL database, into what the engine does and what any implementation writing the same
durable record would have to do:

- `mantle_write_path`: `Submitter.create` of a 10-block pure app with a waiting caller, in its own
  transaction, as the API runs it (the version this process knows, the nodes, then the version's
  check, the record and the COMMIT in one round trip), without HTTP;
- `same_record_psycopg`: the least the same record costs: the run row, its 10 node runs and its 22
  events exactly as Mantle wrote them (fresh ids), sent with bare psycopg as Mantle now sends them
  (the version's check and each table's rows as one JSON document, in one pipelined transaction,
  one round trip), no ORM, no engine, no nodes;
- `celery_chain`: the baseline of `bench/engine.py`, a Celery chain of 10 no-op tasks on Redis.

Each figure is the median wall time and the CPU time of this process per run (the Celery figure's
CPU is the client's only: its worker is another process). Prints one JSON line.
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

import orjson  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from bench.engine import REDIS, baseline_chain, chain_graph, database  # noqa: E402
from blocks.registry import load_registry  # noqa: E402
from core.settings import Settings  # noqa: E402
from migrations.run import upgrade  # noqa: E402
from models import apps as app_store  # noqa: E402
from models.base import Base  # noqa: E402
from models.db import session_factory, session_scope  # noqa: E402
from models.orgs import create_org  # noqa: E402
from worker.submit import Submitter  # noqa: E402

TABLES = ("runs", "node_runs", "run_events")


def timed(call: Any, runs: int) -> dict[str, float]:
    """Median wall ms and mean CPU ms of this process per call, after 100 warm-up calls."""
    for i in range(100):
        call(i)
    walls = []
    cpu = time.process_time()
    for i in range(runs):
        start = time.perf_counter()
        call(i)
        walls.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu
    return {"p50_ms": round(statistics.median(walls) * 1000, 3), "cpu_ms": round(cpu / runs * 1000, 3)}


def recorded_rows(dsn: str, run_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """The rows Mantle wrote for run `run_id`, by table (events without their serial id)."""
    with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as conn:
        rows = {"runs": conn.execute("SELECT * FROM runs WHERE id = %s", [run_id]).fetchall(),
                "node_runs": conn.execute("SELECT * FROM node_runs WHERE run_id = %s", [run_id]).fetchall(),
                "run_events": conn.execute("SELECT * FROM run_events WHERE run_id = %s ORDER BY id",
                                           [run_id]).fetchall()}
    for event in rows["run_events"]:
        del event["id"]
    return rows


def same_record(dsn: str, rows: dict[str, list[dict[str, Any]]], org_id: uuid.UUID, app_id: uuid.UUID) -> Any:
    """A call that writes `rows` again with fresh ids, with bare psycopg, in one round trip: the
    version's check, then each table's rows as one JSON document, in one pipelined transaction."""
    conn = psycopg.connect(dsn, autocommit=True)
    dialect = postgresql.dialect()
    statements = {}
    for table in TABLES:
        columns = [Base.metadata.tables[table].c[name] for name in rows[table][0]]
        types = ", ".join(f"{c.name} {c.type.compile(dialect=dialect)}" for c in columns)
        names = ", ".join(c.name for c in columns)
        statements[table] = (f"INSERT INTO {table} ({names}) SELECT {names} "
                             f"FROM json_to_recordset(%s::json) AS r({types})")
    number = rows["runs"][0]["version_number"]

    def call(_: int) -> None:
        run_id = uuid.uuid4()
        nodes = [{**row, "id": uuid.uuid4(), "run_id": run_id} for row in rows["node_runs"]]
        events = [{**row, "run_id": run_id} for row in rows["run_events"]]
        with conn.pipeline():  # autocommit: everything up to the Sync is one transaction
            conn.execute("SELECT mantle_check(EXISTS (SELECT 1 FROM apps WHERE id = %s AND org_id = %s "
                         "AND latest_version = %s), 'stale')", [app_id, org_id, number])
            for table, table_rows in (("runs", [{**rows["runs"][0], "id": run_id}]), ("node_runs", nodes),
                                      ("run_events", events)):
                conn.execute(statements[table], [orjson.dumps(table_rows).decode()])

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    with database() as url:
        upgrade(url)
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        sessions = session_factory(url)
        with session_scope(sessions) as session:
            org = create_org(session, name="floor")
            app = app_store.create_app(session, org_id=org.id, name="ten", description="",
                                       draft=chain_graph(10))
            app_store.publish(session, app=app, graph=chain_graph(10), note="", actor="bench")
            org_id, app_id = org.id, app.id
        submitter = Submitter(load_registry(()), Settings(database_url=url, broker_url=REDIS))

        def mantle(i: int) -> uuid.UUID:
            with session_scope(sessions) as session:
                run, _ = submitter.create(session, org_id=org_id, app_id=app_id, inputs={"text": str(i)},
                                          version=None, draft=False, idempotency_key=None, wait_s=30,
                                          commit=True)
                assert run.status == "succeeded", run.status
                return run.id

        rows = recorded_rows(dsn, mantle(0))
        floor = same_record(dsn, rows, org_id, app_id)
        results = {"mantle_write_path": timed(mantle, args.runs),
                   "same_record_psycopg": timed(floor, args.runs)}
        sessions.kw["bind"].dispose()
    celery = baseline_chain(args.runs // 4, {**os.environ, "PYTHONPATH": str(REPO)})
    results["celery_chain"] = {"p50_ms": round(statistics.median(celery) * 1000, 3)}
    write, floor_ms, celery_ms = (results["mantle_write_path"]["p50_ms"],
                                  results["same_record_psycopg"]["p50_ms"], results["celery_chain"]["p50_ms"])
    print(json.dumps({
        "bench": "engine_floor", "blocks": 10, "runs": args.runs,
        "rows": {table: len(rows[table]) for table in TABLES}, **results,
        "write_path_over_floor": round(write / floor_ms, 2),
        "floor_over_celery": round(floor_ms / celery_ms, 2),
    }))


if __name__ == "__main__":
    main()
