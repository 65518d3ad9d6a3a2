"""Join the feature branches (reviews, shares, SMS, model deployments) into one head.

Revision ID: 0007
Revises: 0003, 0004, 0005, 0006
"""

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | Sequence[str] | None = ("0003", "0004", "0005", "0006")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: the branches touch separate tables."""


def downgrade() -> None:
    """Nothing to change."""
