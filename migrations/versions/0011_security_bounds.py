"""security bounds: the hosts and URL prefixes each credential may be sent to

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing credentials allow no URL until an admin lists some: `http.request` refuses to send
    # them anywhere meanwhile, and says so in the node's error.
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allowed_urls", models.base.JSONType, server_default=sa.text("'[]'"),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_column("allowed_urls")
