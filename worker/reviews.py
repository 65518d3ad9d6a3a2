"""The review queue's side of the run engine: open items, apply decisions and deadlines, metrics.

* A `human.review` node (or any block suspending with kind `review`) gets its review item in the
  transaction that makes it wait, so an item exists exactly while its node waits. The payload
  keys are those of `HumanReviewBlock.start` (`text`, `context`, `instructions`, `actions`,
  `assignee_group`, `deadline_s`, `default_action`), plus optional `findings` (what sent the
  text to review, e.g. a governance policy's hits). The node's result is then
  `{"decision", "text", "reviewer", "note", "review_id"}`, or `{"error", "review_id"}`.
* A decision closes the item and writes the node's result in one transaction; only after the
  commit is the run sent to a worker. If that send fails, the reaper sends it later (a waiting
  run whose node has a result is re-enqueued), so a decision is never lost.
* `reviews.expire` (on the beat schedule, `worker/tasks.py`) applies default actions past deadlines
  and cancels items whose run stopped waiting for them (`sweep`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from blocks.suspends import ReviewRequest
from core.settings import get_settings
from models.db import session_scope
from models.review_decisions import close_orphans, decide, expire_due
from models.reviews import ReviewItem, get_item, open_item, queue_depth
from models.runs import NodeRun
from worker.hooks import WaitContext
from worker.metrics_export import scrape_time

log = structlog.get_logger("mantle.reviews")

DECISION_SECONDS = Histogram(
    "mantle_review_decision_seconds", "Time from a review item's creation to its decision", ["outcome"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400),
)


def open_review(ctx: WaitContext) -> None:
    """Queue a review item in the very transaction that marks the node waiting (kind `review`)."""
    session = ctx.session
    assert session is not None, "registered in_transaction"
    # The node run row was written earlier in this transaction; the query flushes it first.
    attempt = session.scalar(select(NodeRun.attempts).where(NodeRun.run_id == ctx.run_id,
                                                            NodeRun.node_id == ctx.node_id))
    open_item(session, org_id=ctx.org_id, app_id=ctx.app_id, run_id=ctx.run_id, node_id=ctx.node_id,
              attempt=attempt or 1, payload=ReviewRequest.read(ctx.suspend.payload).model_dump())


def _observe(item: ReviewItem, outcome: str) -> None:
    if item.decided_at is not None:
        DECISION_SECONDS.labels(outcome).observe(max((item.decided_at - item.created_at).total_seconds(), 0))


def decide_review(sessions: sessionmaker[Session], enqueue: Callable[[uuid.UUID], Any], *,
                  org_id: uuid.UUID, review_id: uuid.UUID, actor: str, reviewer: str, action: str,
                  text: str | None, note: str) -> ReviewItem:
    """Record a decision exactly once (Conflict for a second one), commit, then resume the run."""
    with session_scope(sessions) as session:
        item = get_item(session, org_id=org_id, item_id=review_id, lock=True)
        decide(session, item=item, actor=actor, reviewer=reviewer, action=action, text=text, note=note,
               max_result_bytes=get_settings().max_value_bytes)
    _observe(item, action)
    enqueue(item.run_id)
    return item


def sweep(sessions: sessionmaker[Session], enqueue: Callable[[uuid.UUID], Any]) -> int:
    """Apply default actions past deadlines, cancel orphaned items; returns how many expired."""
    with session_scope(sessions) as session:
        expired = expire_due(session, max_result_bytes=get_settings().max_value_bytes)
        cancelled = close_orphans(session)
    for item in expired:
        _observe(item, "expired")
        enqueue(item.run_id)
    if expired or cancelled:
        log.info("reviews_swept", expired=len(expired), cancelled=cancelled)
    return len(expired)


class QueueDepth(Collector):
    """`mantle_review_queue_depth{status}`, counted in the database whenever metrics are scraped."""

    def __init__(self) -> None:
        self.sessions: sessionmaker[Session] | None = None

    def describe(self) -> Iterable[Metric]:
        """The metric's name and help (so registering it queries nothing)."""
        return [GaugeMetricFamily("mantle_review_queue_depth", "Review items by status", labels=["status"])]

    def collect(self) -> Iterable[Metric]:
        """Count the items of every organization by status."""
        family = GaugeMetricFamily("mantle_review_queue_depth", "Review items by status", labels=["status"])
        if self.sessions is not None:
            try:
                with self.sessions() as session:
                    counts = queue_depth(session)
            except Exception as exc:  # metrics must never break the scrape
                log.warning("queue_depth_failed", error=str(exc).splitlines()[0])
                counts = {}
            for status, count in counts.items():
                family.add_metric([status], count)
        yield family


QUEUE_DEPTH = QueueDepth()
scrape_time(QUEUE_DEPTH)


def watch_queue_depth(sessions: sessionmaker[Session]) -> None:
    """Count the queue through `sessions` when metrics are scraped (the API calls this)."""
    QUEUE_DEPTH.sessions = sessions
