"""model usage per call, quotas per organization and their counters, OpenAI-compatible requests

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, models.base.UTCDateTime(timezone=True), nullable=nullable)


def _org(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                   name=op.f(f"fk_{table}_org_id_organizations"), ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "model_usage",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=True),
        sa.Column("version_number", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.Column("completion_id", sa.Uuid(), nullable=True),
        sa.Column("deployment", sa.String(length=100), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        _time("created_at"),
        _org("model_usage"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_usage")),
    )
    op.create_index("ix_model_usage_org_created", "model_usage", ["org_id", "created_at"], unique=False)
    op.create_table(
        "org_quotas",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("tokens_per_day", sa.BigInteger(), nullable=True),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("on_exceed", sa.String(length=10), nullable=False),
        _time("updated_at"),
        _org("org_quotas"),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_quotas")),
    )
    op.create_table(
        "quota_counters",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("window", sa.String(length=30), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        _time("expires_at"),
        _org("quota_counters"),
        sa.PrimaryKeyConstraint("org_id", "window", name=op.f("pk_quota_counters")),
    )
    op.create_table(
        "completions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("deployment", sa.String(length=100), nullable=False),
        sa.Column("request", models.base.JSONType, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("finish_reason", sa.String(length=20), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(length=50), nullable=True),
        _time("created_at"),
        _time("heartbeat_at"),
        _time("finished_at", nullable=True),
        _org("completions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_completions")),
        sa.UniqueConstraint("org_id", "idempotency_key", name=op.f("uq_completions_org_id_idempotency_key")),
    )
    op.create_index("ix_completions_status_heartbeat", "completions", ["status", "heartbeat_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_completions_status_heartbeat", table_name="completions")
    op.drop_table("completions")
    op.drop_table("quota_counters")
    op.drop_table("org_quotas")
    op.drop_index("ix_model_usage_org_created", table_name="model_usage")
    op.drop_table("model_usage")
