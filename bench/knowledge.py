"""Knowledge benchmark: retrieval quality, ingestion throughput, and query latency at 100,000 chunks.

Prints one JSON line:

* `recall_at_5`: the repository's README.md ingested with a knowledge base's defaults (800-character
  chunks, WordLlama 256) on SQLite; for each of the labelled questions in
  `bench/data/knowledge_questions.jsonl` (written as a user would ask them, each with a short span
  of the README that answers it), a hit when one of the five chunks retrieved contains the span.
  Hybrid search (the default) beside vector-only and keyword-only in the same process. Goal ≥ 0.85.
* `ingest_chunks_per_s`: the README repeated 20 times (one document of about 2,000 chunks) through
  the ingestion task's code (parse, chunk, embed, index), on SQLite (sqlite-vec) and on PostgreSQL
  with pgvector (HNSW).
* `query_ms`: on a private PostgreSQL 16 with pgvector (the `pgserver` wheel), one knowledge base of
  `--chunks` chunks (100,000: lines of the Python standard library's sources, embedded with the
  same model); p50/p95 of the HNSW nearest-neighbour query (k = 10, what hybrid search asks for its
  top 5), of a
  whole hybrid search (query embedding, HNSW, full-text, fusion, rows), and beside them, in the same
  process, a brute-force numpy scan of the same vectors and the exact fallback used where
  PostgreSQL lacks pgvector; plus the HNSW answers' recall@10 against the exact ones. Goal: hybrid
  p95 < 50 ms.

Run from the repository root: `.venv/bin/python bench/knowledge.py [--chunks 100000]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.timing import p95  # noqa: E402
from knowledge import embedding, search, stores  # noqa: E402
from migrations.run import upgrade  # noqa: E402
from models import knowledge as kb_store  # noqa: E402
from models.db import session_factory, session_scope  # noqa: E402
from models.knowledge import KnowledgeChunk  # noqa: E402
from models.orgs import create_org  # noqa: E402
from worker.knowledge import ingest  # noqa: E402

QUESTIONS = REPO / "bench" / "data" / "knowledge_questions.jsonl"
MODEL = embedding.DEFAULT_MODEL
GOAL_RECALL, GOAL_P95_MS = 0.85, 50.0


def _flat(value: str) -> str:
    return " ".join(value.split())


def new_base(sessions: sessionmaker[Session], name: str, chunk_size: int = 800,
             chunk_overlap: int = 100) -> tuple[uuid.UUID, uuid.UUID]:
    """A new organization and knowledge base with the defaults; returns their ids."""
    with session_scope(sessions) as session:
        org = create_org(session, name=f"bench-{uuid.uuid4().hex[:6]}")
        kb = kb_store.create_base(session, org_id=org.id, name=name, description="", embedding_model=MODEL,
                                  dimensions=embedding.MODELS[MODEL], chunk_size=chunk_size,
                                  chunk_overlap=chunk_overlap)
        return org.id, kb.id


def add_and_ingest(sessions: sessionmaker[Session], kb_id: uuid.UUID, filename: str, content: bytes) -> float:
    """Upload-and-ingest a Markdown document as the worker does; returns the ingestion's seconds."""
    with session_scope(sessions) as session:
        kb = session.get_one(kb_store.KnowledgeBase, kb_id)
        doc = kb_store.add_document(session, kb=kb, filename=filename, format="markdown", content=content,
                                    sha256=hashlib.sha256(content).hexdigest(), meta={})
        doc_id = doc.id
    start = time.perf_counter()
    assert ingest(sessions, doc_id, 1) == "ready"
    return time.perf_counter() - start


def chunk_count(sessions: sessionmaker[Session], kb_id: uuid.UUID) -> int:
    """How many chunks the knowledge base has."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(KnowledgeChunk)
                                  .where(KnowledgeChunk.kb_id == kb_id)) or 0)


def recall(folder: Path) -> dict[str, Any]:
    """Recall@5 of the labelled questions over the README, by search mode."""
    url = f"sqlite:///{folder / 'recall.db'}"
    upgrade(url)
    sessions = session_factory(url)
    _, kb_id = new_base(sessions, "readme")
    readme = (REPO / "README.md").read_bytes()
    add_and_ingest(sessions, kb_id, "README.md", readme)
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    embedder = embedding.embedder(MODEL)
    found: dict[str, Any] = {"questions": len(questions), "chunks": chunk_count(sessions, kb_id)}
    with sessions() as session:
        kb = session.get_one(kb_store.KnowledgeBase, kb_id)
        index = stores.index_for(session.get_bind())  # type: ignore[arg-type]
        chunks = [_flat(t) for t in session.scalars(text("SELECT text FROM knowledge_chunks"))]
        answerable = [q for q in questions if any(_flat(q["answer"]) in c for c in chunks)]
        found["answerable"] = len(answerable)
        misses: list[str] = []
        modes: tuple[search.Mode, ...] = ("hybrid", "vector", "keyword")
        for mode in modes:
            hits = 0
            for q in answerable:
                top = search.search(session, index=index, kb=kb, embedder=embedder, query=q["question"],
                                    top_k=5, mode=mode)
                if any(_flat(q["answer"]) in _flat(h.text) for h in top):
                    hits += 1
                elif mode == "hybrid":
                    misses.append(q["question"])
            found[mode] = round(hits / max(1, len(answerable)), 3)
        # The baseline fusion: both rankings 50 deep, equal weights (what search.py improved on).
        hits = 0
        for q in answerable:
            vector = embedder.embed([q["question"]])[0]
            near = index.nearest(session, kb_id=kb_id, dimensions=kb.dimensions, query=vector, k=50)
            words = index.keyword(session, kb_id=kb_id, query=q["question"], k=50, document_ids=None)
            fused = search.fuse([(1.0, [c for c, _ in near]), (1.0, words)])[:5]
            texts = session.scalars(select(KnowledgeChunk.text).where(KnowledgeChunk.id.in_(fused)))
            hits += any(_flat(q["answer"]) in _flat(t) for t in texts)
        found["hybrid_plain_rrf"] = round(hits / max(1, len(answerable)), 3)
        found["hybrid_misses"] = misses
    return found


def throughput(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Chunks per second ingesting the README repeated 20 times as one document."""
    _, kb_id = new_base(sessions, "throughput")
    readme = (REPO / "README.md").read_bytes()
    seconds = add_and_ingest(sessions, kb_id, "README-x20.md", b"\n\n".join([readme] * 20))
    chunks = chunk_count(sessions, kb_id)
    return {"chunks": chunks, "seconds": round(seconds, 2), "chunks_per_s": round(chunks / seconds, 1)}


def stdlib_lines(limit: int) -> list[str]:
    """Distinct lines of text (40+ characters) from the Python standard library's sources."""
    seen: dict[str, None] = {}
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        for line in lines:
            line = line.strip()
            if len(line) >= 40:
                seen[line] = None
                if len(seen) >= limit:
                    return list(seen)
    return list(seen)


def load_big(sessions: sessionmaker[Session], n: int
             ) -> tuple[uuid.UUID, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A knowledge base of `n` chunks (100 documents) indexed by pgvector, its HNSW index built once
    after the rows are in (as `CREATE INDEX` on a loaded table does fastest)."""
    _, kb_id = new_base(sessions, "big")
    lines = stdlib_lines(n)
    n = len(lines)
    started = time.perf_counter()
    vectors = embedding.embedder(MODEL).embed(lines)
    embed_s = time.perf_counter() - started
    per_doc = (n + 99) // 100
    index = stores.PgVectorIndex()
    with sessions() as session:
        assert stores.has_pgvector(session.get_bind()), "this PostgreSQL has no pgvector"  # type: ignore[arg-type]
    chunk_ids: list[int] = []
    with session_scope(sessions) as session:
        kb = session.get_one(kb_store.KnowledgeBase, kb_id)
        index.create_table(session, kb_id=kb_id, dimensions=256)
        for d in range(100):
            part = range(d * per_doc, min(n, (d + 1) * per_doc))
            if not part:
                break
            doc = kb_store.add_document(session, kb=kb, filename=f"part-{d}.txt", format="text", content=b"-",
                                        sha256="-", meta={"part": d})
            ids = session.scalars(insert(KnowledgeChunk).returning(KnowledgeChunk.id), [
                {"kb_id": kb_id, "document_id": doc.id, "position": i - part.start, "section": "",
                 "page": None, "text": lines[i], "embedding": embedding.to_bytes(vectors[i])}
                for i in part]).all()
            chunk_ids.extend(ids)
            stores.register(session)
            session.execute(text(f"INSERT INTO {stores.vec_table(kb_id)} (chunk_id, tsv, embedding) "
                                 "VALUES (:id, to_tsvector('english', :t), :v)"),
                            [{"id": cid, "t": lines[i], "v": vectors[i]}
                             for cid, i in zip(ids, part, strict=True)])
    load_s = time.perf_counter() - started - embed_s
    started = time.perf_counter()
    with session_scope(sessions) as session:
        session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        index.create_indexes(session, kb_id=kb_id)
    print(json.dumps({"loaded": n, "embed_s": round(embed_s, 1), "insert_s": round(load_s, 1),
                      "index_build_s": round(time.perf_counter() - started, 1)}), file=sys.stderr)
    return kb_id, vectors, np.asarray(chunk_ids, dtype=np.int64)


def latency(sessions: sessionmaker[Session], n: int, queries: int) -> dict[str, Any]:
    """Query latencies at `n` chunks: HNSW, hybrid search, brute force and the exact fallback."""
    kb_id, vectors, ids = load_big(sessions, n)
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    texts = (questions * (queries // len(questions) + 1))[:queries]
    embedder = embedding.embedder(MODEL)
    qv = embedder.embed(texts)
    pg, fallback = stores.PgVectorIndex(), stores.ExactIndex()
    timings: dict[str, list[float]] = {"hnsw_k10": [], "hybrid_search": [], "brute_force_numpy": [],
                                       "exact_fallback": []}
    overlap = []
    with sessions() as session:
        kb = session.get_one(kb_store.KnowledgeBase, kb_id)
        fallback.nearest(session, kb_id=kb_id, dimensions=256, query=qv[0], k=50)  # its one read of the rows
        for i, query in enumerate(qv):
            start = time.perf_counter()
            near = pg.nearest(session, kb_id=kb_id, dimensions=256, query=query, k=10)
            timings["hnsw_k10"].append((time.perf_counter() - start) * 1000)
            session.commit()
            start = time.perf_counter()
            search.search(session, index=pg, kb=kb, embedder=embedder, query=texts[i], top_k=5)
            timings["hybrid_search"].append((time.perf_counter() - start) * 1000)
            session.commit()
            start = time.perf_counter()
            exact = stores._top(ids, vectors, query, 10)
            timings["brute_force_numpy"].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            fallback.nearest(session, kb_id=kb_id, dimensions=256, query=query, k=10)
            timings["exact_fallback"].append((time.perf_counter() - start) * 1000)
            session.commit()
            overlap.append(len({c for c, _ in near} & {c for c, _ in exact}) / 10)
    return {"chunks": len(vectors), "queries": len(qv),
            **{name: {"p50": round(statistics.median(v), 2), "p95": round(p95(v), 2)}
               for name, v in timings.items()},
            "hnsw_recall_at_10_vs_exact": round(statistics.mean(overlap), 3)}


def pgvector_sessions(folder: Path) -> tuple[Any, sessionmaker[Session]]:
    """A private PostgreSQL with pgvector (pgserver), migrated; the server and a session factory."""
    from pgserver import get_server  # type: ignore[attr-defined]

    server = get_server(folder / "pg", cleanup_mode="stop")
    socket_dir = server.get_uri().split("host=", 1)[1]
    admin = create_engine(f"postgresql+psycopg://postgres@/postgres?host={socket_dir}",
                          isolation_level="AUTOCOMMIT")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"postgresql+psycopg://postgres@/{name}?host={socket_dir}"
    upgrade(url)
    return server, session_factory(url)


def main() -> None:
    """Measure and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mantle-bench-knowledge-"))
    out: dict[str, Any] = {"bench": "knowledge", "model": MODEL}
    out["recall_at_5"] = recall(folder)
    sqlite_url = f"sqlite:///{folder / 'throughput.db'}"
    upgrade(sqlite_url)
    out["ingest_sqlite_vec"] = throughput(session_factory(sqlite_url))
    server, sessions = pgvector_sessions(folder)
    try:
        out["ingest_pgvector"] = throughput(sessions)
        out["query_ms_pgvector"] = latency(sessions, args.chunks, args.queries)
    finally:
        server.cleanup()
    hybrid_p95 = out["query_ms_pgvector"]["hybrid_search"]["p95"]
    recall_met = out["recall_at_5"]["hybrid"] >= GOAL_RECALL
    out["goals"] = {"recall_at_5": f">= {GOAL_RECALL}: {'met' if recall_met else 'missed'}",
                    "hybrid_p95_ms": f"< {GOAL_P95_MS}: {'met' if hybrid_p95 < GOAL_P95_MS else 'missed'}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
