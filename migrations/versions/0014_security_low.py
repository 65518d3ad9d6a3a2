"""security: phone numbers unique per organization, not across organizations; webhook nonces;
organizations' model deployments unpinned (pinning is the operator's)

Revision ID: 0014
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

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

    # Each signed webhook post's signature, accepted once (a captured post sent again is refused).
    op.create_table(
        "webhook_nonces",
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("seen_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"], ondelete="CASCADE",
                                name=op.f("fk_webhook_nonces_endpoint_id_webhook_endpoints")),
        sa.PrimaryKeyConstraint("endpoint_id", "signature", name=op.f("pk_webhook_nonces")),
    )

    # Pinning became the operator's setting: no organization's deployment stays pinned.
    deployments = sa.table("model_deployments", sa.column("id", sa.Uuid()),
                           sa.column("spec", models.base.JSONType))
    conn = op.get_bind()
    for row_id, spec in conn.execute(sa.select(deployments.c.id, deployments.c.spec)).all():
        if isinstance(spec, dict) and spec.get("pinned"):
            unpinned = deployments.update().where(deployments.c.id == row_id)
            conn.execute(unpinned.values(spec={**spec, "pinned": False}))


def downgrade() -> None:
    op.drop_table("webhook_nonces")
    # Fails if two organizations route one number meanwhile: remove one route first.
    with op.batch_alter_table("sms_numbers", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_numbers_number")
        batch_op.drop_constraint(batch_op.f("uq_sms_numbers_org_id_number"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_sms_numbers_number"), ["number"])
