"""The caller's organization, its API keys (with who made each) and its audit log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session

from api.deps import Admin, CurrentKey, PageDep, Principal, SessionDep
from api.schemas import AuditRead, KeyCreate, KeyCreated, KeyRead, OrgRead, PageOf
from core.errors import Forbidden
from models import audit
from models.orgs import ApiKey, Organization, Role, create_key, list_keys, revoke_key

router = APIRouter(tags=["organization"])


def _key(session: Session, key_id: uuid.UUID | None) -> ApiKey | None:
    return session.get(ApiKey, key_id) if key_id is not None else None


@router.get("/org", response_model=OrgRead)
def whoami(principal: CurrentKey, session: SessionDep) -> OrgRead:
    """The organization and key (or person) making this call."""
    org = session.get(Organization, principal.org_id)
    assert org is not None
    key = _key(session, principal.key_id)
    return OrgRead(id=org.id, name=org.name, key=KeyRead.model_validate(key) if key else None,
                   actor=principal.actor)


def _keys_of(principal: Principal) -> uuid.UUID | None:
    """Whose keys the caller manages: an admin every key (None), a person their own; others none."""
    if principal.role == Role.admin:
        return None
    if principal.user_id is None:
        raise Forbidden(f"managing keys needs the role admin; your key's role is {principal.role.value}")
    return principal.user_id


@router.get("/keys", response_model=list[KeyRead])
def get_keys(principal: CurrentKey, session: SessionDep) -> list[KeyRead]:
    """The organization's API keys (never their secrets): every key for an admin, a person's own
    keys for anyone else signed in."""
    return [KeyRead.model_validate(k) for k in list_keys(session, org_id=principal.org_id,
                                                         user_id=_keys_of(principal))]


@router.post("/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
def new_key(body: KeyCreate, principal: CurrentKey, session: SessionDep) -> KeyCreated:
    """Mint a key; its secret is in this response only. Admins mint any role; a person signed in
    mints keys of their own role for themselves (they end when the person leaves)."""
    owner = _keys_of(principal)
    if owner is not None and body.role != principal.role:
        raise Forbidden(f"you may create keys with your own role ({principal.role.value}) only",
                        loc=["body", "role"])
    key, secret = create_key(session, org_id=principal.org_id, name=body.name, role=body.role,
                             created_by=principal.actor, user_id=principal.user_id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="key.create",
                 target_type="api_key", target_id=key.id, details={"name": key.name, "role": key.role})
    return KeyCreated(**KeyRead.model_validate(key).model_dump(), key=secret)


@router.delete("/keys/{key_id}", response_model=KeyRead)
def delete_key(key_id: uuid.UUID, request: Request, principal: CurrentKey, session: SessionDep) -> KeyRead:
    """Revoke a key at once (an admin any key, a person their own); revoking twice is harmless."""
    key = revoke_key(session, org_id=principal.org_id, key_id=key_id, user_id=_keys_of(principal))
    request.app.state.key_cache.forget(key.id)  # other API processes: within MANTLE_AUTH_CACHE_S
    request.app.state.session_cache.forget(key.id)  # the browser sessions acting as this key
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="key.revoke",
                 target_type="api_key", target_id=key.id, details={"name": key.name})
    return KeyRead.model_validate(key)


@router.get("/audit", response_model=PageOf[AuditRead])
def get_audit(
    principal: Admin, session: SessionDep, page: PageDep,
    target_id: Annotated[str | None, Query(max_length=64, description="Only this object.")] = None,
) -> PageOf[AuditRead]:
    """The organization's audit log, newest first."""
    items, total = audit.list_entries(session, org_id=principal.org_id, target_id=target_id,
                                      limit=page.limit, offset=page.offset)
    return PageOf[AuditRead](items=[AuditRead.model_validate(e) for e in items], total=total,
                             limit=page.limit, offset=page.offset)
