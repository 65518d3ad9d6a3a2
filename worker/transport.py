"""How Mantle talks to its broker: the queues, the Celery app's configuration, and the one message
other processes send (a run to advance), by its task's name.

The API starts runs and must not import the workers' task modules (nor build the workers' Celery
app, `worker/celery_app.py`, as importing it does): it sends `runs.advance` by name through an app
of its own (`make_celery`). Queues: `runs` (run workers), `inference` (model workers) and
`knowledge` (documents to ingest); late acks; the scheduler's periodic tasks (the reaper, review
deadlines, cron triggers, run retention).

Celery is only the transport; PostgreSQL (or SQLite) is the record, so a lost message
costs latency (the reaper re-enqueues), never a run.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from celery import Celery
from kombu.entity import Queue

from core.settings import Settings
from worker import fs_broker, redis_broker
from worker.knowledge_queue import KNOWLEDGE_QUEUE

RUNS_QUEUE = "runs"
INFERENCE_QUEUE = "inference"


def make_celery(settings: Settings) -> Celery:
    """A Celery app on the configured broker (a folder on disk when none is configured)."""
    app = Celery("mantle", broker=settings.resolved_broker_url,
                 include=["worker.tasks", "worker.sms", "worker.inference.tasks",
                          "worker.integrations", "worker.schedules", "worker.knowledge",
                          "worker.retention"])
    options: dict[str, object] = {}
    if settings.resolved_broker_url.startswith("filesystem"):
        fs_broker.install()
        folder = settings.broker_dir
        (folder / "processed").mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folder), "data_folder_out": str(folder),
            "processed_folder": str(folder / "processed"), "store_processed": False,
            # Broadcast (control) exchanges default to ./control in the working directory.
            "control_folder": str(folder / "control"),
            # The default polls once a second: 1 s of latency per hop. 10 ms costs little CPU.
            "polling_interval": settings.broker_polling_interval_s,
        }
    elif settings.resolved_broker_url.startswith(("redis", "rediss")):
        redis_broker.install()
        options = {"visibility_timeout": 3600}
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_queues=[Queue(RUNS_QUEUE), Queue(INFERENCE_QUEUE), Queue(KNOWLEDGE_QUEUE)],
        task_default_queue=RUNS_QUEUE,
        task_routes={"runs.*": {"queue": RUNS_QUEUE}, "inference.*": {"queue": INFERENCE_QUEUE},
                     "knowledge.*": {"queue": KNOWLEDGE_QUEUE}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_schedule={
            "reap-stuck-runs": {"task": "runs.reap", "schedule": settings.reaper_interval_s},
            "expire-reviews": {"task": "reviews.expire", "schedule": settings.review_sweep_interval_s},
            "resend-inference": {"task": "runs.resend_inference", "schedule": settings.reaper_interval_s},
            "fire-schedules": {"task": "schedules.fire", "schedule": settings.schedule_interval_s},
            "resend-knowledge": {"task": "knowledge.resend", "schedule": settings.reaper_interval_s},
            "prune-runs": {"task": "runs.prune", "schedule": settings.retention_interval_s},
        },
        beat_schedule_filename=str((settings.data_dir / "celerybeat-schedule").resolve()),
    )
    return app


def send_advance(app: Celery, run_id: uuid.UUID, eta: datetime | None = None) -> None:
    """Ask a run worker to advance the run (now, or at `eta`)."""
    run = str(run_id)
    # The message's printable arguments, given: Celery's own (`saferepr` of each argument) cost
    # about a fifth of the publish's CPU, for a string that is always this one.
    app.send_task("runs.advance", args=[run], queue=RUNS_QUEUE, eta=eta, argsrepr=f"['{run}']",
                  kwargsrepr="{}")
