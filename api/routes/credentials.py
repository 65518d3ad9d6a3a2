"""Credentials for outside services: stored encrypted, write-only, one organization's own, each bound
to the hosts its admin allows it to be sent to (`allowed_urls`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import Admin, Builder, SessionDep
from api.schemas import Read
from api.schemas import Request as RequestBody
from core.crypto import cipher_for
from models import audit
from models import credentials as store

router = APIRouter(tags=["credentials"])


ALLOWED_URLS_DOC = (
    "Where `http.request` may send this credential: host names (`api.example.com`: https on port 443, "
    "any path) or URL prefixes (`https://api.example.com/v2/`: that scheme, host and port, paths under "
    "it). Any other URL, a redirect included, is refused before anything is sent, and the node's error "
    "says so. Empty: the credential is sent nowhere. Only admins set it.")


class CredentialCreate(RequestBody):
    """A credential of a known type; `data` holds its fields, secrets included (never shown again)."""

    type: str = Field(min_length=1, max_length=50, examples=["bearer_token"])
    name: str = Field(default=store.DEFAULT_NAME, pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    data: dict[str, Any] = Field(examples=[{"token": "…"}])
    allowed_urls: list[str] = Field(default_factory=list, max_length=50, description=ALLOWED_URLS_DOC,
                                    examples=[["api.example.com", "https://hooks.example.org/v1/"]])


class CredentialReplace(RequestBody):
    """Every field of the credential again (secrets are write-only, so they cannot be kept implicitly)."""

    data: dict[str, Any]
    allowed_urls: list[str] | None = Field(default=None, max_length=50, description=(
        ALLOWED_URLS_DOC + " Left out: unchanged."))


class CredentialRead(Read):
    """A credential without its secrets: `secret_fields` names what is stored encrypted."""

    id: uuid.UUID
    type: str
    name: str
    public: dict[str, Any]
    secret_fields: list[str]
    allowed_urls: list[str] = Field(description=ALLOWED_URLS_DOC)
    created_at: datetime
    updated_at: datetime


class CredentialList(BaseModel):
    """Every credential of the organization."""

    items: list[CredentialRead]


@router.post("/credentials", response_model=CredentialRead, status_code=status.HTTP_201_CREATED)
def create_credential(body: CredentialCreate, request: Request, principal: Admin,
                      session: SessionDep) -> CredentialRead:
    """Store a credential (twilio, bearer_token, basic_auth, api_key_header, webhook_secret); 409 if the
    type and name exist. `allowed_urls` binds it to the hosts `http.request` may send it to."""
    row = store.create_credential(session, org_id=principal.org_id, type_=body.type, name=body.name,
                                  data=body.data, cipher=cipher_for(request.app.state.settings),
                                  allowed_urls=body.allowed_urls)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="credential.create",
                 target_type="credential", target_id=row.id,
                 details={"type": row.type, "name": row.name, "allowed_urls": row.allowed_urls})
    return CredentialRead.model_validate(row)


@router.get("/credentials", response_model=CredentialList)
def list_credentials(principal: Builder, session: SessionDep) -> CredentialList:
    """The organization's credentials, without secrets."""
    rows = store.list_credentials(session, org_id=principal.org_id)
    return CredentialList(items=[CredentialRead.model_validate(r) for r in rows])


@router.get("/credentials/{credential_id}", response_model=CredentialRead)
def get_credential(credential_id: uuid.UUID, principal: Builder, session: SessionDep) -> CredentialRead:
    """One credential, without secrets."""
    return CredentialRead.model_validate(
        store.get_credential(session, org_id=principal.org_id, credential_id=credential_id))


@router.put("/credentials/{credential_id}", response_model=CredentialRead)
def replace_credential(credential_id: uuid.UUID, body: CredentialReplace, request: Request, principal: Admin,
                       session: SessionDep) -> CredentialRead:
    """Replace a credential's fields (a new auth token, say) and, when given, its allowed URLs."""
    row = store.get_credential(session, org_id=principal.org_id, credential_id=credential_id)
    store.replace_credential(session, credential=row, data=body.data,
                             cipher=cipher_for(request.app.state.settings), allowed_urls=body.allowed_urls)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="credential.replace",
                 target_type="credential", target_id=row.id,
                 details={"type": row.type, "name": row.name, "allowed_urls": row.allowed_urls})
    session.flush()
    return CredentialRead.model_validate(row)


@router.delete("/credentials/{credential_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_credential(credential_id: uuid.UUID, principal: Admin, session: SessionDep) -> Response:
    """Forget a credential (webhooks of its service are refused from then on)."""
    row = store.get_credential(session, org_id=principal.org_id, credential_id=credential_id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="credential.delete",
                 target_type="credential", target_id=row.id, details={"type": row.type, "name": row.name})
    session.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
