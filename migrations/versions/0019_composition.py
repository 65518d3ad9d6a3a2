"""runs: child runs of `app.call` and `flow.map` nodes (parent_run_id, parent_node_id, parent_attempt,
item_index)

Revision ID: 0019_composition
Revises: 0018_knowledge
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_composition"
down_revision: str | None = "0018_knowledge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNIQUE = "uq_runs_parent_run_id_parent_node_id_parent_attempt_item_index"


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_run_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("parent_node_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("parent_attempt", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("item_index", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_runs_parent_run_id_runs"), "runs", ["parent_run_id"],
                                    ["id"], ondelete="SET NULL")
        batch_op.create_unique_constraint(batch_op.f(_UNIQUE),
                                          ["parent_run_id", "parent_node_id", "parent_attempt", "item_index"])


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(_UNIQUE), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_runs_parent_run_id_runs"), type_="foreignkey")
        batch_op.drop_column("item_index")
        batch_op.drop_column("parent_attempt")
        batch_op.drop_column("parent_node_id")
        batch_op.drop_column("parent_run_id")
