"""The caller's organization, its API keys and its audit log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session

from api.deps import Admin, CurrentKey, PageDep, SessionDep
from api.schemas import AuditRead, KeyCreate, KeyCreated, KeyRead, OrgRead, PageOf
from models import audit
from models.orgs import ApiKey, Organization, create_key, list_keys, revoke_key

router = APIRouter(tags=["organization"])


def _key(session: Session, key_id: uuid.UUID) -> ApiKey:
    key = session.get(ApiKey, key_id)
    assert key is not None  # the caller's own key, just authenticated
    return key


@router.get("/org", response_model=OrgRead)
def whoami(principal: CurrentKey, session: SessionDep) -> OrgRead:
    """The organization and key making this call."""
    org = session.get(Organization, principal.org_id)
    assert org is not None
    return OrgRead(id=org.id, name=org.name, key=KeyRead.model_validate(_key(session, principal.key_id)))


@router.get("/keys", response_model=list[KeyRead])
def get_keys(principal: Admin, session: SessionDep) -> list[KeyRead]:
    """Every API key of the organization (never their secrets)."""
    return [KeyRead.model_validate(k) for k in list_keys(session, org_id=principal.org_id)]


@router.post("/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
def new_key(body: KeyCreate, principal: Admin, session: SessionDep) -> KeyCreated:
    """Mint a key; its secret is in this response only."""
    key, secret = create_key(session, org_id=principal.org_id, name=body.name, role=body.role)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="key.create",
                 target_type="api_key", target_id=key.id, details={"name": key.name, "role": key.role})
    return KeyCreated(**KeyRead.model_validate(key).model_dump(), key=secret)


@router.delete("/keys/{key_id}", response_model=KeyRead)
def delete_key(key_id: uuid.UUID, request: Request, principal: Admin, session: SessionDep) -> KeyRead:
    """Revoke a key at once; revoking twice is harmless."""
    key = revoke_key(session, org_id=principal.org_id, key_id=key_id)
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
