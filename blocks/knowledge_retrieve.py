"""`knowledge.retrieve`: the passages of a knowledge base that best answer a query, ready to cite.

It searches through the worker's knowledge service (`ctx.services["knowledge"]`, see
`worker/knowledge.py`), always within the run's own organization: hybrid search (vector and
keyword, fused by reciprocal rank) unless `mode` says otherwise, the `top_k` best chunks whose
cosine similarity reaches `min_score`, among the documents the filters allow. Besides the chunks
(document, position, section, score, text) it emits `context`, the chunks numbered `[1]`, `[2]`…
with their source, to put in an `llm.prompt` template, and `sources`, the matching citations
(`[1] README.md § Install`), so an answer can name where it came from.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from blocks.base import Block, BlockContext
from core.errors import MantleError


class KnowledgeService(Protocol):
    """What the worker provides at `ctx.services["knowledge"]`."""

    def search(self, org_id: uuid.UUID, knowledge_base: str, query: str, *, top_k: int,
               min_score: float | None, mode: Literal["hybrid", "vector", "keyword"],
               document_ids: list[uuid.UUID] | None,
               metadata: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """The best chunks, each `{document, document_id, position, section, page, text, score, metadata}`."""
        ...


class Filters(BaseModel):
    """Which documents to search (all of them when empty)."""

    model_config = ConfigDict(extra="forbid")

    document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    metadata: dict[str, Any] = Field(default_factory=dict, description=(
        "Metadata given at upload that must match: every key; a list of values matches any of them."))


class RetrieveConfig(BaseModel):
    """Which knowledge base, how many chunks and how good they must be."""

    model_config = ConfigDict(extra="forbid")

    knowledge_base: str = Field(min_length=1, max_length=100,
                                description="The knowledge base's name or id (GET /v1/knowledge).",
                                json_schema_extra={"x-mantle-source": "knowledge"})
    top_k: int = Field(default=5, ge=1, le=50)
    min_score: float | None = Field(default=None, ge=-1, le=1,
                                    description="Leave out chunks whose cosine similarity is lower.")
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    filters: Filters = Field(default_factory=Filters)
    max_chunk_chars: int = Field(default=2000, ge=100, le=20_000,
                                 description="Longest text of a chunk put into `context`.")


class RetrieveInputs(BaseModel):
    """The question."""

    query: str = Field(description="What to look for.")


class RetrieveOutputs(BaseModel):
    """What was found, raw and ready for a prompt."""

    chunks: list[Any] = Field(description=(
        "Each {document, document_id, position, section, page, score, text}."))
    context: str = Field(description="The chunks numbered [1], [2]… with their source, for a prompt.")
    sources: list[Any] = Field(description="The citations: `[n] document § section`.")
    count: int


class RetrieveBlock(Block[RetrieveConfig, RetrieveInputs, RetrieveOutputs]):
    """Searches a knowledge base of the run's organization."""

    type = "knowledge.retrieve"
    title = "Retrieve from knowledge"
    description = ("Finds the passages of a knowledge base that best answer a query (vector and keyword "
                   "search, fused), with their source, ready to be cited by a prompt.")
    category = "ai"

    def run(self, inputs: RetrieveInputs, ctx: BlockContext) -> RetrieveOutputs:
        service: KnowledgeService | None = ctx.services.get("knowledge")
        if service is None:
            raise MantleError("this worker has no knowledge service (ctx.services['knowledge'])")
        query = inputs.query.strip()
        if not query:
            raise MantleError("the query is empty", loc=["inputs", "query"])
        cfg = self.config
        chunks = service.search(ctx.org_id, cfg.knowledge_base, query[:4000], top_k=cfg.top_k,
                                min_score=cfg.min_score, mode=cfg.mode,
                                document_ids=list(cfg.filters.document_ids) or None,
                                metadata=cfg.filters.metadata or None)
        sources = [citation(n, c) for n, c in enumerate(chunks, start=1)]
        context = "\n\n".join(f"{source}\n{c['text'][:cfg.max_chunk_chars]}"
                                for source, c in zip(sources, chunks, strict=True))
        return RetrieveOutputs(chunks=chunks, context=context, sources=sources, count=len(chunks))


def citation(n: int, chunk: Mapping[str, Any]) -> str:
    """How chunk number `n` is cited: `[n] README.md § Install › With Docker` (or `p. 3` for a page)."""
    where = f" § {chunk['section']}" if chunk.get("section") else ""
    if chunk.get("page") and not where:
        where = f" p. {chunk['page']}"
    return f"[{n}] {chunk['document']}{where}"


BLOCKS = [RetrieveBlock]
