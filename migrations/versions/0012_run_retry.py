"""runs: node tests, retries and re-runs (kind, test_node_id, retry_of, rerun_of; node_runs.reused)

Revision ID: 0012
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing runs are app runs and their node runs were executed: the server defaults say so.
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=20), server_default="run", nullable=False))
        batch_op.add_column(sa.Column("test_node_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("retry_of", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("rerun_of", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_runs_retry_of_runs"), "runs", ["retry_of"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_foreign_key(batch_op.f("fk_runs_rerun_of_runs"), "runs", ["rerun_of"], ["id"],
                                    ondelete="SET NULL")
    with op.batch_alter_table("node_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reused", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("node_runs", schema=None) as batch_op:
        batch_op.drop_column("reused")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_runs_rerun_of_runs"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_runs_retry_of_runs"), type_="foreignkey")
        batch_op.drop_column("rerun_of")
        batch_op.drop_column("retry_of")
        batch_op.drop_column("test_node_id")
        batch_op.drop_column("kind")
