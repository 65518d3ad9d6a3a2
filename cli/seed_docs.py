"""The embedded deployment's "Mantle docs" knowledge base: the README, for the example
"Answer from our docs".

It is made once in the local organization, like the example apps; when the README has changed
since (a newer checkout), the document takes the new text and is ingested again. Ingestion goes
through the knowledge workers like any upload: this only stores the bytes and says what to queue.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.embedding import DEFAULT_MODEL, MODELS
from models import knowledge as kb_store
from models.db import session_scope
from models.knowledge import KnowledgeDocument
from models.orgs import Organization

DOCS_KB = "Mantle docs"
README = Path(__file__).resolve().parents[1] / "README.md"


def seed_docs(sessions: sessionmaker[Session], org_name: str,
              readme: Path = README) -> list[tuple[uuid.UUID, int]]:
    """Make sure the organization's docs knowledge base holds the README; returns the documents to
    ingest as (id, ingestion). Nothing when the README is not beside the code (an installed wheel)."""
    if not readme.is_file():
        return []
    content = readme.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    with session_scope(sessions) as session:
        org = session.scalar(select(Organization).where(Organization.name == org_name))
        if org is None:
            return []
        kb = kb_store.find_base(session, org_id=org.id, ref=DOCS_KB)
        if kb is None:
            kb = kb_store.create_base(session, org_id=org.id, name=DOCS_KB, description="Mantle's README.",
                                      embedding_model=DEFAULT_MODEL, dimensions=MODELS[DEFAULT_MODEL],
                                      chunk_size=800, chunk_overlap=100)
        doc = session.scalar(select(KnowledgeDocument).where(KnowledgeDocument.kb_id == kb.id,
                                                             KnowledgeDocument.filename == readme.name))
        if doc is None:
            doc = kb_store.add_document(session, kb=kb, filename=readme.name, format="markdown",
                                        content=content, sha256=digest, meta={"source": "repository"})
            return [(doc.id, doc.ingestion)]
        if doc.sha256 != digest:
            doc.content, doc.sha256, doc.size_bytes = content, digest, len(content)
            return [(doc.id, kb_store.requeue(session, doc=doc, reason="the README changed"))]
        if doc.status == "queued":  # queued before a restart: the message may be gone with the broker folder
            return [(doc.id, doc.ingestion)]
        return []
