"""share links and their usage counters

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-27 10:12:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "shares",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=True),
        sa.Column("access_code_hash", sa.String(length=200), nullable=True),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("visitor_per_minute", sa.Integer(), nullable=True),
        sa.Column("link_per_minute", sa.Integer(), nullable=True),
        sa.Column("daily_quota", sa.Integer(), nullable=True),
        sa.Column("embed_origins", models.base.JSONType, nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_shares_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_shares_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shares")),
        sa.UniqueConstraint("slug", name=op.f("uq_shares_slug")),
    )
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shares_app_id"), ["app_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shares_org_id"), ["org_id"], unique=False)

    op.create_table(
        "share_usage",
        sa.Column("share_id", sa.Uuid(), nullable=False),
        sa.Column("bucket", sa.String(length=80), nullable=False),
        sa.Column("window_start", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["share_id"], ["shares.id"], name=op.f("fk_share_usage_share_id_shares"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("share_id", "bucket", "window_start", name=op.f("pk_share_usage")),
    )


def downgrade() -> None:

    op.drop_table("share_usage")
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shares_org_id"))
        batch_op.drop_index(batch_op.f("ix_shares_app_id"))

    op.drop_table("shares")
