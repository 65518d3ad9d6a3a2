"""run retention: organization and app policies (keep days, keep runs), tombstones of pruned runs,
and indexes on runs.retry_of / runs.rerun_of (deleting a run sets them to NULL where they name it)

Revision ID: 0021_retention
Revises: 0020_app_tools
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0021_retention"
down_revision: str | None = "0020_app_tools"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, models.base.UTCDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "org_retention",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("keep_days", sa.Integer(), nullable=True),
        sa.Column("keep_runs", sa.Integer(), nullable=True),
        _time("updated_at"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE",
                                name=op.f("fk_org_retention_org_id_organizations")),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_retention")),
    )
    op.create_table(
        "app_retention",
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("keep_days", sa.Integer(), nullable=True),
        sa.Column("keep_runs", sa.Integer(), nullable=True),
        _time("updated_at"),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_app_retention_app_id_apps"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE",
                                name=op.f("fk_app_retention_org_id_organizations")),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_app_retention")),
    )
    op.create_index(op.f("ix_app_retention_org_id"), "app_retention", ["org_id"], unique=False)
    op.create_table(
        "pruned_runs",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        _time("pruned_at"),
        sa.Column("keep_days", sa.Integer(), nullable=True),
        sa.Column("keep_runs", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_pruned_runs_app_id_apps"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE",
                                name=op.f("fk_pruned_runs_org_id_organizations")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_pruned_runs")),
    )
    op.create_index(op.f("ix_pruned_runs_app_id"), "pruned_runs", ["app_id"], unique=False)
    op.create_index(op.f("ix_pruned_runs_org_id"), "pruned_runs", ["org_id"], unique=False)
    op.create_index(op.f("ix_pruned_runs_pruned_at"), "pruned_runs", ["pruned_at"], unique=False)
    for column in ("retry_of", "rerun_of"):
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(f"ix_runs_{column}", "runs", [column], unique=False, postgresql_where=where,
                        sqlite_where=where)


def downgrade() -> None:
    op.drop_index("ix_runs_rerun_of", table_name="runs")
    op.drop_index("ix_runs_retry_of", table_name="runs")
    op.drop_index(op.f("ix_pruned_runs_pruned_at"), table_name="pruned_runs")
    op.drop_index(op.f("ix_pruned_runs_org_id"), table_name="pruned_runs")
    op.drop_index(op.f("ix_pruned_runs_app_id"), table_name="pruned_runs")
    op.drop_table("pruned_runs")
    op.drop_index(op.f("ix_app_retention_org_id"), table_name="app_retention")
    op.drop_table("app_retention")
    op.drop_table("org_retention")
