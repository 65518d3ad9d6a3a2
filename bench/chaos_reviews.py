"""Fault injection: review decisions that arrive twice, at the same instant, while no worker runs.

Runs of the shipped "Review before reply" example wait for a reviewer; every run worker is
killed; each item then gets the same decision twice, concurrently (a double-clicked button, a
client retrying). Exactly one of the two may win (200, the other 409), the runs must stay
waiting while nobody can resume them, and once the workers are back each run must resume
exactly once and end with the winning text.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.chaos_checks import Counts, count_runs, statuses, wait_for
from bench.cluster import REPO, Cluster
from models.audit import AuditEntry
from models.db import session_factory

EXAMPLE = REPO / "cli" / "examples" / "review_before_reply.json"


def _waiting_items(client: httpx.Client, app_id: str, runs: int) -> list[dict[str, Any]]:
    page = client.get("/v1/reviews", params={"app_id": app_id, "status": "pending", "limit": 100}).json()
    items: list[dict[str, Any]] = page["items"]
    return items if len(items) == runs else []


async def _decide_twice(base_url: str, key: str, items: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Each item's two identical decisions, sent together; their status codes by review id."""
    codes: dict[str, list[int]] = {}
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30) as client:
        async def decide(item: dict[str, Any]) -> None:
            body = {"action": "edit", "text": f"Edited reply for {item['run_id']}", "note": "chaos"}
            path = f"/v1/reviews/{item['id']}/decision"
            answers = await asyncio.gather(client.post(path, json=body), client.post(path, json=body))
            codes[item["id"]] = sorted(a.status_code for a in answers)

        await asyncio.gather(*(decide(item) for item in items))
    return codes


def review_races(cluster: Cluster, *, runs: int, timeout: float = 120) -> Counts:
    """`runs` runs waiting for review; decisions twice each while every worker is down."""
    started = time.monotonic()
    example = json.loads(EXAMPLE.read_text())
    with cluster.client() as client:
        created = client.post("/v1/apps", json={"name": f"review {uuid.uuid4().hex[:6]}",
                                                 "graph": example["draft"]})
        created.raise_for_status()
        app_id = created.json()["id"]
        client.post(f"/v1/apps/{app_id}/publish").raise_for_status()
        reviewer = client.post("/v1/keys", json={"name": "chaos reviewer", "role": "reviewer"})
        reviewer.raise_for_status()
        run_ids = [uuid.UUID(client.post(f"/v1/apps/{app_id}/runs", json={
            "inputs": {"message": f"question {i}"}}).json()["id"]) for i in range(runs)]
        items = wait_for(lambda: _waiting_items(client, app_id, runs), timeout,
                         "every run to wait for review")
    for worker in cluster.workers:
        worker.kill()
    codes = asyncio.run(_decide_twice(cluster.base_url, reviewer.json()["key"], items))
    still_waiting = sum(1 for s in statuses(cluster.database_url, run_ids).values() if s == "waiting")
    for worker in cluster.workers:
        worker.start()
    for worker in cluster.workers:
        worker.wait_for_log(" ready.")
    counts = count_runs("review_races", cluster.database_url, run_ids, runs, timeout, started)
    with cluster.client() as client:
        outputs = {str(r): client.get(f"/v1/runs/{r}").json().get("outputs") for r in run_ids}
    wrong = sum(1 for r, out in outputs.items() if out != {"reply": f"Edited reply for {r}"})
    with session_factory(cluster.database_url)() as session:
        decided = session.execute(select(AuditEntry.target_id, func.count()).where(
            AuditEntry.action == "review.decide",
            AuditEntry.target_id.in_([str(i["id"]) for i in items])).group_by(AuditEntry.target_id)).all()
    counts.duplicates += sum(n - 1 for _, n in decided if n > 1)
    pairs = Counter(tuple(c) for c in codes.values())
    counts.details.update({
        "decision_answers": {"+".join(map(str, k)): v for k, v in pairs.items()},
        "waiting_while_workers_down": still_waiting, "wrong_outputs": wrong,
        "decisions_recorded": sum(n for _, n in decided),
    })
    return counts
