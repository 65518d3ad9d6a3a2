"""mantle_check(ok, message): raises when `ok` is not true, so a statement sent ahead of the
answer it depends on (in one round trip with the writes it guards) aborts the transaction

Revision ID: 0022_checks
Revises: 0021_retention
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_checks"
down_revision: str | None = "0021_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLSTATE of the error it raises: class MN (Mantle), caught by its callers by this code.
CHECK_FAILED = "MN001"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no round trips to save: nothing there sends a check ahead
    op.execute(f"""
        CREATE FUNCTION mantle_check(ok boolean, message text) RETURNS boolean
        LANGUAGE plpgsql AS $$
        BEGIN
            IF ok IS NOT TRUE THEN
                RAISE EXCEPTION USING ERRCODE = '{CHECK_FAILED}', MESSAGE = message;
            END IF;
            RETURN true;
        END $$
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION mantle_check(boolean, text)")
