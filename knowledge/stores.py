"""Where chunks are indexed for search, on each database Mantle runs on.

* `sqlite-vec` (SQLite): a `vec0` virtual table per knowledge base (`knowledge_vec_<id>`, rowid =
  chunk id, cosine distance) and one FTS5 table (`knowledge_fts`, Porter stemming) for keywords.
* `pgvector` (PostgreSQL with the extension): a table per knowledge base (`knowledge_vec_<id>`)
  holding each chunk's `vector(n)` (HNSW index, cosine) and `tsvector` (English, GIN index).
* `exact` (PostgreSQL without the extension): the same table without the vectors; the knowledge
  base's embeddings are read from the chunk rows once per process and scanned with numpy (re-read
  when its chunks change). `bench/knowledge.py` measures it beside pgvector.

These tables depend on the database and on each knowledge base's dimensions, so they are created
here when first needed rather than by a migration, and are kept out of the ORM's metadata (which
the migrations must match exactly on both databases). Chunk rows stay the record: every index can
be rebuilt from them.

A filtered search (some documents only) scans the embeddings of those documents exactly instead
of asking the index for more and filtering afterwards, which could return fewer than `top_k`.
"""

from __future__ import annotations

import re
import threading
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import structlog
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from knowledge.embedding import Vectors, from_bytes
from models.knowledge import KnowledgeChunk

log = structlog.get_logger("mantle.knowledge")
_WORD = re.compile(r"\w+", re.UNICODE)
MISSING_PGVECTOR = "pgvector missing: exact search"


def vec_table(kb_id: uuid.UUID) -> str:
    """The name of a knowledge base's vector table (no user text: the id's hex)."""
    return f"knowledge_vec_{kb_id.hex}"


@dataclass(frozen=True, slots=True)
class Indexed:
    """A chunk to index: its id, its unit vector and its text."""

    chunk_id: int
    vector: Vectors
    text: str


class Index(Protocol):
    """The vector and keyword indexes of one database."""

    kind: str

    def add(self, session: Session, *, kb_id: uuid.UUID, dimensions: int, rows: Sequence[Indexed]) -> None:
        """Index new chunks of the knowledge base."""
        ...

    def remove(self, session: Session, *, kb_id: uuid.UUID, chunk_ids: Sequence[int]) -> None:
        """Forget chunks (before their rows are deleted)."""
        ...

    def drop(self, session: Session, *, kb_id: uuid.UUID) -> None:
        """Forget the whole knowledge base (deleted, or its model changed)."""
        ...

    def nearest(self, session: Session, *, kb_id: uuid.UUID, dimensions: int, query: Vectors,
                k: int) -> list[tuple[int, float]]:
        """The `k` chunks nearest the query, as (chunk id, cosine similarity), nearest first."""
        ...

    def keyword(self, session: Session, *, kb_id: uuid.UUID, query: str, k: int,
                document_ids: Sequence[uuid.UUID] | None) -> list[int]:
        """Up to `k` chunk ids matching the query's words, best first."""
        ...


def exact_nearest(session: Session, *, kb_id: uuid.UUID, query: Vectors, k: int,
                  document_ids: Sequence[uuid.UUID] | None = None) -> list[tuple[int, float]]:
    """The `k` nearest chunks by a full scan of their stored embeddings (optionally of some documents)."""
    stmt = select(KnowledgeChunk.id, KnowledgeChunk.embedding).where(KnowledgeChunk.kb_id == kb_id)
    if document_ids is not None:
        stmt = stmt.where(KnowledgeChunk.document_id.in_(document_ids))
    rows = session.execute(stmt).all()
    if not rows:
        return []
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.vstack([from_bytes(r[1]) for r in rows])
    return _top(ids, matrix, query, k)


def _top(ids: np.ndarray[Any, Any], matrix: Vectors, query: Vectors, k: int) -> list[tuple[int, float]]:
    scores = matrix @ query
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best])]
    return [(int(ids[i]), float(scores[i])) for i in best]


def _words(query: str) -> list[str]:
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:64]


class SqliteVecIndex:
    """sqlite-vec for vectors, FTS5 for keywords."""

    kind = "sqlite-vec"

    def _ensure(self, session: Session, kb_id: uuid.UUID, dimensions: int) -> None:
        session.execute(text(f"CREATE VIRTUAL TABLE IF NOT EXISTS {vec_table(kb_id)} USING "
                             f"vec0(embedding float[{int(dimensions)}] distance_metric=cosine)"))
        self._ensure_fts(session)

    @staticmethod
    def _ensure_fts(session: Session) -> None:
        session.execute(text("CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_fts USING "
                             "fts5(text, kb_id UNINDEXED, tokenize='porter unicode61')"))

    def add(self, session: Session, *, kb_id: uuid.UUID, dimensions: int, rows: Sequence[Indexed]) -> None:
        """Index new chunks of the knowledge base."""
        self._ensure(session, kb_id, dimensions)
        session.execute(text(f"INSERT INTO {vec_table(kb_id)}(rowid, embedding) VALUES (:id, :v)"),
                        [{"id": r.chunk_id, "v": np.asarray(r.vector, dtype="<f4").tobytes()} for r in rows])
        session.execute(text("INSERT INTO knowledge_fts(rowid, text, kb_id) VALUES (:id, :t, :kb)"),
                        [{"id": r.chunk_id, "t": r.text, "kb": kb_id.hex} for r in rows])

    def remove(self, session: Session, *, kb_id: uuid.UUID, chunk_ids: Sequence[int]) -> None:
        """Forget chunks (before their rows are deleted)."""
        if not chunk_ids or not self._exists(session, vec_table(kb_id)):
            return
        for start in range(0, len(chunk_ids), 500):
            ids = ",".join(str(int(i)) for i in chunk_ids[start:start + 500])
            session.execute(text(f"DELETE FROM {vec_table(kb_id)} WHERE rowid IN ({ids})"))
            session.execute(text(f"DELETE FROM knowledge_fts WHERE rowid IN ({ids})"))

    def drop(self, session: Session, *, kb_id: uuid.UUID) -> None:
        """Forget the whole knowledge base."""
        session.execute(text(f"DROP TABLE IF EXISTS {vec_table(kb_id)}"))
        if self._exists(session, "knowledge_fts"):
            session.execute(text("DELETE FROM knowledge_fts WHERE kb_id = :kb"), {"kb": kb_id.hex})

    @staticmethod
    def _exists(session: Session, name: str) -> bool:
        return session.scalar(text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": name}) is not None

    def nearest(self, session: Session, *, kb_id: uuid.UUID, dimensions: int, query: Vectors,
                k: int) -> list[tuple[int, float]]:
        """The `k` nearest chunks (sqlite-vec's KNN; it allows k up to 4096)."""
        if not self._exists(session, vec_table(kb_id)):
            return []
        rows = session.execute(text(f"SELECT rowid, distance FROM {vec_table(kb_id)} "
                                    "WHERE embedding MATCH :q AND k = :k ORDER BY distance"),
                               {"q": np.asarray(query, dtype="<f4").tobytes(), "k": min(k, 4096)})
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]

    def keyword(self, session: Session, *, kb_id: uuid.UUID, query: str, k: int,
                document_ids: Sequence[uuid.UUID] | None) -> list[int]:
        """FTS5's BM25 ranking of chunks holding any of the query's words."""
        words = _words(query)
        if not words or not self._exists(session, "knowledge_fts"):
            return []
        match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
        sql = ("SELECT f.rowid FROM knowledge_fts f {join} WHERE knowledge_fts MATCH :m AND f.kb_id = :kb "
               "{where} ORDER BY f.rank LIMIT :k")
        params: dict[str, Any] = {"m": match, "kb": kb_id.hex, "k": k}
        join = where = ""
        if document_ids is not None:
            join = "JOIN knowledge_chunks c ON c.id = f.rowid"
            where = "AND c.document_id IN ({})".format(
                ",".join(f":d{i}" for i in range(len(document_ids))))
            params.update({f"d{i}": d.hex for i, d in enumerate(document_ids)})
        return [int(r[0]) for r in session.execute(text(sql.format(join=join, where=where)), params)]


class PostgresTable:
    """A table per knowledge base of what PostgreSQL indexes: each chunk's `tsvector` (English
    stemming, GIN index) and, with pgvector, its `vector(n)` (HNSW index, cosine). Rows go with
    their chunks (ON DELETE CASCADE)."""

    vectors = False

    def create_table(self, session: Session, *, kb_id: uuid.UUID, dimensions: int) -> None:
        """The knowledge base's table, without its indexes (one creator at a time)."""
        table = vec_table(kb_id)
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": table})
        vector = f", embedding vector({int(dimensions)}) NOT NULL" if self.vectors else ""
        session.execute(text(f"CREATE TABLE IF NOT EXISTS {table} (chunk_id bigint PRIMARY KEY REFERENCES "
                             f"knowledge_chunks(id) ON DELETE CASCADE, tsv tsvector NOT NULL{vector})"))

    def create_indexes(self, session: Session, *, kb_id: uuid.UUID) -> None:
        """Its GIN index (and HNSW index); quickest made once the rows are in, as a bulk load does."""
        table = vec_table(kb_id)
        session.execute(text(f"CREATE INDEX IF NOT EXISTS {table}_tsv ON {table} USING gin (tsv)"))
        if self.vectors:
            session.execute(text(f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} "
                                 "USING hnsw (embedding vector_cosine_ops)"))

    def ensure(self, session: Session, *, kb_id: uuid.UUID, dimensions: int) -> None:
        """The knowledge base's table and its indexes."""
        self.create_table(session, kb_id=kb_id, dimensions=dimensions)
        self.create_indexes(session, kb_id=kb_id)

    @staticmethod
    def _exists(session: Session, kb_id: uuid.UUID) -> bool:
        return session.scalar(text("SELECT to_regclass(:t)"), {"t": vec_table(kb_id)}) is not None

    def add(self, session: Session, *, kb_id: uuid.UUID, dimensions: int, rows: Sequence[Indexed]) -> None:
        """Index new chunks of the knowledge base."""
        self.ensure(session, kb_id=kb_id, dimensions=dimensions)
        if self.vectors:
            register(session)
            session.execute(text(f"INSERT INTO {vec_table(kb_id)} (chunk_id, tsv, embedding) "
                                 "VALUES (:id, to_tsvector('english', :t), :v)"),
                            [{"id": r.chunk_id, "t": r.text, "v": np.asarray(r.vector, dtype=np.float32)}
                             for r in rows])
        else:
            session.execute(text(f"INSERT INTO {vec_table(kb_id)} (chunk_id, tsv) "
                                 "VALUES (:id, to_tsvector('english', :t))"),
                            [{"id": r.chunk_id, "t": r.text} for r in rows])

    def remove(self, session: Session, *, kb_id: uuid.UUID, chunk_ids: Sequence[int]) -> None:
        """Nothing: the rows go with their chunks (ON DELETE CASCADE)."""

    def drop(self, session: Session, *, kb_id: uuid.UUID) -> None:
        """Drop the knowledge base's table."""
        session.execute(text(f"DROP TABLE IF EXISTS {vec_table(kb_id)}"))

    def keyword(self, session: Session, *, kb_id: uuid.UUID, query: str, k: int,
                document_ids: Sequence[uuid.UUID] | None) -> list[int]:
        """ts_rank of chunks matching any of the query's words."""
        words = _words(query)
        if not words or not self._exists(session, kb_id):
            return []
        # Each word through plainto_tsquery (stemmed, stop words dropped), joined with OR.
        sql = ("WITH q AS (SELECT to_tsquery('english', string_agg(NULLIF("
               "plainto_tsquery('english', w)::text, ''), ' | ')) AS q "
               "FROM unnest(CAST(:words AS text[])) AS w) "
               f"SELECT v.chunk_id FROM {vec_table(kb_id)} v, q WHERE q.q IS NOT NULL AND v.tsv @@ q.q "
               f"{{where}} ORDER BY ts_rank(v.tsv, q.q) DESC LIMIT {int(k)}")
        params: dict[str, Any] = {"words": words}
        where = ""
        if document_ids is not None:
            where = "AND v.chunk_id IN (SELECT id FROM knowledge_chunks WHERE document_id = ANY(:docs))"
            params["docs"] = list(document_ids)
        return [int(r[0]) for r in session.execute(text(sql.format(where=where)), params)]


_registered: weakref.WeakSet[Any] = weakref.WeakSet()


def register(session: Session) -> None:
    """Teach this session's psycopg connection the `vector` type (numpy arrays in, binary), once."""
    from pgvector.psycopg import register_vector

    raw: Any = session.connection().connection.driver_connection
    if raw not in _registered:
        register_vector(raw)
        _registered.add(raw)


class PgVectorIndex(PostgresTable):
    """pgvector: HNSW (cosine) over each knowledge base's `vector(n)` column."""

    kind = "pgvector"
    vectors = True

    def nearest(self, session: Session, *, kb_id: uuid.UUID, dimensions: int, query: Vectors,
                k: int) -> list[tuple[int, float]]:
        """The HNSW index's `k` nearest (its candidate list widened to `k` when that is more than 40).

        `k` is written into the statement: psycopg prepares a statement run often, and a generic
        plan that cannot see the LIMIT would scan the table instead of the index."""
        if not self._exists(session, kb_id):
            return []
        register(session)
        if k > 40:
            session.execute(text(f"SET LOCAL hnsw.ef_search = {min(int(k), 1000)}"))
        rows = session.execute(text(f"SELECT chunk_id, embedding <=> :q AS d FROM {vec_table(kb_id)} "
                                    f"ORDER BY embedding <=> :q LIMIT {int(k)}"),
                               {"q": np.asarray(query, dtype=np.float32)})
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows]


@dataclass
class ExactIndex(PostgresTable):
    """No vector index: each knowledge base's embeddings held in memory and scanned exactly."""

    kind: str = "exact"
    _cache: dict[uuid.UUID, tuple[tuple[int, int], np.ndarray[Any, Any], Vectors]] = field(
        default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def drop(self, session: Session, *, kb_id: uuid.UUID) -> None:
        """Drop the knowledge base's table and forget this process's copy of its vectors."""
        super().drop(session, kb_id=kb_id)
        with self._lock:
            self._cache.pop(kb_id, None)

    def nearest(self, session: Session, *, kb_id: uuid.UUID, dimensions: int, query: Vectors,
                k: int) -> list[tuple[int, float]]:
        """A scan of the knowledge base's embeddings, re-read when its chunks changed."""
        from sqlalchemy import func

        count, top = session.execute(select(func.count(), func.max(KnowledgeChunk.id))
                                     .where(KnowledgeChunk.kb_id == kb_id)).one()
        if not count:
            return []
        key = (int(count), int(top))
        with self._lock:
            cached = self._cache.get(kb_id)
        if cached is None or cached[0] != key:
            rows = session.execute(select(KnowledgeChunk.id, KnowledgeChunk.embedding)
                                   .where(KnowledgeChunk.kb_id == kb_id)).all()
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = np.vstack([from_bytes(r[1]) for r in rows])
            cached = (key, ids, matrix)
            with self._lock:
                self._cache[kb_id] = cached
        return _top(cached[1], cached[2], query, k)


_indexes: dict[str, Index] = {}
_indexes_lock = threading.Lock()


def index_for(engine: Engine) -> Index:
    """The index of this database (decided once per process and URL)."""
    key = engine.url.render_as_string(hide_password=False)
    with _indexes_lock:
        found = _indexes.get(key)
        if found is None:
            found = _indexes[key] = _decide(engine)
        return found


def forget(engine: Engine) -> None:
    """Decide this database's index again on next use (after the extension was installed)."""
    with _indexes_lock:
        _indexes.pop(engine.url.render_as_string(hide_password=False), None)


def _decide(engine: Engine) -> Index:
    if engine.dialect.name == "sqlite":
        return SqliteVecIndex()
    if has_pgvector(engine):
        return PgVectorIndex()
    log.warning("knowledge.pgvector_missing",
                msg="PostgreSQL has no pgvector extension: knowledge bases use an exact scan "
                    "(install pgvector, e.g. the pgvector/pgvector image, for an HNSW index)")
    return ExactIndex()


def has_pgvector(engine: Engine) -> bool:
    """Whether the database has pgvector, creating the extension when it is installed but not enabled."""
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        return True
    except DBAPIError:
        with engine.connect() as conn:  # not installed, or not ours to create: is it there anyway?
            return conn.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")) is not None


def describe(engine: Engine) -> str:
    """How this database searches knowledge, as /readyz says it."""
    kind = index_for(engine).kind
    return MISSING_PGVECTOR if kind == "exact" else kind
