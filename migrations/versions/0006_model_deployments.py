"""model deployments defined by organizations

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-26 19:23:33.101224
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0006"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_deployments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("spec", models.base.JSONType, nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_model_deployments_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_deployments")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_model_deployments_org_id_name")),
    )
    with op.batch_alter_table("model_deployments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_deployments_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_deployments_org_id"))
    op.drop_table("model_deployments")
