"""Knowledge bases: create one with its chunking and embedding settings, upload documents, follow
their ingestion, re-index and delete them.

An upload is stored (bytes and all) and queued in one transaction, then handed to the `knowledge`
queue after the commit: the request returns 202 at once, however long the document takes to
parse and embed, and a crash of anything never loses it. Searching happens in apps, through the
`knowledge.retrieve` block on the run workers: the API never loads the embedding model.
Knowledge bases are builders' material: admins and builders read and change them, reviewers
neither (the README's role table). An upload finds its knowledge base in the caller's
organization before anything about the file is checked, so another organization's id is a 404
whatever is sent.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from functools import partial
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session, sessionmaker

from api.deps import Builder, SessionDep
from api.schemas import Read
from api.schemas import Request as RequestBody
from api.streams import Batch, Message, follow_run
from core.errors import InvalidRequest, TooLarge
from knowledge import parsing
from knowledge.embedding import DEFAULT_MODEL, MODELS, dimensions_of
from knowledge.stores import index_for
from models import audit
from models import knowledge as store
from models.db import session_scope
from models.knowledge import DocumentStatus, KnowledgeBase
from worker.knowledge_queue import send_ingest

router = APIRouter(tags=["knowledge"])
log = structlog.get_logger("mantle.knowledge")
NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$"
UPLOAD_PATH = r"/v1/knowledge/[^/]+/documents"
MODEL_DOC = f"The embedding model: {', '.join(MODELS)} (default {DEFAULT_MODEL}). Changing it re-indexes."


class Chunking(BaseModel):
    """How documents are cut into passages."""

    chunk_size: int = Field(default=800, ge=100, le=8000, description="About this many characters a chunk.")
    chunk_overlap: int = Field(default=100, ge=0, le=2000, description="Characters repeated between chunks.")

    @model_validator(mode="after")
    def _overlap_smaller(self) -> Chunking:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self


class KnowledgeCreate(RequestBody, Chunking):
    """A new knowledge base."""

    name: str = Field(pattern=NAME, examples=["product docs"])
    description: str = Field(default="", max_length=2000)
    embedding_model: str = Field(default=DEFAULT_MODEL, description=MODEL_DOC)


class KnowledgeUpdate(RequestBody):
    """What to change; a new model or chunking re-indexes every document."""

    description: str | None = Field(default=None, max_length=2000)
    embedding_model: str | None = Field(default=None, description=MODEL_DOC)
    chunk_size: int | None = Field(default=None, ge=100, le=8000)
    chunk_overlap: int | None = Field(default=None, ge=0, le=2000)


class KnowledgeRead(Read):
    """A knowledge base, with how many documents it has in each ingestion state."""

    id: uuid.UUID
    name: str
    description: str
    embedding_model: str
    dimensions: int
    chunk_size: int
    chunk_overlap: int
    documents: dict[str, int] = Field(default_factory=dict, description="Documents by status.")
    created_at: datetime
    updated_at: datetime


class KnowledgeList(BaseModel):
    """The organization's knowledge bases."""

    items: list[KnowledgeRead]


class DocumentRead(Read):
    """A document and where its ingestion stands (queued, parsing, embedding, ready, failed)."""

    id: uuid.UUID
    kb_id: uuid.UUID
    filename: str
    format: str
    size_bytes: int
    sha256: str
    metadata: dict[str, Any] = Field(validation_alias="meta")
    status: DocumentStatus
    error: str | None = Field(description="Why ingestion failed (status `failed`).")
    chunks: int
    chunks_embedded: int
    embedding_model: str | None = Field(description="The model its chunks were embedded with.")
    indexed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DocumentList(BaseModel):
    """A knowledge base's documents."""

    items: list[DocumentRead]


def _read(kb: KnowledgeBase, counts: dict[str, int]) -> KnowledgeRead:
    return KnowledgeRead.model_validate({**{c: getattr(kb, c) for c in KnowledgeRead.model_fields
                                            if c != "documents"}, "documents": counts})


def _model(name: str, loc: list[str | int]) -> int:
    dimensions = dimensions_of(name)
    if dimensions is None:
        raise InvalidRequest(f"unknown embedding model {name!r}; known: {', '.join(MODELS)}", loc=loc)
    return dimensions


def _send(request: Request, queued: list[tuple[uuid.UUID, int]]) -> None:
    """Hand committed documents to the knowledge workers (a broker outage leaves them queued)."""
    celery = request.app.state.submitter.celery
    for document_id, ingestion in queued:
        try:
            send_ingest(celery, document_id, ingestion)
        except Exception as exc:  # the document is safe in the database; re-index sends it again
            log.warning("knowledge.enqueue_failed", document_id=str(document_id), error=str(exc)[:200])


@router.post("/knowledge", response_model=KnowledgeRead, status_code=status.HTTP_201_CREATED)
def create_knowledge_base(body: KnowledgeCreate, principal: Builder, session: SessionDep) -> KnowledgeRead:
    """Create a knowledge base; 409 if the organization has one of that name."""
    dimensions = _model(body.embedding_model, ["body", "embedding_model"])
    kb = store.create_base(session, org_id=principal.org_id, name=body.name, description=body.description,
                           embedding_model=body.embedding_model, dimensions=dimensions,
                           chunk_size=body.chunk_size, chunk_overlap=body.chunk_overlap)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="knowledge.create",
                 target_type="knowledge_base", target_id=kb.id, details={"name": kb.name})
    return _read(kb, {})


@router.get("/knowledge", response_model=KnowledgeList)
def list_knowledge_bases(principal: Builder, session: SessionDep) -> KnowledgeList:
    """Every knowledge base of the organization."""
    bases = store.list_bases(session, org_id=principal.org_id)
    counts = store.document_counts(session, kb_ids=[kb.id for kb in bases])
    return KnowledgeList(items=[_read(kb, counts[kb.id]) for kb in bases])


@router.get("/knowledge/{kb_id}", response_model=KnowledgeRead)
def get_knowledge_base(kb_id: uuid.UUID, principal: Builder, session: SessionDep) -> KnowledgeRead:
    """One knowledge base."""
    kb = store.get_base(session, org_id=principal.org_id, kb_id=kb_id)
    return _read(kb, store.document_counts(session, kb_ids=[kb.id])[kb.id])


@router.patch("/knowledge/{kb_id}", response_model=KnowledgeRead)
def update_knowledge_base(kb_id: uuid.UUID, body: KnowledgeUpdate, request: Request,
                          principal: Builder) -> KnowledgeRead:
    """Change a knowledge base; a new embedding model or chunking re-indexes every document (202-style:
    the documents are queued, and their chunks replaced as each is ingested again)."""
    sessions: sessionmaker[Session] = request.app.state.session_factory
    queued: list[tuple[uuid.UUID, int]] = []
    with session_scope(sessions) as session:
        kb = store.get_base(session, org_id=principal.org_id, kb_id=kb_id, lock=True)
        overlap = kb.chunk_overlap if body.chunk_overlap is None else body.chunk_overlap
        chunking = Chunking(chunk_size=body.chunk_size or kb.chunk_size, chunk_overlap=overlap)
        reindex = (chunking.chunk_size, chunking.chunk_overlap) != (kb.chunk_size, kb.chunk_overlap)
        if body.description is not None:
            kb.description = body.description
        if body.embedding_model is not None and body.embedding_model != kb.embedding_model:
            dimensions = _model(body.embedding_model, ["body", "embedding_model"])
            # Vectors of another model cannot be compared with the new one's: the old index goes now.
            index_for(session.get_bind()).drop(session, kb_id=kb.id)  # type: ignore[arg-type]
            store.drop_chunks(session, kb_id=kb.id)
            store.set_model(session, kb=kb, embedding_model=body.embedding_model, dimensions=dimensions)
            reindex = True
        kb.chunk_size, kb.chunk_overlap = chunking.chunk_size, chunking.chunk_overlap
        if reindex:
            for doc in store.list_documents(session, org_id=principal.org_id, kb_id=kb.id):
                queued.append((doc.id, store.requeue(session, doc=doc, reason="settings changed")))
        audit.record(session, org_id=principal.org_id, actor=principal.actor, action="knowledge.update",
                     target_type="knowledge_base", target_id=kb.id,
                     details={**body.model_dump(exclude_none=True), "reindexed": len(queued)})
        session.flush()
        read = _read(kb, store.document_counts(session, kb_ids=[kb.id])[kb.id])
    _send(request, queued)
    return read


@router.delete("/knowledge/{kb_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_knowledge_base(kb_id: uuid.UUID, principal: Builder, session: SessionDep) -> Response:
    """Delete a knowledge base with its documents and indexes."""
    kb = store.get_base(session, org_id=principal.org_id, kb_id=kb_id, lock=True)
    index_for(session.get_bind()).drop(session, kb_id=kb.id)  # type: ignore[arg-type]
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="knowledge.delete",
                 target_type="knowledge_base", target_id=kb.id, details={"name": kb.name})
    session.delete(kb)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"metadata is not JSON: {exc}", loc=["body", "metadata"]) from None
    if not isinstance(value, dict) or len(raw) > 8192:
        raise InvalidRequest("metadata must be a JSON object of at most 8192 characters",
                             loc=["body", "metadata"])
    return value


@router.post("/knowledge/{kb_id}/documents", response_model=DocumentRead,
             status_code=status.HTTP_202_ACCEPTED)
def upload_document(kb_id: uuid.UUID, request: Request, principal: Builder,
                    file: Annotated[UploadFile, File(description="Plain text, Markdown, HTML or PDF.")],
                    metadata: Annotated[str | None, Form(description=(
                        "A JSON object kept with the document; `knowledge.retrieve` filters on it."))] = None,
                    ) -> DocumentRead:
    """Upload a document; it is stored, then parsed and embedded by a worker (follow its `status`,
    or `GET /v1/knowledge/{id}/events`)."""
    settings = request.app.state.settings
    sessions: sessionmaker[Session] = request.app.state.session_factory
    with session_scope(sessions) as session:  # another organization's base is a 404 before any check
        store.get_base(session, org_id=principal.org_id, kb_id=kb_id)
    limit = settings.knowledge_max_document_bytes
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise TooLarge(f"the document is larger than {limit} bytes", loc=["body", "file"])
    if not content:
        raise InvalidRequest("the document is empty", loc=["body", "file"])
    filename = (file.filename or "document").rsplit("/", 1)[-1][:255]
    fmt = parsing.detect_format(filename, file.content_type, content)
    if fmt is None:
        raise InvalidRequest(f"cannot tell the format of {filename!r}: send plain text (.txt), "
                             "Markdown (.md), HTML (.html) or PDF (.pdf)", loc=["body", "file"])
    meta = _metadata(metadata)
    with session_scope(sessions) as session:
        kb = store.get_base(session, org_id=principal.org_id, kb_id=kb_id)
        doc = store.add_document(session, kb=kb, filename=filename, format=fmt, content=content,
                                 sha256=hashlib.sha256(content).hexdigest(), meta=meta)
        audit.record(session, org_id=principal.org_id, actor=principal.actor, action="knowledge.upload",
                     target_type="knowledge_document", target_id=doc.id,
                     details={"kb_id": str(kb.id), "filename": filename, "bytes": len(content)})
        read = DocumentRead.model_validate(doc)
    _send(request, [(doc.id, doc.ingestion)])
    return read


@router.get("/knowledge/{kb_id}/documents", response_model=DocumentList)
def list_documents(kb_id: uuid.UUID, principal: Builder, session: SessionDep) -> DocumentList:
    """The knowledge base's documents, oldest first."""
    store.get_base(session, org_id=principal.org_id, kb_id=kb_id)
    docs = store.list_documents(session, org_id=principal.org_id, kb_id=kb_id)
    return DocumentList(items=[DocumentRead.model_validate(d) for d in docs])


@router.get("/knowledge/{kb_id}/documents/{document_id}", response_model=DocumentRead)
def get_document(kb_id: uuid.UUID, document_id: uuid.UUID, principal: Builder,
                 session: SessionDep) -> DocumentRead:
    """One document and its ingestion's progress."""
    doc = store.get_document(session, org_id=principal.org_id, kb_id=kb_id, document_id=document_id)
    return DocumentRead.model_validate(doc)


@router.post("/knowledge/{kb_id}/documents/{document_id}/reindex", response_model=DocumentRead,
             status_code=status.HTTP_202_ACCEPTED)
def reindex_document(kb_id: uuid.UUID, document_id: uuid.UUID, request: Request,
                     principal: Builder) -> DocumentRead:
    """Parse and embed the document again (its current chunks stay searchable until the new are in)."""
    sessions: sessionmaker[Session] = request.app.state.session_factory
    with session_scope(sessions) as session:
        doc = store.get_document(session, org_id=principal.org_id, kb_id=kb_id, document_id=document_id,
                                 lock=True)
        ingestion = store.requeue(session, doc=doc, reason="re-index")
        read = DocumentRead.model_validate(doc)
    _send(request, [(document_id, ingestion)])
    return read


@router.delete("/knowledge/{kb_id}/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(kb_id: uuid.UUID, document_id: uuid.UUID, principal: Builder,
                    session: SessionDep) -> Response:
    """Delete a document and its chunks; a worker still ingesting it stops."""
    doc = store.get_document(session, org_id=principal.org_id, kb_id=kb_id, document_id=document_id,
                             lock=True)
    index_for(session.get_bind()).remove(  # type: ignore[arg-type]
        session, kb_id=kb_id, chunk_ids=store.chunk_ids_of(session, document_id=doc.id))
    store.delete_chunks(session, document_id=doc.id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="knowledge.delete_document",
                 target_type="knowledge_document", target_id=doc.id, details={"filename": doc.filename})
    session.delete(doc)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _events(request: Request, kb_id: uuid.UUID, document_id: uuid.UUID | None, after: int) -> Batch:
    """The ingestion events after `after`; the stream ends when nothing is left to ingest."""
    with request.app.state.read_sessions() as session:
        # what is left is counted before the events are read, so that a document finishing between
        # the two reads cannot end the stream before its last event was sent
        idle = store.pending(session, kb_id=kb_id, document_id=document_id) == 0
        events = store.events_after(session, kb_id=kb_id, after=after, document_id=document_id)
        messages = [Message(e.id, e.status, {"id": e.id, "type": e.status, "document_id": str(e.document_id),
                                             "at": e.at.isoformat(), "data": e.data}) for e in events]
        ended = not messages and idle
        return Batch(messages, messages[-1].id if messages else after, ended)


@router.get("/knowledge/{kb_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events until every document is ready or failed"}})
def knowledge_events(kb_id: uuid.UUID, request: Request, principal: Builder, session: SessionDep,
                     document_id: Annotated[uuid.UUID | None,
                                            Query(description="Follow one document.")] = None,
                     last_event_id: Annotated[int | None, Header(ge=0)] = None) -> StreamingResponse:
    """Ingestion progress as it happens (one event per status change and per embedded batch: `queued`,
    `parsing`, `embedding`, `ready`, `failed`); a late client first gets what already happened, and the
    stream ends once nothing (of the document given) is left to ingest."""
    store.get_base(session, org_id=principal.org_id, kb_id=kb_id)
    if document_id is not None:
        store.get_document(session, org_id=principal.org_id, kb_id=kb_id, document_id=document_id)
    stream = follow_run(request, kb_id, last_event_id or 0, partial(_events, request, kb_id, document_id))
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
