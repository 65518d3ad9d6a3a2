"""organization policies: versioned governance rules, attached to apps, pinned on published versions

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f("fk_policies_org_id_organizations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_policies_org_id_name")),
    )
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policies_org_id"), ["org_id"], unique=False)

    op.create_table(
        "app_policies",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_app_policies_app_id_apps"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["policy_id"], ["policies.id"],
                                name=op.f("fk_app_policies_policy_id_policies"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "policy_id", name=op.f("pk_app_policies")),
    )
    with op.batch_alter_table("app_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_policies_policy_id"), ["policy_id"], unique=False)

    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("rules", models.base.JSONType, nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["policy_id"], ["policies.id"],
                                name=op.f("fk_policy_versions_policy_id_policies"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint("policy_id", "number", name=op.f("uq_policy_versions_policy_id_number")),
    )
    op.create_table(
        "app_version_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("rules", models.base.JSONType, nullable=False),
        sa.ForeignKeyConstraint(["policy_id"], ["policies.id"],
                                name=op.f("fk_app_version_policies_policy_id_policies"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["version_id"], ["app_versions.id"],
                                name=op.f("fk_app_version_policies_version_id_app_versions"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_version_policies")),
        sa.UniqueConstraint("version_id", "position",
                            name=op.f("uq_app_version_policies_version_id_position")),
    )


def downgrade() -> None:
    op.drop_table("app_version_policies")
    op.drop_table("policy_versions")
    with op.batch_alter_table("app_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_policies_policy_id"))
    op.drop_table("app_policies")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policies_org_id"))
    op.drop_table("policies")
