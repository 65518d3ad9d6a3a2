"""Knowledge on the workers: the `knowledge.ingest` task and the search service blocks use.

Ingesting a document is three short transactions around the slow parts, with no lock held while
parsing or embedding: claim it (`parsing`), record its chunk count (`embedding`, then progress per
batch), and write its chunks and their index entries in one go (`ready`), replacing those of an
earlier ingestion only then, so searches keep finding the old text until the new is in. Each step
checks the document's `ingestion` number: a task that a re-index or a model change has overtaken
stops. A document that cannot be read ends `failed` with the reason. The task is idempotent: run
twice (a redelivery after a crash), it finds the document already ingested, or starts again, and
a copy that finds the document finished by the other stops. `knowledge.resend` (on the beat's
schedule) sends again a document whose ingestion has not moved for `knowledge_resend_after_s`:
its message was lost (the broker was down at upload) or its worker is gone.

`ctx.services["knowledge"]` searches an organization's knowledge base for `knowledge.retrieve`,
in a short read-only transaction of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import structlog
from celery import signals
from prometheus_client import Counter, Histogram
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import MantleError
from core.settings import Settings, get_settings
from knowledge import chunking, embedding, parsing, search, stores
from models import knowledge as kb_store
from models.base import utcnow
from models.db import session_factory, session_scope
from models.knowledge import FINAL, DocumentStatus, KnowledgeBase, KnowledgeChunk, KnowledgeDocument
from worker.celery_app import celery_app
from worker.hooks import service
from worker.knowledge_queue import INGEST_TASK, send_ingest

log = structlog.get_logger("mantle.knowledge")
EMBED_BATCH = 256
CHUNKS = Counter("mantle_knowledge_chunks_total", "Chunks embedded and indexed", ["model"])
DOCUMENTS = Counter("mantle_knowledge_documents_total", "Documents ingested, by outcome", ["status"])
INGEST_SECONDS = Histogram("mantle_knowledge_ingest_seconds", "Time to ingest one document",
                           buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600))

EmbedderFor = Callable[[str], embedding.Embedder]


class Overtaken(Exception):
    """The document was deleted, or asked to be ingested again, while this task worked on it."""


def ingest(sessions: sessionmaker[Session], document_id: uuid.UUID, ingestion: int,
           embedder_for: EmbedderFor = embedding.embedder) -> str:
    """Ingest the document as asked by ingestion number `ingestion`; returns how it ended."""
    started = time.monotonic()
    try:
        with session_scope(sessions) as session:
            doc = _claim(session, document_id, ingestion)
            if doc is None:
                return "skipped"
            kb = session.get_one(KnowledgeBase, doc.kb_id)
            content, fmt, model = doc.content, doc.format, kb.embedding_model
            size, overlap, dimensions = kb.chunk_size, kb.chunk_overlap, kb.dimensions
        chunks = chunking.chunk(parsing.parse(content, fmt), size=size, overlap=overlap)
        if not chunks:
            raise parsing.ParseError("no text was found in the document")
        _step(sessions, document_id, ingestion, DocumentStatus.embedding, chunks=len(chunks))
        embedder = embedder_for(model)
        vectors = []
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start:start + EMBED_BATCH]
            vectors.append(embedder.embed([c.embed_text for c in batch]))
            done = start + len(batch)
            if done < len(chunks):
                _step(sessions, document_id, ingestion, DocumentStatus.embedding, embedded=done)
        with session_scope(sessions) as session:
            _write(session, document_id, ingestion, model, dimensions, chunks,
                   [v for block in vectors for v in block])
    except Overtaken:
        return "overtaken"
    except parsing.ParseError as exc:
        _fail(sessions, document_id, ingestion, str(exc))
        return "failed"
    except Exception as exc:  # any other failure is the document's too: say so, keep the worker
        log.exception("knowledge.ingest_failed", document_id=str(document_id))
        _fail(sessions, document_id, ingestion, f"ingestion failed: {type(exc).__name__}: {exc}"[:1000])
        return "failed"
    CHUNKS.labels(model).inc(len(chunks))
    DOCUMENTS.labels("ready").inc()
    INGEST_SECONDS.observe(time.monotonic() - started)
    log.info("knowledge.ingested", document_id=str(document_id), chunks=len(chunks),
             seconds=round(time.monotonic() - started, 3))
    return "ready"


def _locked(document_id: uuid.UUID) -> Select[KnowledgeDocument]:
    return select(KnowledgeDocument).where(KnowledgeDocument.id == document_id).with_for_update()


def _current(session: Session, document_id: uuid.UUID, ingestion: int) -> KnowledgeDocument:
    doc = session.scalar(_locked(document_id))
    if doc is None or doc.ingestion != ingestion or doc.status in FINAL:  # a resent copy finished it
        raise Overtaken
    return doc


def _claim(session: Session, document_id: uuid.UUID, ingestion: int) -> KnowledgeDocument | None:
    doc = session.scalar(_locked(document_id))
    if doc is None or doc.ingestion != ingestion or doc.status in FINAL:
        return None  # deleted, overtaken, or already done by an earlier delivery
    doc.status = DocumentStatus.parsing.value
    kb_store.add_event(session, doc=doc, status=DocumentStatus.parsing)
    return doc


def _step(sessions: sessionmaker[Session], document_id: uuid.UUID, ingestion: int, status: DocumentStatus,
          *, chunks: int | None = None, embedded: int = 0) -> None:
    with session_scope(sessions) as session:
        doc = _current(session, document_id, ingestion)
        doc.status = status.value
        if chunks is not None:
            doc.chunks = chunks
        doc.chunks_embedded = embedded
        kb_store.add_event(session, doc=doc, status=status,
                           data={"chunks": doc.chunks, "chunks_embedded": embedded})


def _write(session: Session, document_id: uuid.UUID, ingestion: int, model: str, dimensions: int,
           chunks: Sequence[chunking.Chunk], vectors: Sequence[embedding.Vectors]) -> None:
    doc = _current(session, document_id, ingestion)
    kb = session.get_one(KnowledgeBase, doc.kb_id)
    if kb.embedding_model != model:
        raise Overtaken  # the model changed meanwhile; that change queued this document again
    index = stores.index_for(session.get_bind())  # type: ignore[arg-type]
    old = kb_store.chunk_ids_of(session, document_id=doc.id)
    index.remove(session, kb_id=kb.id, chunk_ids=old)
    kb_store.delete_chunks(session, document_id=doc.id)
    rows = [KnowledgeChunk(kb_id=kb.id, document_id=doc.id, position=c.position, section=c.section[:500],
                           page=c.page, text=c.text, embedding=embedding.to_bytes(v))
            for c, v in zip(chunks, vectors, strict=True)]
    session.add_all(rows)
    session.flush()
    index.add(session, kb_id=kb.id, dimensions=dimensions,
              rows=[stores.Indexed(r.id, v, r.text) for r, v in zip(rows, vectors, strict=True)])
    doc.status = DocumentStatus.ready.value
    doc.chunks = doc.chunks_embedded = len(rows)
    doc.embedding_model = model
    doc.indexed_at = utcnow()
    kb_store.add_event(session, doc=doc, status=DocumentStatus.ready, data={"chunks": len(rows)})


def _fail(sessions: sessionmaker[Session], document_id: uuid.UUID, ingestion: int, reason: str) -> None:
    try:
        with session_scope(sessions) as session:
            doc = _current(session, document_id, ingestion)
            doc.status = DocumentStatus.failed.value
            doc.error = reason
            kb_store.add_event(session, doc=doc, status=DocumentStatus.failed, data={"error": reason})
    except Overtaken:
        return
    DOCUMENTS.labels("failed").inc()
    log.warning("knowledge.document_failed", document_id=str(document_id), reason=reason)


@celery_app.task(name="knowledge.resend")
def resend() -> int:
    """Send again the documents whose ingestion has not moved for `knowledge_resend_after_s`."""
    settings = get_settings()
    before = utcnow() - timedelta(seconds=settings.knowledge_resend_after_s)
    with session_scope(session_factory(settings.resolved_database_url)) as session:
        docs = kb_store.stalled(session, before=before)
        found = [(doc.id, doc.ingestion) for doc in docs]
        for doc in docs:
            doc.updated_at = utcnow()  # not again before another period has passed
    for document_id, ingestion in found:
        send_ingest(celery_app, document_id, ingestion)
        log.info("knowledge.resent", document_id=str(document_id))
    return len(found)


@celery_app.task(name=INGEST_TASK, acks_late=True, reject_on_worker_lost=True)
def ingest_task(document_id: str, ingestion: int) -> str:
    """Parse, chunk, embed and index one document."""
    settings = get_settings()
    return ingest(session_factory(settings.resolved_database_url), uuid.UUID(document_id), int(ingestion))


class KnowledgeNotFound(MantleError):
    """`knowledge.retrieve` names a knowledge base its organization does not have."""

    type = "knowledge_not_found"


class KnowledgeSearch:
    """Searches one organization's knowledge bases for a block; never another organization's."""

    def __init__(self, sessions: sessionmaker[Session],
                 embedder_for: EmbedderFor = embedding.embedder) -> None:
        self.sessions = sessions
        self.embedder_for = embedder_for

    def search(self, org_id: uuid.UUID, knowledge_base: str, query: str, *, top_k: int,
               min_score: float | None, mode: search.Mode, document_ids: Sequence[uuid.UUID] | None,
               metadata: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """The best chunks for `query`, each as `{document, document_id, position, section, text, score}`."""
        with session_scope(self.sessions) as session:
            kb = kb_store.find_base(session, org_id=org_id, ref=knowledge_base)
            if kb is None:
                raise KnowledgeNotFound(f"the organization has no knowledge base {knowledge_base!r}",
                                        loc=["config", "knowledge_base"])
            index = stores.index_for(session.get_bind())  # type: ignore[arg-type]
            hits = search.search(session, index=index, kb=kb, embedder=self.embedder_for(kb.embedding_model),
                                 query=query, top_k=top_k, min_score=min_score, mode=mode,
                                 document_ids=document_ids, metadata=metadata)
            return [h.as_dict() for h in hits]


@service("knowledge")
def knowledge_search(settings: Settings) -> KnowledgeSearch:
    """The knowledge service of this worker process."""
    return KnowledgeSearch(session_factory(settings.resolved_database_url, readonly=True))



@signals.worker_ready.connect
def _say_how_knowledge_is_searched(**_: Any) -> None:
    """Log at start-up how this database searches knowledge (a warning when pgvector is missing)."""
    settings = get_settings()
    try:
        engine = session_factory(settings.resolved_database_url).kw["bind"]
        log.info("knowledge.index", kind=stores.describe(engine))
    except Exception:  # a database not migrated yet: searches will say so
        log.warning("knowledge.index_unknown", exc_info=True)
