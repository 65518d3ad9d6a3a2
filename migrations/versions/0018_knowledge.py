"""knowledge bases, their documents, chunks and ingestion events

The vector and keyword indexes are not made here: their shape depends on the database and on each
knowledge base's embedding dimensions (a sqlite-vec `vec0` table per knowledge base and an FTS5
table on SQLite; a pgvector table with an HNSW index per knowledge base and a full-text GIN index
where PostgreSQL has pgvector). `knowledge/stores.py` creates them when first needed, so this
revision builds exactly the ORM's tables on both databases, with or without the extension.

Revision ID: 0018_knowledge
Revises: 0017
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0018_knowledge"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, models.base.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"),
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "knowledge_bases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("embedding_model", sa.String(length=100), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap", sa.Integer(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _fk("knowledge_bases", "org_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_bases")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_knowledge_bases_org_id_name")),
    )
    op.create_index(op.f("ix_knowledge_bases_org_id"), "knowledge_bases", ["org_id"], unique=False)
    op.create_table(
        "knowledge_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("kb_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("metadata", models.base.JSONType, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("chunks_embedded", sa.Integer(), nullable=False),
        sa.Column("ingestion", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.String(length=100), nullable=True),
        _time("indexed_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _fk("knowledge_documents", "org_id", "organizations"),
        _fk("knowledge_documents", "kb_id", "knowledge_bases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_documents")),
    )
    op.create_index(op.f("ix_knowledge_documents_org_id"), "knowledge_documents", ["org_id"], unique=False)
    op.create_index("ix_knowledge_documents_kb_id_created_at", "knowledge_documents", ["kb_id", "created_at"],
                    unique=False)
    op.create_table(
        "knowledge_chunks",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("kb_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(length=500), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        _fk("knowledge_chunks", "kb_id", "knowledge_bases"),
        _fk("knowledge_chunks", "document_id", "knowledge_documents"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_chunks")),
    )
    op.create_index("ix_knowledge_chunks_kb_id_id", "knowledge_chunks", ["kb_id", "id"], unique=False)
    op.create_index("ix_knowledge_chunks_document_id_position", "knowledge_chunks",
                    ["document_id", "position"], unique=False)
    op.create_table(
        "knowledge_events",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("kb_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        _time("at"),
        sa.Column("data", models.base.JSONType, nullable=False),
        _fk("knowledge_events", "kb_id", "knowledge_bases"),
        _fk("knowledge_events", "document_id", "knowledge_documents"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_events")),
    )
    op.create_index("ix_knowledge_events_kb_id_id", "knowledge_events", ["kb_id", "id"], unique=False)


def downgrade() -> None:
    # The stores' own index tables go first: they refer to the chunks (PostgreSQL) or name them.
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for name in inspector.get_table_names():
        if re.fullmatch(r"knowledge_vec_[0-9a-f]{32}|knowledge_fts", name):  # not their shadow tables
            op.execute(f'DROP TABLE IF EXISTS "{name}"')
    op.drop_index("ix_knowledge_events_kb_id_id", table_name="knowledge_events")
    op.drop_table("knowledge_events")
    op.drop_index("ix_knowledge_chunks_document_id_position", table_name="knowledge_chunks")
    op.drop_index("ix_knowledge_chunks_kb_id_id", table_name="knowledge_chunks")
    op.drop_table("knowledge_chunks")
    op.drop_index("ix_knowledge_documents_kb_id_created_at", table_name="knowledge_documents")
    op.drop_index(op.f("ix_knowledge_documents_org_id"), table_name="knowledge_documents")
    op.drop_table("knowledge_documents")
    op.drop_index(op.f("ix_knowledge_bases_org_id"), table_name="knowledge_bases")
    op.drop_table("knowledge_bases")
