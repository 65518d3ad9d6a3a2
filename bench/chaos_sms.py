"""Fault injection: the SMS example app answering texts while its run workers are SIGKILLed.

Phones text the example's number through the Twilio simulator at a steady pace, each phone
once; meanwhile a driver kills a random run worker every few seconds and starts it again.
Every text must get exactly one reply (inline TwiML or REST, never both, never none), every
run must end `succeeded`, and no node's completion may be recorded twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import select

from bench.chaos_checks import Counts, count_runs, wait_for
from bench.cluster import REPO, Cluster
from models.db import session_factory
from models.sms import SmsInbound

NUMBER = "+15550007777"
# The SMS example with a template in the model's place: what is tested here is delivery (one reply
# per text through kills), which needs no model and is quicker and more repeatable without one.
EXAMPLE = REPO / "bench" / "data" / "sms_template_app.json"


def publish_sms_example(cluster: Cluster, client: httpx.Client, number: str = NUMBER) -> tuple[str, str]:
    """The shipped SMS example, published and routed to `number`: (app id, webhook URL)."""
    example = json.loads(EXAMPLE.read_text())
    cluster.store_twilio(client)
    created = client.post("/v1/apps", json={"name": example["name"], "graph": example["draft"]})
    created.raise_for_status()
    app_id: str = created.json()["id"]
    client.post(f"/v1/apps/{app_id}/publish").raise_for_status()
    routed = client.post(f"/v1/apps/{app_id}/phone-numbers", json={"number": number})
    routed.raise_for_status()
    return app_id, str(routed.json()["webhook_url"])


class Killer:
    """Kills a random run worker and starts it again, `every` seconds after the last one is back,
    until stopped. (Without waiting for the new worker, kills on this 2-core machine came faster
    than workers could start, and no worker was up most of the time.)"""

    def __init__(self, cluster: Cluster, every: float, seed: int) -> None:
        self.cluster = cluster
        self.every = every
        self.rng = random.Random(seed)
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-killer", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            n = self.rng.randrange(len(self.cluster.workers))
            worker = self.cluster.workers[n]
            worker.kill()
            worker.start()
            self.kills += 1
            worker.wait_for_log(" ready.")

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        for worker in self.cluster.workers:  # every worker serves again before anything is counted
            worker.wait_for_log(" ready.")


async def text_phones(sim_url: str, webhook: str, phones: list[str], rate: float
                      ) -> dict[str, dict[str, Any]]:
    """Each phone texts the number once, `rate` texts a second; the simulator's account of each."""
    results: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=sim_url, timeout=60) as client:
        async def one(phone: str, body: str) -> None:
            answer = await client.post("/sim/inbound", json={"url": webhook, "from": phone, "to": NUMBER,
                                                             "body": body})
            results[phone] = answer.json() if answer.status_code == 200 else {"error": answer.text}

        tasks = []
        for i, phone in enumerate(phones):
            tasks.append(asyncio.create_task(one(phone, f"question {i} from {phone}")))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return results


def replies_by_phone(sim_url: str, phones: list[str]) -> Counter[str]:
    """How many replies (inline or REST) each phone received."""
    messages = httpx.get(f"{sim_url}/sim/messages", timeout=30).json()["messages"]
    wanted = set(phones)
    return Counter(m["to"] for m in messages if m["direction"] != "inbound" and m["to"] in wanted)


def replies_within(sim_url: str, phones: list[str], seconds: float) -> bool:
    """Whether every phone got a reply within `seconds`."""
    try:
        wait_for(lambda: sum(replies_by_phone(sim_url, phones).values()) >= len(phones), seconds,
                 "a reply to every text")
    except TimeoutError:
        return False
    return True


def worker_kills(cluster: Cluster, *, runs: int, rate: float, kill_every: float, seed: int = 7,
                 twilio_delay: float = 0.2, timeout: float = 120) -> Counts:
    """`runs` texts at `rate` per second while a worker is killed every `kill_every` s; the counts.

    Twilio's REST answers are held `twilio_delay` s, so kills also land while a reply is being sent."""
    started = time.monotonic()
    with cluster.client() as client:
        app_id, webhook = publish_sms_example(cluster, client)
    httpx.post(f"{cluster.sim_url}/sim/delay", params={"seconds": twilio_delay}).raise_for_status()
    tag = uuid.uuid4().int % 10_000
    phones = [f"+1555{tag:04d}{i:04d}" for i in range(runs)]
    with Killer(cluster, kill_every, seed) as killer:
        answers = asyncio.run(text_phones(cluster.sim_url, webhook, phones, rate))
        # Keep killing while the last runs drain, so the kills also land on finishing work.
        with session_factory(cluster.database_url)() as session:
            inbound = session.execute(select(SmsInbound.from_number, SmsInbound.run_id).where(
                SmsInbound.app_id == uuid.UUID(app_id))).all()
        run_of = {phone: run_id for phone, run_id in inbound if run_id is not None}
        # For half the time at most: on a slow machine a worker killed every `kill_every` s may
        # spend it all starting again, and the runs would make no progress while the kills go on.
        replied = replies_within(cluster.sim_url, phones, timeout / 2)
    if not replied:
        replies_within(cluster.sim_url, phones, timeout / 2)  # else counted as lost below
    httpx.post(f"{cluster.sim_url}/sim/delay", params={"seconds": 0}).raise_for_status()
    counts = count_runs("sms_worker_kills", cluster.database_url, run_of.values(), runs, timeout, started)
    replies = replies_by_phone(cluster.sim_url, phones)
    counts.duplicates += sum(n - 1 for n in replies.values() if n > 1)
    counts.lost = max(counts.lost, sum(1 for p in phones if replies[p] == 0))
    counts.details.update({
        "kills": killer.kills, "kill_every_s": kill_every, "texts_per_s": rate,
        "webhook_not_200": sum(1 for a in answers.values() if a.get("status_code") != 200),
        "texts_without_run": sum(1 for p in phones if p not in run_of),
        "replied_inline": sum(1 for a in answers.values() if a.get("replies")),
        "phones_with_extra_replies": sum(1 for n in replies.values() if n > 1),
    })
    return counts
