"""Sending an SMS through the official `twilio` SDK: its default HTTP client against Mantle's.

Starts the Twilio simulator (`mantle twilio-sim`) on a free port and creates `--messages`
messages one at a time through `Client.messages.create`, alternating in blocks (ABBA) between
the SDK's own `TwilioHttpClient` (the baseline, on `requests`) and `core.twilio_http
.PooledHttpClient` (urllib3's pool), each keeping its connection alive. Prints one JSON line:
CPU and wall milliseconds per message of this process for each, and their ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from twilio.http.http_client import TwilioHttpClient  # noqa: E402
from twilio.rest import Client  # noqa: E402

from bench.engine import free_port, wait_http  # noqa: E402
from core.twilio_http import PooledHttpClient  # noqa: E402
from twilio_sim.store import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_NUMBERS  # noqa: E402

TO = "+15551230000"


def send(client: Client, count: int) -> tuple[float, float]:
    """CPU and wall seconds to create `count` messages."""
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(count):
        client.messages.create(to=TO, from_=DEFAULT_NUMBERS[0], body=f"message {n} & more",
                               status_callback="http://127.0.0.1:9/status")
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="Per client, over all blocks.")
    parser.add_argument("--blocks", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    # Status callbacks far off: the simulator's own work stays out of the way.
    sim = subprocess.Popen([sys.executable, "-m", "cli", "twilio-sim", "--port", str(port),
                            "--status-delay", "3600"], cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/sim/callbacks")
        clients = {"requests": TwilioHttpClient(timeout=10), "pooled": PooledHttpClient(timeout=10)}
        sdk = {}
        for name, http in clients.items():
            sdk[name] = Client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, http_client=http)
            sdk[name].api.base_url = f"http://127.0.0.1:{port}"
            send(sdk[name], 50)  # warm: connection, imports
        totals = {name: [0.0, 0.0] for name in clients}
        per_block = max(1, args.messages // args.blocks)
        for block in range(args.blocks):
            order = ["requests", "pooled"] if block % 4 in (0, 3) else ["pooled", "requests"]
            for name in order:
                cpu, wall = send(sdk[name], per_block)
                totals[name][0] += cpu
                totals[name][1] += wall
        sent = per_block * args.blocks
        result: dict[str, object] = {"bench": "twilio_send", "messages": sent}
        for name, (cpu, wall) in totals.items():
            result[f"{name}_cpu_ms"] = round(cpu / sent * 1000, 3)
            result[f"{name}_wall_ms"] = round(wall / sent * 1000, 3)
        result["cpu_ratio"] = round(totals["pooled"][0] / totals["requests"][0], 3)
        result["wall_ratio"] = round(totals["pooled"][1] / totals["requests"][1], 3)
        print(json.dumps(result))
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    main()
