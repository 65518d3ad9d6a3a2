"""CPU per request of the API's hot routes, in-process, against a bare route of the same size.

The API runs in this process (through Starlette's TestClient, lifespan included) on a private
PostgreSQL and Redis, with the settings a deployment uses. For each hot route of `bench/load.py`
it measures the process CPU time (every thread: the event loop and the threadpool that runs sync
routes) per request, and the same for a bare FastAPI route answering a constant JSON of the same
size through the same client, the two in alternating blocks. The ratio is comparable across
machines; the milliseconds are not.

PostgreSQL's own CPU is not counted: it runs in its own processes. The SMS webhook is measured
with no reply window (`MANTLE_TWILIO_REPLY_WINDOW_S=0`): the window is a wait, not work.
`sql_statements` is how many statements a request of the route sends: the fewest of three (one
that refreshes the API key cache sends more); the driver's BEGIN and COMMIT and the pool's
connection check are not counted.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi import Response as FastResponse
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from twilio.request_validator import RequestValidator  # noqa: E402

from api.main import create_app  # noqa: E402
from bench.chaos_outages import GREETER  # noqa: E402
from bench.chaos_sms import EXAMPLE  # noqa: E402
from bench.services import private_services  # noqa: E402
from core.logging import configure_logging  # noqa: E402
from core.settings import Settings  # noqa: E402
from migrations.run import upgrade  # noqa: E402
from models.db import session_factory, session_scope  # noqa: E402
from models.orgs import Role, create_key, create_org  # noqa: E402
from twilio_sim.store import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN  # noqa: E402

NUMBER = "+15550007777"


def cpu_ms_per_call(calls: dict[str, Callable[[int], Any]], n: int, blocks: int = 10) -> dict[str, float]:
    """Process CPU milliseconds per call of each of `calls`, `n` calls each (after a warm-up), in
    `blocks` alternating blocks (ABBA), so that the machine getting busier or quieter meanwhile
    weighs on a route and its bare twin alike: measured one after the other, the same code's
    ratio moved from 1.26 to 1.93 between two runs. Every answer must be 2xx."""
    for call in calls.values():
        for i in range(min(20, n)):
            call(-1 - i).raise_for_status()
    spent = dict.fromkeys(calls, 0.0)
    names, done = list(calls), 0
    for block in range(blocks):
        size = n // blocks + (1 if block < n % blocks else 0)
        for name in names if block % 2 == 0 else reversed(names):
            started = time.process_time()
            for i in range(done, done + size):
                answer = calls[name](i)
                if answer.status_code >= 400:
                    raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")
            spent[name] += time.process_time() - started
        done += size
    return {name: used * 1000 / n for name, used in spent.items()}


def statements_per_call(call: Callable[[int], Any], i: int, tries: int = 3) -> int:
    """The fewest SQL statements one call of `call` sent (any engine of this process), of `tries` calls."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    fewest = None
    event.listen(Engine, "before_cursor_execute", count)
    try:
        for k in range(tries):
            sent.clear()
            call(i + k).raise_for_status()
            fewest = len(sent) if fewest is None else min(fewest, len(sent))
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return fewest or 0


def bare_client(bodies: dict[str, bytes]) -> TestClient:
    """A bare FastAPI app: GET /{name} answers `bodies[name]`: parsed and re-serialized when JSON,
    as-is (TwiML) otherwise."""
    bare = FastAPI()
    for name, body in bodies.items():
        try:
            constant: Any = json.loads(body)
        except ValueError:
            constant = FastResponse(content=body, media_type="application/xml")
        bare.add_api_route(f"/{name}", lambda constant=constant: constant, methods=["GET"])
    return TestClient(bare)


def bare_get(bare: TestClient, path: str, _: int) -> Any:
    """GET `path` of the bare app."""
    return bare.get(path)


def setup(client: TestClient, settings: Settings) -> dict[str, Any]:
    """Publish a greeter and the SMS example routed to NUMBER; the ids the calls use."""
    greeter = client.post("/v1/apps", json={"name": "greeter", "graph": GREETER})
    greeter.raise_for_status()
    app_id = greeter.json()["id"]
    client.post(f"/v1/apps/{app_id}/publish").raise_for_status()
    client.post("/v1/credentials", json={"type": "twilio", "data": {
        "account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN}}).raise_for_status()
    example = json.loads(EXAMPLE.read_text())
    sms = client.post("/v1/apps", json={"name": example["name"], "graph": example["draft"]})
    sms.raise_for_status()
    client.post(f"/v1/apps/{sms.json()['id']}/publish").raise_for_status()
    routed = client.post(f"/v1/apps/{sms.json()['id']}/phone-numbers", json={"number": NUMBER})
    routed.raise_for_status()
    run = client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": "first"}})
    run.raise_for_status()
    return {"app_id": app_id, "run_id": run.json()["id"], "webhook": routed.json()["webhook_url"]}


def routes(client: TestClient, ids: dict[str, Any]) -> dict[str, Callable[[int], Any]]:
    """The hot routes of the load benchmark, as calls numbered by iteration."""
    signer = RequestValidator(DEFAULT_AUTH_TOKEN)
    path = "/" + ids["webhook"].split("/", 3)[3]

    def sms(i: int) -> Any:
        sid = "SM" + uuid.uuid4().hex
        form = {"MessageSid": sid, "SmsSid": sid, "AccountSid": DEFAULT_ACCOUNT_SID,
                "From": f"+1555{abs(i) % 10_000_000:07d}", "To": NUMBER, "Body": f"cpu {i}",
                "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01"}
        headers = {"X-Twilio-Signature": signer.compute_signature(ids["webhook"], form)}
        return client.post(path, data=form, headers=headers)

    return {
        "GET /v1/apps": lambda i: client.get("/v1/apps"),
        "GET /v1/runs/{run_id}": lambda i: client.get(f"/v1/runs/{ids['run_id']}"),
        "POST /v1/apps/{app_id}/runs": lambda i: client.post(
            f"/v1/apps/{ids['app_id']}/runs", json={"inputs": {"name": f"c{i}"}}),
        "POST /twilio/sms/{target}": sms,
    }


def measure(database_url: str, broker_url: str, data_dir: Path, n: int) -> dict[str, Any]:
    """CPU ms per request of each hot route and of its same-size bare twin."""
    upgrade(database_url)
    with session_scope(session_factory(database_url)) as session:
        org = create_org(session, name=f"cpu-{uuid.uuid4().hex[:8]}")
        _, key = create_key(session, org_id=org.id, name="bench", role=Role.admin)
    settings = Settings(database_url=database_url, broker_url=broker_url, data_dir=data_dir,
                        secret_key="bench-secret", public_base_url="http://testserver",
                        twilio_reply_window_s=0,
                        # No Twilio account answers here; routing a number is not what is measured.
                        twilio_verify_numbers=False)
    out: dict[str, Any] = {}
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as client:
        calls = routes(client, setup(client, settings))
        bodies = {f"r{k}": calls[name](-100 - k).content for k, name in enumerate(calls)}
        with bare_client(bodies) as bare:
            for k, (name, call) in enumerate(calls.items()):
                spent = cpu_ms_per_call({"route": call, "bare": partial(bare_get, bare, f"/r{k}")}, n)
                route_ms, bare_ms = spent["route"], spent["bare"]
                out[name] = {"cpu_ms": round(route_ms, 3), "bare_cpu_ms": round(bare_ms, 3),
                             "ratio": round(route_ms / bare_ms, 2), "response_bytes": len(bodies[f"r{k}"]),
                             "sql_statements": statements_per_call(call, n)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="Measured requests per route.")
    args = parser.parse_args()
    # As `mantle api` logs in production: JSON lines, INFO (to stderr, not the JSON line on stdout).
    configure_logging("INFO", "json")
    for name in ("httpx", "httpx2", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with private_services() as (postgres, redis_server), \
            tempfile.TemporaryDirectory(prefix="mantle-cpu-") as folder:
        figures = measure(postgres.url, redis_server.url, Path(folder), args.requests)
    print(json.dumps({"bench": "api_cpu", "requests_per_route": args.requests, "database": "postgresql",
                      "routes": figures}))


if __name__ == "__main__":
    main()
