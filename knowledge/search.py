"""Hybrid search: the vector and keyword rankings of a query, fused by reciprocal rank, filtered.

Reciprocal rank fusion (Cormack et al., 2009) adds `weight / (60 + rank)` from each ranking a
chunk appears in: it needs no calibration between cosine similarities and BM25 scores, and a chunk
both rankings like rises above one only one of them likes. Two measured choices
(`bench/knowledge.py`, on the README's labelled questions): each ranking is cut to its best
`max(2 × top_k, 10)` before fusing, since the deep tail of a ranking is mostly noise, and the
vector ranking weighs half as much as the keyword one, since WordLlama's static token embeddings
are the weaker signal on technical text (recall@5 0.83 with plain fusion, 0.91 with these; the
same questions chose them, so the bench reports both). Each hit's `score` is its cosine
similarity to the query (what `min_score` compares), so a threshold means the same in every mode.

Filters narrow the documents first (by id, and by the metadata given at upload: every key must
match, a list of values matches any of them); the vector side then scans those documents'
embeddings exactly (`stores.exact_nearest`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.embedding import Embedder, from_bytes
from knowledge.stores import Index, exact_nearest
from models.knowledge import KnowledgeBase, KnowledgeChunk, KnowledgeDocument

Mode = Literal["hybrid", "vector", "keyword"]
RRF_K = 60
VECTOR_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class Hit:
    """One chunk found: where it comes from, its text and how well it matched."""

    chunk_id: int
    document_id: uuid.UUID
    document: str
    position: int
    section: str
    page: int | None
    text: str
    score: float
    metadata: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The hit as a block emits it."""
        return {"document_id": str(self.document_id), "document": self.document, "position": self.position,
                "section": self.section, "page": self.page, "text": self.text, "score": round(self.score, 4),
                "metadata": dict(self.metadata)}


def matching_documents(session: Session, *, kb_id: uuid.UUID, document_ids: Sequence[uuid.UUID] | None,
                       metadata: Mapping[str, Any] | None) -> list[uuid.UUID] | None:
    """The ids of the documents the filters allow; None when there are no filters."""
    if not document_ids and not metadata:
        return None
    stmt = select(KnowledgeDocument.id, KnowledgeDocument.meta).where(KnowledgeDocument.kb_id == kb_id)
    if document_ids:
        stmt = stmt.where(KnowledgeDocument.id.in_(document_ids))
    allowed = []
    for doc_id, meta in session.execute(stmt):
        if all(_matches(meta.get(key), wanted) for key, wanted in (metadata or {}).items()):
            allowed.append(doc_id)
    return allowed


def _matches(value: Any, wanted: Any) -> bool:
    options = wanted if isinstance(wanted, list) else [wanted]
    return value in options or (isinstance(value, list) and any(v in options for v in value))


def fuse(rankings: Sequence[tuple[float, Sequence[int]]]) -> list[int]:
    """Chunk ids ordered by their weighted reciprocal rank fusion score over (weight, ranking) pairs."""
    scores: dict[int, float] = {}
    for weight, ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
    return sorted(scores, key=lambda c: -scores[c])


def search(session: Session, *, index: Index, kb: KnowledgeBase, embedder: Embedder, query: str, top_k: int,
           min_score: float | None = None, mode: Mode = "hybrid",
           document_ids: Sequence[uuid.UUID] | None = None,
           metadata: Mapping[str, Any] | None = None) -> list[Hit]:
    """The `top_k` chunks of the knowledge base that best answer `query`."""
    allowed = matching_documents(session, kb_id=kb.id, document_ids=document_ids, metadata=metadata)
    if allowed is not None and not allowed:
        return []
    vector = embedder.embed([query])[0]
    depth = max(2 * top_k, 10) if mode == "hybrid" else top_k * 3
    rankings: list[tuple[float, list[int]]] = []
    if mode in ("hybrid", "vector"):
        if allowed is None:
            near = index.nearest(session, kb_id=kb.id, dimensions=kb.dimensions, query=vector, k=depth)
        else:
            near = exact_nearest(session, kb_id=kb.id, query=vector, k=depth, document_ids=allowed)
        rankings.append((VECTOR_WEIGHT if mode == "hybrid" else 1.0, [c for c, _ in near]))
    if mode in ("hybrid", "keyword"):
        words = index.keyword(session, kb_id=kb.id, query=query, k=depth, document_ids=allowed)
        rankings.append((1.0, words))
    order = fuse(rankings)
    if not order:
        return []
    rows = session.execute(select(KnowledgeChunk, KnowledgeDocument.filename, KnowledgeDocument.meta)
                           .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
                           .where(KnowledgeChunk.id.in_(order))).all()
    by_id = {chunk.id: (chunk, filename, meta) for chunk, filename, meta in rows}
    hits = []
    for chunk_id in order:
        if chunk_id not in by_id:
            continue  # deleted since it was ranked
        chunk, filename, meta = by_id[chunk_id]
        score = float(np.dot(from_bytes(chunk.embedding), vector))
        if min_score is not None and score < min_score:
            continue
        hits.append(Hit(chunk.id, chunk.document_id, filename, chunk.position, chunk.section, chunk.page,
                        chunk.text, score, meta))
        if len(hits) == top_k:
            break
    return hits
