"""People in an organization: members and their roles, invitations, browser sessions, passwords.

Admins manage the organization's members (change a role, remove someone: their sessions there
and the keys they made there end at once), invite an email with a role (the answer holds the
one-time link to hand over: there is no mail server), and list or revoke live browser sessions.
Accepting an invitation and setting a password through a one-time link need no session: the
link's token is the capability. Either signs the browser in, like `POST /v1/session`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from api import sign_in
from api.deps import Admin, SessionDep
from api.people_schemas import (
    InvitationCreate,
    InvitationCreated,
    InvitationInfo,
    InvitationRead,
    MemberRead,
    MemberUpdate,
    PasswordLinkInfo,
    Revoked,
    SessionInfo,
    TokenPassword,
)
from api.routes.session import SessionRead, opened_read, refuse_foreign
from core.errors import Forbidden, NotFound
from models import accounts, audit
from models import browser_sessions as store
from models.db import session_scope
from models.orgs import Organization

router = APIRouter(tags=["people"])
SPENT_INVITATION = "this invitation link was already used, withdrawn, or has expired: ask for a new one"
SPENT_LINK = "this link was already used or has expired: ask for a new one"
Token = Annotated[str, Query(min_length=1, max_length=200, description="The link's token.")]


def _forget(request: Request, digests: list[str]) -> None:
    for digest in digests:  # other API processes: within MANTLE_AUTH_CACHE_S
        request.app.state.session_cache.drop(digest)


def _link(request: Request, path: str, secret: str) -> str:
    return f"{request.app.state.settings.public_base_url.rstrip('/')}/builder/{path}?token={secret}"


@router.get("/members", response_model=list[MemberRead])
def list_members(principal: Admin, session: SessionDep) -> list[MemberRead]:
    """The organization's members, by email, with their roles and live sessions."""
    live: dict[uuid.UUID, int] = {}
    for browser, _, _ in store.list_sessions(session, org_id=principal.org_id):
        if browser.user_id is not None:
            live[browser.user_id] = live.get(browser.user_id, 0) + 1
    return [MemberRead(user_id=u.id, email=u.email, role=m.role, joined_at=m.created_at,
                       sessions=live.get(u.id, 0))
            for m, u in accounts.list_members(session, org_id=principal.org_id)]


@router.patch("/members/{user_id}", response_model=MemberRead)
def change_role(user_id: uuid.UUID, body: MemberUpdate, request: Request, principal: Admin,
                session: SessionDep) -> MemberRead:
    """Give a member another role (their open sessions get it at once); the last admin stays one."""
    membership, user = accounts.change_role(session, org_id=principal.org_id, user_id=user_id, role=body.role)
    digests = store.live_digests(session, org_id=principal.org_id, user_id=user_id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="member.role",
                 target_type="user", target_id=user.id, details={"email": user.email, "role": body.role})
    _forget(request, digests)
    return MemberRead(user_id=user.id, email=user.email, role=membership.role,
                      joined_at=membership.created_at, sessions=len(digests))


@router.delete("/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(user_id: uuid.UUID, request: Request, principal: Admin, session: SessionDep) -> Response:
    """Take someone out of the organization: their sessions here and the keys they made here end."""
    user = accounts.remove_member(session, org_id=principal.org_id, user_id=user_id)
    digests = store.revoke_sessions(session, org_id=principal.org_id, user_id=user_id)
    keys = accounts.keys_of(session, org_id=principal.org_id, user_id=user_id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="member.remove",
                 target_type="user", target_id=user.id, details={"email": user.email})
    _forget(request, digests)
    for key_id in keys:
        request.app.state.key_cache.forget(key_id)
        request.app.state.session_cache.forget(key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/members/{user_id}/sessions", response_model=Revoked)
def revoke_member_sessions(user_id: uuid.UUID, request: Request, principal: Admin,
                           session: SessionDep) -> Revoked:
    """Sign a member out of every browser where they use this organization."""
    _, user = accounts.member(session, org_id=principal.org_id, user_id=user_id)
    digests = store.revoke_sessions(session, org_id=principal.org_id, user_id=user_id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="session.revoke",
                 target_type="user", target_id=user.id,
                 details={"email": user.email, "sessions": len(digests)})
    _forget(request, digests)
    return Revoked(revoked=len(digests))


@router.get("/invitations", response_model=list[InvitationRead])
def list_invitations(principal: Admin, session: SessionDep) -> list[InvitationRead]:
    """Invitations not yet accepted nor withdrawn (expired ones too), newest first."""
    rows = accounts.list_invitations(session, org_id=principal.org_id)
    return [InvitationRead.model_validate(i) for i in rows]


@router.post("/invitations", response_model=InvitationCreated, status_code=status.HTTP_201_CREATED)
def invite(body: InvitationCreate, request: Request, principal: Admin,
           session: SessionDep) -> InvitationCreated:
    """Invite an email with a role; the answer's `url` is the one-time link to give them (7 days)."""
    row, secret = accounts.invite(session, org_id=principal.org_id, email=body.email, role=body.role,
                                  invited_by=principal.actor)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="member.invite",
                 target_type="invitation", target_id=row.id, details={"email": row.email, "role": row.role})
    return InvitationCreated(**InvitationRead.model_validate(row).model_dump(),
                             url=_link(request, "invite", secret))


@router.delete("/invitations/{invitation_id}", response_model=InvitationRead)
def withdraw(invitation_id: uuid.UUID, principal: Admin, session: SessionDep) -> InvitationRead:
    """Withdraw an invitation: its link stops working."""
    row = accounts.revoke_invitation(session, org_id=principal.org_id, invitation_id=invitation_id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="invitation.revoke",
                 target_type="invitation", target_id=row.id, details={"email": row.email})
    return InvitationRead.model_validate(row)


@router.get("/invitations/accept", response_model=InvitationInfo)
def invitation_info(token: Token, session: SessionDep) -> InvitationInfo:
    """What an invitation link offers (no session needed: the token is the capability)."""
    row = accounts.find_invitation(session, secret=token)
    if row is None:
        raise NotFound(SPENT_INVITATION, loc=["query", "token"])
    org = session.get(Organization, row.org_id)
    assert org is not None  # the invitation cascades with it
    return InvitationInfo(email=row.email, org_name=org.name, role=row.role, expires_at=row.expires_at,
                          has_account=accounts.find_user(session, email=row.email) is not None)


@router.post("/invitations/accept", response_model=SessionRead, status_code=status.HTTP_201_CREATED,
             responses={401: {"description": "The account exists and this is not its password."},
                        429: {"description": "Too many attempts; see Retry-After."}})
def accept_invitation(body: TokenPassword, request: Request, response: Response) -> SessionRead:
    """Accept an invitation and sign in: a new account chooses its password here; an existing
    account gives its own (counted like a sign-in)."""
    refuse_foreign(request)
    sessions = request.app.state.session_factory
    with session_scope(sessions) as session:
        row = accounts.find_invitation(session, secret=body.token)
        if row is None:
            raise NotFound(SPENT_INVITATION, loc=["body", "token"])
        email, existing = row.email, accounts.find_user(session, email=row.email) is not None
    if existing:
        sign_in.count(sessions, request.app.state.settings, email=email,
                      address=sign_in.client_address(request))
    with session_scope(sessions) as session:
        row = accounts.find_invitation(session, secret=body.token, lock=True)
        if row is None:
            raise NotFound(SPENT_INVITATION, loc=["body", "token"])
        done = accounts.accept(session, invitation=row, password=body.password)
        if done is None:
            raise sign_in.WrongPassword(f"{email} already has an account: give its password to accept",
                                        loc=["body", "password"])
        user, membership = done
        audit.record(session, org_id=row.org_id, actor=f"user:{user.id}:{user.email}", action="member.join",
                     target_type="user", target_id=user.id,
                     details={"role": membership.role, "invited_by": row.invited_by})
        opened = sign_in.open_for(session, user=user, org_id=row.org_id, via="invitation")
    return opened_read(request, response, opened)


@router.get("/password-reset", response_model=PasswordLinkInfo)
def password_link_info(token: Token, session: SessionDep) -> PasswordLinkInfo:
    """Which account a set-password link is for."""
    found = accounts.find_password_link(session, secret=token)
    if found is None:
        raise NotFound(SPENT_LINK, loc=["query", "token"])
    return PasswordLinkInfo(email=found[1].email, expires_at=found[0].expires_at)


@router.post("/password-reset", response_model=SessionRead, status_code=status.HTTP_201_CREATED)
def reset_password(body: TokenPassword, request: Request, response: Response) -> SessionRead:
    """Set an account's password through a one-time link, then sign in to its first organization."""
    refuse_foreign(request)
    with session_scope(request.app.state.session_factory) as session:
        found = accounts.find_password_link(session, secret=body.token, lock=True)
        if found is None:
            raise NotFound(SPENT_LINK, loc=["body", "token"])
        link, user = found
        places = accounts.memberships(session, user_id=user.id)
        if not places:
            raise Forbidden("this account belongs to no organization: ask an admin to invite you")
        accounts.use_password_link(session, link=link, user=user, password=body.password)
        org_id = places[0][1].id
        audit.record(session, org_id=org_id, actor=f"user:{user.id}:{user.email}", action="password.set",
                     target_type="user", target_id=user.id, details={"via": "link"})
        opened = sign_in.open_for(session, user=user, org_id=org_id, via="password_link")
    return opened_read(request, response, opened)


@router.get("/sessions", response_model=list[SessionInfo])
def list_sessions(request: Request, principal: Admin, session: SessionDep) -> list[SessionInfo]:
    """Live browser sessions in the organization (people's and keys'), newest first."""
    current = getattr(request.state, "browser", None)
    return [SessionInfo(id=b.id, via=b.via, created_at=b.created_at, expires_at=b.expires_at,
                        email=u.email if u else None, key_name=k.name if k else None,
                        actor=f"user:{u.id}:{u.email}" if u else f"key:{k.id}:{k.name}" if k else "",
                        current=current is not None and current.session_id == b.id)
            for b, k, u in store.list_sessions(session, org_id=principal.org_id)]


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_session(session_id: uuid.UUID, request: Request, principal: Admin,
                   session: SessionDep) -> Response:
    """End one browser session of the organization at once (revoking twice is harmless)."""
    digests = store.revoke_sessions(session, org_id=principal.org_id, session_id=session_id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="session.revoke",
                 target_type="browser_session", target_id=session_id, details={})
    _forget(request, digests)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

