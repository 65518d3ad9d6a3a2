"""Knowledge bases: their documents (the uploaded bytes kept until deleted), chunks and progress events.

A document's bytes are stored in its row when it is uploaded, in the same transaction that queues
its ingestion, so a crash of the API or a worker never loses an upload: the ingestion task reads
them again. Each chunk row keeps its text and its embedding (float32, unit length) as bytes; the
vector and keyword indexes (`knowledge/stores.py`) are built from these rows and live outside this
metadata, because their shape depends on the database (a `vec0` virtual table on SQLite, a
`vector(n)` column with an HNSW index where PostgreSQL has pgvector, nothing extra without it).

`ingestion` on a document counts the ingestions asked for: a task carries the number it was sent
with and stops when the row has moved on (a re-index or a model change asked again meanwhile).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict, NotFound
from models.base import Base, JSONType, TimestampMixin, new_id, utcnow

RowId = BigInteger().with_variant(Integer(), "sqlite")


class DocumentStatus(enum.StrEnum):
    """Where a document's ingestion stands."""

    queued = "queued"
    parsing = "parsing"
    embedding = "embedding"
    ready = "ready"
    failed = "failed"


FINAL = frozenset({DocumentStatus.ready, DocumentStatus.failed})


class KnowledgeBase(TimestampMixin, Base):
    """A set of documents searched together, with how they are chunked and embedded."""

    __tablename__ = "knowledge_bases"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    embedding_model: Mapped[str] = mapped_column(String(100))
    dimensions: Mapped[int]
    chunk_size: Mapped[int]
    chunk_overlap: Mapped[int]


class KnowledgeDocument(TimestampMixin, Base):
    """One uploaded document, its bytes and the progress of its ingestion."""

    __tablename__ = "knowledge_documents"
    __table_args__ = (Index("ix_knowledge_documents_kb_id_created_at", "kb_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    kb_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(20))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=DocumentStatus.queued.value)
    error: Mapped[str | None] = mapped_column(Text)
    chunks: Mapped[int] = mapped_column(default=0)
    chunks_embedded: Mapped[int] = mapped_column(default=0)
    ingestion: Mapped[int] = mapped_column(default=1)
    embedding_model: Mapped[str | None] = mapped_column(String(100))
    indexed_at: Mapped[datetime | None]


class KnowledgeChunk(Base):
    """A passage of a document with its embedding (float32 bytes, unit length)."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (Index("ix_knowledge_chunks_kb_id_id", "kb_id", "id"),
                      Index("ix_knowledge_chunks_document_id_position", "document_id", "position"))

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    kb_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"))
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("knowledge_documents.id", ondelete="CASCADE"))
    position: Mapped[int]
    section: Mapped[str] = mapped_column(String(500), default="")
    page: Mapped[int | None]
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)


class KnowledgeEvent(Base):
    """An append-only log of ingestion progress, read by the knowledge base's event stream."""

    __tablename__ = "knowledge_events"
    __table_args__ = (Index("ix_knowledge_events_kb_id_id", "kb_id", "id"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    kb_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"))
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("knowledge_documents.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


def create_base(session: Session, *, org_id: uuid.UUID, name: str, description: str, embedding_model: str,
                dimensions: int, chunk_size: int, chunk_overlap: int) -> KnowledgeBase:
    """A new knowledge base; Conflict when the organization has one of that name."""
    if session.scalar(select(KnowledgeBase.id).where(KnowledgeBase.org_id == org_id,
                                                     KnowledgeBase.name == name)) is not None:
        raise Conflict(f"a knowledge base named {name!r} exists", loc=["body", "name"])
    kb = KnowledgeBase(org_id=org_id, name=name, description=description, embedding_model=embedding_model,
                       dimensions=dimensions, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    session.add(kb)
    session.flush()
    return kb


def get_base(session: Session, *, org_id: uuid.UUID, kb_id: uuid.UUID, lock: bool = False) -> KnowledgeBase:
    """The organization's knowledge base, or NotFound."""
    stmt = select(KnowledgeBase).where(KnowledgeBase.id == kb_id, KnowledgeBase.org_id == org_id)
    kb = session.scalar(stmt.with_for_update() if lock else stmt)
    if kb is None:
        raise NotFound("knowledge base not found", loc=["path", "kb_id"])
    return kb


def find_base(session: Session, *, org_id: uuid.UUID, ref: str) -> KnowledgeBase | None:
    """The organization's knowledge base named `ref`, or whose id it is."""
    try:
        by_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        by_id = None
    if by_id is not None:
        found = session.scalar(select(KnowledgeBase).where(KnowledgeBase.id == by_id,
                                                           KnowledgeBase.org_id == org_id))
        if found is not None:
            return found
    return session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == ref,
                                                      KnowledgeBase.org_id == org_id))


def list_bases(session: Session, *, org_id: uuid.UUID) -> list[KnowledgeBase]:
    """Every knowledge base of the organization, by name."""
    return list(session.scalars(select(KnowledgeBase).where(KnowledgeBase.org_id == org_id)
                                .order_by(KnowledgeBase.name)))


def document_counts(session: Session, *, kb_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """How many documents each knowledge base has in each status."""
    counts: dict[uuid.UUID, dict[str, int]] = {kb_id: {} for kb_id in kb_ids}
    rows = session.execute(select(KnowledgeDocument.kb_id, KnowledgeDocument.status, func.count())
                           .where(KnowledgeDocument.kb_id.in_(kb_ids))
                           .group_by(KnowledgeDocument.kb_id, KnowledgeDocument.status))
    for kb_id, status, n in rows:
        counts[kb_id][status] = n
    return counts


def add_document(session: Session, *, kb: KnowledgeBase, filename: str, format: str, content: bytes,
                 sha256: str, meta: dict[str, Any]) -> KnowledgeDocument:
    """A new queued document holding its bytes, with its first event."""
    doc = KnowledgeDocument(org_id=kb.org_id, kb_id=kb.id, filename=filename, format=format, content=content,
                            size_bytes=len(content), sha256=sha256, meta=meta,
                            status=DocumentStatus.queued.value)
    session.add(doc)
    session.flush()
    add_event(session, doc=doc, status=DocumentStatus.queued)
    return doc


def get_document(session: Session, *, org_id: uuid.UUID, kb_id: uuid.UUID, document_id: uuid.UUID,
                 lock: bool = False) -> KnowledgeDocument:
    """The organization's document of that knowledge base, or NotFound."""
    stmt = select(KnowledgeDocument).where(KnowledgeDocument.id == document_id,
                                           KnowledgeDocument.kb_id == kb_id,
                                           KnowledgeDocument.org_id == org_id)
    doc = session.scalar(stmt.with_for_update() if lock else stmt)
    if doc is None:
        raise NotFound("document not found", loc=["path", "document_id"])
    return doc


def list_documents(session: Session, *, org_id: uuid.UUID, kb_id: uuid.UUID) -> list[KnowledgeDocument]:
    """The knowledge base's documents, oldest first."""
    return list(session.scalars(select(KnowledgeDocument)
                                .where(KnowledgeDocument.kb_id == kb_id, KnowledgeDocument.org_id == org_id)
                                .order_by(KnowledgeDocument.created_at, KnowledgeDocument.id)))


def requeue(session: Session, *, doc: KnowledgeDocument, reason: str) -> int:
    """Ask for the document's ingestion again; returns the ingestion number its task must carry."""
    doc.ingestion += 1
    doc.status = DocumentStatus.queued.value
    doc.error = None
    doc.chunks_embedded = 0
    session.flush()
    add_event(session, doc=doc, status=DocumentStatus.queued, data={"reason": reason})
    return doc.ingestion


def add_event(session: Session, *, doc: KnowledgeDocument, status: DocumentStatus,
              data: dict[str, Any] | None = None) -> None:
    """Append a progress event of the document."""
    session.add(KnowledgeEvent(kb_id=doc.kb_id, document_id=doc.id, status=status.value, data=data or {}))


def events_after(session: Session, *, kb_id: uuid.UUID, after: int, document_id: uuid.UUID | None = None,
                 limit: int = 500) -> list[KnowledgeEvent]:
    """The knowledge base's events after id `after` (of one document, when given), oldest first."""
    stmt = select(KnowledgeEvent).where(KnowledgeEvent.kb_id == kb_id, KnowledgeEvent.id > after)
    if document_id is not None:
        stmt = stmt.where(KnowledgeEvent.document_id == document_id)
    return list(session.scalars(stmt.order_by(KnowledgeEvent.id).limit(limit)))


def pending(session: Session, *, kb_id: uuid.UUID, document_id: uuid.UUID | None = None) -> int:
    """How many of the knowledge base's documents (or the one given) are still being ingested."""
    stmt = select(func.count()).select_from(KnowledgeDocument).where(
        KnowledgeDocument.kb_id == kb_id, KnowledgeDocument.status.not_in([s.value for s in FINAL]))
    if document_id is not None:
        stmt = stmt.where(KnowledgeDocument.id == document_id)
    return int(session.scalar(stmt) or 0)


def chunk_ids_of(session: Session, *, document_id: uuid.UUID) -> list[int]:
    """The ids of the document's chunks."""
    return list(session.scalars(select(KnowledgeChunk.id).where(KnowledgeChunk.document_id == document_id)))


def delete_chunks(session: Session, *, document_id: uuid.UUID) -> None:
    """Remove the document's chunk rows (the indexes are the store's to clean)."""
    session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document_id))


def set_model(session: Session, *, kb: KnowledgeBase, embedding_model: str, dimensions: int) -> None:
    """Record the knowledge base's new embedding model; its documents must be ingested again."""
    kb.embedding_model = embedding_model
    kb.dimensions = dimensions
    session.execute(update(KnowledgeDocument).where(KnowledgeDocument.kb_id == kb.id)
                    .values(embedding_model=None))
    session.flush()


def drop_chunks(session: Session, *, kb_id: uuid.UUID) -> None:
    """Remove every chunk row of the knowledge base (its model changed)."""
    session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.kb_id == kb_id))


def stalled(session: Session, *, before: datetime, limit: int = 100) -> list[KnowledgeDocument]:
    """Documents still being ingested whose last progress is older than `before`, locked (rows another
    sweeper holds are passed over)."""
    stmt = (select(KnowledgeDocument)
            .where(KnowledgeDocument.status.not_in([s.value for s in FINAL]),
                   KnowledgeDocument.updated_at < before)
            .order_by(KnowledgeDocument.updated_at).limit(limit).with_for_update(skip_locked=True))
    return list(session.scalars(stmt))
