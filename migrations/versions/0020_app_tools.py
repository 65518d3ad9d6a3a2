"""apps offered as MCP tools: a flag, a tool name unique in the organization, a description

Revision ID: 0020_app_tools
Revises: 0019_composition
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_app_tools"
down_revision: str | None = "0019_composition"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tool", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("tool_name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("tool_description", sa.Text(), server_default="", nullable=False))
        batch_op.create_unique_constraint(batch_op.f("uq_apps_org_id_tool_name"), ["org_id", "tool_name"])


def downgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_apps_org_id_tool_name"), type_="unique")
        batch_op.drop_column("tool_description")
        batch_op.drop_column("tool_name")
        batch_op.drop_column("tool")
