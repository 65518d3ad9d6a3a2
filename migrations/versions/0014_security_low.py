"""security: phone numbers unique per organization, not across organizations

Revision ID: 0014
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A route no longer claims a number for every tenant: each organization routes the numbers
    # its own Twilio account owns, and a webhook by number is matched by the signing account.
    with op.batch_alter_table("sms_numbers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_sms_numbers_number"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_sms_numbers_org_id_number"), ["org_id", "number"])
        batch_op.create_index("ix_sms_numbers_number", ["number"], unique=False)


def downgrade() -> None:
    # Fails if two organizations route one number meanwhile: remove one route first.
    with op.batch_alter_table("sms_numbers", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_numbers_number")
        batch_op.drop_constraint(batch_op.f("uq_sms_numbers_org_id_number"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_sms_numbers_number"), ["number"])
