"""The pgvector path, on a private PostgreSQL 16 that carries the extension (the `pgserver` wheel):
the migrations build exactly the ORM's schema there too, ingestion makes a vector table with an
HNSW index that answers the nearest-neighbour query, a deleted document's vectors go with it, and
downgrading removes the vector tables as well."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from knowledge import stores
from migrations.run import downgrade, upgrade
from models import knowledge as kb_store
from models.db import make_engine, session_factory, session_scope
from models.orgs import create_org
from tests.integration.test_migrations import schema_diff
from worker.knowledge import KnowledgeSearch, ingest

GUIDE = b"""# Field guide

## Owls
Barn owls hunt voles over rough grassland at dusk and swallow them whole.

## Herons
Grey herons stand motionless in shallow water, waiting for fish and frogs.

## Swifts
Swifts eat, drink and even sleep on the wing, landing only to nest.
"""


@pytest.fixture(scope="module")
def pgvector_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database on a private PostgreSQL server with pgvector, stopped afterwards."""
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pgvector"), cleanup_mode="stop")
    socket_dir = Path(server.get_uri().split("host=", 1)[1])
    admin = create_engine(f"postgresql+psycopg://postgres@/postgres?host={socket_dir}",
                          isolation_level="AUTOCOMMIT")
    name = f"mantle_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    yield f"postgresql+psycopg://postgres@/{name}?host={socket_dir}"
    server.cleanup()


def test_pgvector_indexes_searches_and_migrates(pgvector_url: str) -> None:
    upgrade(pgvector_url)
    assert schema_diff(pgvector_url) == []
    engine = make_engine(pgvector_url)
    assert stores.describe(engine) == "pgvector"

    sessions = session_factory(pgvector_url)
    with session_scope(sessions) as session:
        org = create_org(session, name="birders")
        kb = kb_store.create_base(session, org_id=org.id, name="guide", description="",
                                  embedding_model="wordllama-l2-256", dimensions=256, chunk_size=200,
                                  chunk_overlap=0)
        doc = kb_store.add_document(session, kb=kb, filename="guide.md", format="markdown", content=GUIDE,
                                    sha256=hashlib.sha256(GUIDE).hexdigest(), meta={})
        org_id, kb_id, doc_id = org.id, kb.id, doc.id
    assert ingest(sessions, doc_id, 1) == "ready"

    table = stores.vec_table(kb_id)
    with engine.connect() as conn:
        indexes = [r[0] for r in conn.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"),
                                              {"t": table})]
        assert any("USING hnsw (embedding vector_cosine_ops)" in i for i in indexes), indexes
        assert conn.scalar(text(f"SELECT count(*) FROM {table}")) == 3
        conn.execute(text("SET enable_seqscan = off"))  # three rows: make the planner show the index
        plan = "\n".join(r[0] for r in conn.execute(text(
            f"EXPLAIN SELECT chunk_id FROM {table} ORDER BY embedding <=> "
            f"(SELECT embedding FROM {table} LIMIT 1) LIMIT 5")))
        assert f"{table}_hnsw" in plan, plan

    search = KnowledgeSearch(session_factory(pgvector_url, readonly=True))
    for mode, query, section in [("vector", "Which birds hunt voles at dusk?", "Owls"),
                                 ("keyword", "herons waiting for fish", "Herons"),
                                 ("hybrid", "Which bird can sleep on the wing?", "Swifts")]:
        top = search.search(org_id, "guide", query, top_k=1, min_score=None, mode=mode,  # type: ignore[arg-type]
                            document_ids=None, metadata=None)
        assert [t["section"] for t in top] == [f"Field guide › {section}"], (mode, top)

    with session_scope(sessions) as session:
        session.delete(kb_store.get_document(session, org_id=org_id, kb_id=kb_id, document_id=doc_id))
    with engine.connect() as conn:
        assert conn.scalar(text(f"SELECT count(*) FROM {table}")) == 0  # gone with their chunks
    engine.dispose()

    downgrade(pgvector_url, "base")
    check = make_engine(pgvector_url)
    assert set(inspect(check).get_table_names()) <= {"alembic_version"}
    check.dispose()
