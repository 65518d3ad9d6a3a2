"""integrations: webhook endpoints and app schedules

Revision ID: 0009
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_webhook_endpoints_app_id_apps"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f("fk_webhook_endpoints_org_id_organizations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("app_id", name=op.f("uq_webhook_endpoints_app_id")),
        sa.UniqueConstraint("digest", name=op.f("uq_webhook_endpoints_digest")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_endpoints_org_id"), ["org_id"], unique=False)

    op.create_table(
        "app_schedules",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("next_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_tick_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_app_schedules_app_id_apps"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f("fk_app_schedules_org_id_organizations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_app_schedules")),
    )
    with op.batch_alter_table("app_schedules", schema=None) as batch_op:
        batch_op.create_index("ix_app_schedules_next_at", ["next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_app_schedules_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("app_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_schedules_org_id"))
        batch_op.drop_index("ix_app_schedules_next_at")
    op.drop_table("app_schedules")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_org_id"))
    op.drop_table("webhook_endpoints")
