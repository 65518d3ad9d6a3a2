"""browser sessions and one-time sign-in links

Revision ID: 0013
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0013"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _table(name: str, *extra: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(
        name,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=False),
        *extra,
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f(f"fk_{name}_key_id_api_keys"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f(f"fk_{name}_org_id_organizations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("digest", name=op.f(f"uq_{name}_digest")),
    )
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{name}_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f(f"ix_{name}_key_id"), ["key_id"], unique=False)


def upgrade() -> None:
    _table("browser_sessions",
           sa.Column("csrf_token", sa.String(length=64), nullable=False),
           sa.Column("revoked_at", models.base.UTCDateTime(timezone=True), nullable=True))
    _table("sign_in_links",
           sa.Column("used_at", models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_table("sign_in_links")
    op.drop_table("browser_sessions")
