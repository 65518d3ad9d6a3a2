"""credentials; SMS phone-number routes, inbound and outbound messages, opt-outs

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-26 18:34:07.978935
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("public", models.base.JSONType, nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_credentials_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("org_id", "type", "name", name=op.f("uq_credentials_org_id_type_name")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credentials_org_id"), ["org_id"], unique=False)

    op.create_table(
        "sms_opt_outs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("keyword", sa.String(length=20), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_sms_opt_outs_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_opt_outs")),
        sa.UniqueConstraint("org_id", "phone", name=op.f("uq_sms_opt_outs_org_id_phone")),
    )
    op.create_table(
        "sms_numbers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=True),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_sms_numbers_app_id_apps"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_sms_numbers_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_numbers")),
        sa.UniqueConstraint("number", name=op.f("uq_sms_numbers_number")),
    )
    with op.batch_alter_table("sms_numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_numbers_app_id"), ["app_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_numbers_org_id"), ["org_id"], unique=False)

    op.create_table(
        "sms_inbound",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("route_id", sa.Uuid(), nullable=True),
        sa.Column("app_id", sa.Uuid(), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=64), nullable=False),
        sa.Column("to_number", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("media_urls", models.base.JSONType, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("answer_state", sa.String(length=10), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_sms_inbound_app_id_apps"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_sms_inbound_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["sms_numbers.id"],
            name=op.f("fk_sms_inbound_route_id_sms_numbers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_sms_inbound_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_inbound")),
        sa.UniqueConstraint("org_id", "message_sid", name=op.f("uq_sms_inbound_org_id_message_sid")),
    )
    with op.batch_alter_table("sms_inbound", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_inbound_app_phone", ["app_id", "from_number", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sms_inbound_run_id"), ["run_id"], unique=False)

    op.create_table(
        "sms_outbound",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.Column("inbound_id", sa.Uuid(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("to_number", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("via", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=True),
        sa.Column("error_code", sa.String(length=20), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_sms_outbound_app_id_apps"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["inbound_id"],
            ["sms_inbound.id"],
            name=op.f("fk_sms_outbound_inbound_id_sms_inbound"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_sms_outbound_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_sms_outbound_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbound")),
        sa.UniqueConstraint("idempotency_key", "part", name=op.f("uq_sms_outbound_idempotency_key_part")),
        sa.UniqueConstraint("message_sid", name=op.f("uq_sms_outbound_message_sid")),
    )
    with op.batch_alter_table("sms_outbound", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_outbound_app_phone", ["app_id", "to_number", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sms_outbound_inbound_id"), ["inbound_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_outbound_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sms_outbound", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_outbound_run_id"))
        batch_op.drop_index(batch_op.f("ix_sms_outbound_inbound_id"))
        batch_op.drop_index("ix_sms_outbound_app_phone")

    op.drop_table("sms_outbound")
    with op.batch_alter_table("sms_inbound", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_inbound_run_id"))
        batch_op.drop_index("ix_sms_inbound_app_phone")

    op.drop_table("sms_inbound")
    with op.batch_alter_table("sms_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_numbers_org_id"))
        batch_op.drop_index(batch_op.f("ix_sms_numbers_app_id"))

    op.drop_table("sms_numbers")
    op.drop_table("sms_opt_outs")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_org_id"))

    op.drop_table("credentials")
