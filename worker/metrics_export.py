"""Serving Prometheus metrics: one answer per process tree, and gauges counted at scrape time.

Why multiprocess mode: run workers execute tasks in Celery's prefork children and the API may
run several uvicorn workers, so the process that answers a scrape is not the one that counted.
`mantle api` and `mantle worker` therefore give their process tree a private
`PROMETHEUS_MULTIPROC_DIR` (see `cli/metrics_dir.py`), every process writes its values there,
and `/metrics` (the API's, or a worker's health port) merges them. Each container is one scrape
target; nothing is shared between containers, so `--scale worker=N` needs no coordination.

Gauges that describe the whole deployment (queue depths) are computed when scraped, by
collectors registered with `scrape_time`; the API serves them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger("mantle.metrics")

_SCRAPE_TIME: list[Collector] = []


def scrape_time(collector: Collector) -> Collector:
    """Register a collector that computes its values when metrics are scraped."""
    REGISTRY.register(collector)
    _SCRAPE_TIME.append(collector)
    return collector


def multiprocess_dir() -> str | None:
    """The folder this process tree's metrics are merged from, if any."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> tuple[bytes, str]:
    """This process tree's metrics in Prometheus' text format, and its content type."""
    registry: CollectorRegistry = REGISTRY
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in _SCRAPE_TIME:
            registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a finished child's live gauges (its counters keep counting in the merge)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


class BrokerQueueDepth(Collector):
    """`mantle_queue_depth{queue}`: messages waiting in each queue, asked of the broker per scrape."""

    def __init__(self) -> None:
        self.celery: Any = None
        self.queues: tuple[str, ...] = ()

    def describe(self) -> Iterable[Metric]:
        """The metric's name and help (so registering it asks the broker nothing)."""
        return [self._family()]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("mantle_queue_depth", "Messages waiting in a broker queue", labels=["queue"])

    def collect(self) -> Iterator[Metric]:
        """Ask the broker how many messages each queue holds (nothing when it cannot answer)."""
        family = self._family()
        if self.celery is not None:
            try:
                for queue, depth in queue_depths(self.celery, self.queues).items():
                    family.add_metric([queue], depth)
            except Exception as exc:  # a scrape must never fail because the broker is down
                log.warning("queue_depth_failed", error=str(exc).splitlines()[0][:200])
        yield family


def queue_depths(celery: Any, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each queue: a passive declare answers for Redis, AMQP and the folder broker."""
    found: dict[str, int] = {}
    with celery.connection_for_read(connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0.1, timeout=2)
        channel = conn.default_channel
        for queue in queues:
            try:
                found[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except conn.channel_errors:  # AMQP: a queue nobody declared yet holds nothing
                found[queue] = 0
                channel = conn.channel()
    return found


QUEUE_DEPTH = BrokerQueueDepth()
scrape_time(QUEUE_DEPTH)


def watch_broker(celery: Any, queues: Iterable[str]) -> None:
    """Report the depth of `queues` on `celery`'s broker when metrics are scraped (the API calls this)."""
    QUEUE_DEPTH.celery = celery
    QUEUE_DEPTH.queues = tuple(dict.fromkeys(queues))
