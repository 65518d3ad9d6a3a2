"""Join the policies and integrations branches into one head.

Revision ID: 0010
Revises: 0008, 0009
"""

from collections.abc import Sequence

revision: str = "0010"
down_revision: str | Sequence[str] | None = ("0008", "0009")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: the branches touch separate tables."""


def downgrade() -> None:
    """Nothing to change."""
