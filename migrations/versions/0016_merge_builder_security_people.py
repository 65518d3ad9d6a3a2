"""Join the branches of the builder, security and people work into one head.

Revision ID: 0016
Revises: 0011, 0012, 0014, 0015
"""

from collections.abc import Sequence

revision: str = "0016"
down_revision: str | Sequence[str] | None = ("0011", "0012", "0014", "0015")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: the branches touch separate tables or columns."""


def downgrade() -> None:
    """Nothing to change."""
