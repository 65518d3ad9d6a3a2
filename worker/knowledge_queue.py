"""Sending ingestion work to the `knowledge` queue, without importing the tasks that do it.

The API and the seed queue documents here; `worker/knowledge.py` consumes them. A big PDF is
parsed and embedded there, so no API request waits for it.
"""

from __future__ import annotations

import uuid

from celery import Celery

KNOWLEDGE_QUEUE = "knowledge"
INGEST_TASK = "knowledge.ingest"


def send_ingest(celery: Celery, document_id: uuid.UUID, ingestion: int) -> None:
    """Ask a knowledge worker to ingest the document (the `ingestion` it was queued as)."""
    celery.send_task(INGEST_TASK, args=[str(document_id), ingestion], queue=KNOWLEDGE_QUEUE)
