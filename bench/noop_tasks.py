"""The baseline for bench/engine.py: a bare Celery app with one no-op task."""

from __future__ import annotations

import os

from celery import Celery


def make_bench_celery(broker: str) -> Celery:
    """A Celery app on `broker`, with results in the same Redis (a chain needs them)."""
    app = Celery("bench", broker=broker, backend=broker)
    app.conf.update(task_default_queue="bench", worker_prefetch_multiplier=4,
                    worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

    @app.task(name="bench.noop")
    def noop(*_: object) -> None:
        """Do nothing."""

    return app


app = make_bench_celery(os.environ.get("MANTLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"))
