"""Request and response bodies of the people routes: members, invitations, sessions, passwords."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.accounts import MAX_PASSWORD_LENGTH
from models.orgs import Role


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemberRead(BaseModel):
    """A member of the organization: the person and their role."""

    user_id: uuid.UUID
    email: str
    role: Role
    joined_at: datetime
    sessions: int = Field(description="Their live browser sessions in this organization.")


class MemberUpdate(_Request):
    """A member's new role."""

    role: Role


class InvitationCreate(_Request):
    """Whom to invite, with which role."""

    email: str = Field(min_length=3, max_length=254)
    role: Role = Role.builder


class InvitationRead(BaseModel):
    """An invitation not yet accepted (its link is shown once, when it is made)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: Role
    invited_by: str
    created_at: datetime
    expires_at: datetime


class InvitationCreated(InvitationRead):
    """A new invitation and its one-time link: give it to the person (there is no mail server)."""

    url: str


class InvitationInfo(BaseModel):
    """What an invitation link offers, for the page that accepts it."""

    email: str
    org_name: str
    role: Role
    expires_at: datetime
    has_account: bool = Field(description="The email already has an account: accepting needs its "
                                          "password; otherwise accepting chooses one.")


class TokenPassword(_Request):
    """A one-time link's token and a password (a new one, or an existing account's)."""

    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class PasswordLinkInfo(BaseModel):
    """What a set-password link is for."""

    email: str
    expires_at: datetime


class SessionInfo(BaseModel):
    """A live browser session in the organization: who, how it signed in, until when."""

    id: uuid.UUID
    actor: str
    email: str | None
    key_name: str | None
    via: str
    created_at: datetime
    expires_at: datetime
    current: bool = Field(description="The session making this request.")


class Revoked(BaseModel):
    """How many sessions were ended."""

    revoked: int
