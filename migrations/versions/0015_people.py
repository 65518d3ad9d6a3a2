"""people: accounts, memberships, invitations, set-password links, sign-in attempts; browser
sessions may act for a person; keys name who made them

Revision ID: 0015
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0015"
# It changes browser_sessions, which 0013 makes: a child of 0013, not a sibling depending on it
# (Alembic's merge of a branch with its own dependency fails to upgrade).
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = sa.Enum("admin", "builder", "reviewer", name="role", native_enum=False, length=20)


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, models.base.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"),
                                   ondelete="CASCADE")


def _index(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        _time("created_at"),
        _time("password_changed_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        _time("created_at"),
        _fk("memberships", "org_id", "organizations"),
        _fk("memberships", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("org_id", "user_id", name=op.f("uq_memberships_org_id_user_id")),
    )
    _index("memberships", "org_id", "user_id")
    op.create_table(
        "invitations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.String(length=200), nullable=False),
        _time("created_at"),
        _time("expires_at"),
        _time("accepted_at", nullable=True),
        _time("revoked_at", nullable=True),
        _fk("invitations", "org_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("digest", name=op.f("uq_invitations_digest")),
    )
    _index("invitations", "org_id")
    op.create_table(
        "password_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        _time("created_at"),
        _time("expires_at"),
        _time("used_at", nullable=True),
        _fk("password_links", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_links")),
        sa.UniqueConstraint("digest", name=op.f("uq_password_links_digest")),
    )
    _index("password_links", "user_id")
    op.create_table(
        "sign_in_attempts",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "window_start", name=op.f("pk_sign_in_attempts")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("user_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_api_keys_user_id_users"), "users", ["user_id"], ["id"],
                                    ondelete="CASCADE")
        batch_op.create_index(batch_op.f("ix_api_keys_user_id"), ["user_id"], unique=False)
    # Sessions so far all acted for a key: the server default says so for the existing rows.
    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.alter_column("key_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("user_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("via", sa.String(length=20), server_default="api_key", nullable=False))
        batch_op.create_foreign_key(batch_op.f("fk_browser_sessions_user_id_users"), "users", ["user_id"],
                                    ["id"], ondelete="CASCADE")
        batch_op.create_index(batch_op.f("ix_browser_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    # A person's sessions cannot act for a key: they end with the accounts.
    op.execute("DELETE FROM browser_sessions WHERE key_id IS NULL")
    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_browser_sessions_user_id"))
        batch_op.drop_constraint(batch_op.f("fk_browser_sessions_user_id_users"), type_="foreignkey")
        batch_op.drop_column("via")
        batch_op.drop_column("user_id")
        batch_op.alter_column("key_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_user_id"))
        batch_op.drop_constraint(batch_op.f("fk_api_keys_user_id_users"), type_="foreignkey")
        batch_op.drop_column("user_id")
        batch_op.drop_column("created_by")
    op.drop_table("sign_in_attempts")
    op.drop_table("password_links")
    op.drop_table("invitations")
    op.drop_table("memberships")
    op.drop_table("users")
