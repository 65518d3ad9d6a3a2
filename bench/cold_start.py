"""Cold starts of `mantle up`: the first governed run and the first SMS webhook after it starts.

Starts a real `mantle up` (SQLite, the folder broker, its run and inference workers) on a fresh
data folder, waits until it says it is ready and both workers consume, then times what a first
user meets, beside the same request made again right after (the warm baseline, same process):

* `first_governed_run_s` (and `second_`): a run of an app whose policy screens PII and toxicity,
  from the POST to its end (`?wait=`), with how it ended, against `warm_governed_run_s`, the third;
* `first_sms_webhook_ms`: the seeded SMS assistant's webhook answering a text (as the Twilio
  simulator times it), against `warm_sms_webhook_ms`, the next text from another phone.

Each figure gets its own `mantle up`, so neither warms the other. `--repo` runs another
checkout's code with this environment (to measure a commit before a change). Prints one JSON
line. Run from the repository root: `.venv/bin/python bench/cold_start.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import free_port, serve  # noqa: E402
from tests.sms import ACCOUNT_SID, AUTH_TOKEN, NUMBER, store_twilio  # noqa: E402
from twilio_sim.app import create_sim  # noqa: E402
from twilio_sim.store import Store  # noqa: E402

GOVERNED = {"nodes": [
    {"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "text", "type": "string"}]}},
    {"id": "policy", "type": "governance.policy",
     "config": {"pii": {"action": "redact"}, "toxicity": {"action": "block", "threshold": 0.9}}},
    {"id": "out", "type": "output", "config": {"fields": [{"name": "text", "type": "string"}]}}],
    "edges": [{"source": "in", "source_port": "text", "target": "policy", "target_port": "text"},
              {"source": "policy", "source_port": "text", "target": "out", "target_port": "text"}]}


@contextlib.contextmanager
def mantle_up(repo: Path, twilio_url: str) -> Iterator[tuple[str, str, str]]:
    """`mantle up` from `repo` until the block ends: (its URL, its API key, its log)."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="mantle-cold-"))
    log = data / "up.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANTLE_")}
    env.update(PYTHONPATH=str(repo), MANTLE_DATA_DIR=str(data / "data"), MANTLE_LOG_FORMAT="json",
               MANTLE_MODELS_DIR=str(REPO / ".mantle" / "models"), MANTLE_TWILIO_API_BASE_URL=twilio_url)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "cli", "up", "--port", str(port)], cwd=repo,
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while not _ready(url, log):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mantle up did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        key = next(line.split()[-1] for line in log.read_text().splitlines() if line.startswith("API key:"))
        yield url, key, log.read_text()
    finally:
        # Older code left its workers running when stopped by a signal: end whatever is left.
        tree = psutil.Process(process.pid).children(recursive=True)
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        for leftover in tree:
            with contextlib.suppress(psutil.Error):
                leftover.kill()


def _ready(url: str, log: Path) -> bool:
    """The API answers /readyz and both workers logged that they consume (older code's /readyz
    does not wait for its workers)."""
    text = log.read_text(errors="replace")
    if "mantle-inference@" not in text or text.count(" ready.\"") < 2:
        return False
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    return False


def governed_runs(repo: Path, sim_url: str) -> list[tuple[float, str]]:
    """Seconds and outcome of the first three governed runs after start: a prefork pool has two
    processes, each of which may build the policy engine on its first run, and a cold engine can
    take the node past its time limit. The third is the warm baseline."""
    with mantle_up(repo, sim_url) as (url, key, _):
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
        app_id = api.post("/v1/apps", json={"name": "governed", "graph": GOVERNED}).json()["id"]
        assert api.post(f"/v1/apps/{app_id}/publish").status_code == 201
        runs = []
        for text in ("mail me at ada@example.com", "or call +1 415 555 0132", "or write to bob@example.org"):
            started = time.perf_counter()
            run = api.post(f"/v1/apps/{app_id}/runs", params={"wait": 30},
                           json={"inputs": {"text": text}}).json()
            failed = run["status"] != "succeeded"
            runs.append((time.perf_counter() - started,
                         f"{run['status']}: {run['error']['message']}" if failed else "succeeded"))
        return runs


def sms_webhooks(repo: Path, sim: str) -> tuple[float, float]:
    """Milliseconds the SMS assistant's webhook took to answer the first text after start, then the next."""
    with mantle_up(repo, sim) as (url, key, printed):
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        app_id = next(line.split()[-4] for line in printed.splitlines()
                      if line.strip().startswith("SMS assistant"))
        store_twilio(api)
        routed = api.post(f"/v1/apps/{app_id}/phone-numbers", json={"number": NUMBER})
        assert routed.status_code == 201, routed.text
        acks = []
        for phone in ("+15550100001", "+15550100002"):
            text = {"url": routed.json()["webhook_url"], "from": phone, "to": NUMBER, "body": "hello there"}
            answer = httpx.post(f"{sim}/sim/inbound", timeout=60, json=text).json()
            assert answer["status_code"] == 200, answer
            acks.append(float(answer["ack_ms"]))
        return acks[0], acks[1]


def main() -> None:
    """Measure both cold starts and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose code to run")
    args = parser.parse_args()
    with serve(create_sim(Store(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN))) as sim:
        runs = governed_runs(args.repo, sim.url)
        first_sms, warm_sms = sms_webhooks(args.repo, sim.url)
    figures: dict[str, Any] = {
        "bench": "cold_start", "repo": str(args.repo),
        "first_governed_run_s": round(runs[0][0], 3), "first_governed_run": runs[0][1],
        "second_governed_run_s": round(runs[1][0], 3), "second_governed_run": runs[1][1],
        "warm_governed_run_s": round(runs[2][0], 3), "warm_governed_run": runs[2][1],
        "first_sms_webhook_ms": round(first_sms, 1), "warm_sms_webhook_ms": round(warm_sms, 1)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
