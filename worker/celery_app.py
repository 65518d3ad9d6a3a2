"""The workers' Celery app, on which their task modules register (`@celery_app.task`).

It is built from the settings when this module is imported, so only worker modules import it;
everything else reaches the broker through `worker/transport.py`.
"""

from __future__ import annotations

from core.settings import get_settings
from worker.transport import make_celery

celery_app = make_celery(get_settings())
