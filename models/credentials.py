"""Credentials of an organization for outside services, typed and encrypted at rest.

A credential type is a pydantic model: its `SecretStr` fields are encrypted together (one
Fernet token, see `core/crypto.py`) and never leave the server; its other fields (an
account id) are stored in clear so they can be shown. Integrations look a credential up by
type and name (`"default"` unless they say otherwise).

`allowed_urls` are the hosts and URL prefixes an admin lets the credential be sent to by
`http.request` (`core/url_scope.py`); none means it is sent nowhere.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from cryptography.fernet import MultiFernet
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import url_scope
from core.crypto import decrypt, encrypt, rotate
from core.errors import Conflict, InvalidInputs, NotFound
from models.base import Base, JSONType, TimestampMixin, new_id, utcnow
from models.credential_types import INTEGRATION_CREDENTIALS

DEFAULT_NAME = "default"


class TwilioCredential(BaseModel):
    """A Twilio account: its SID (shown) and auth token (secret)."""

    model_config = ConfigDict(extra="forbid")

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$", description="`AC` and 32 hex digits.")
    auth_token: SecretStr = Field(min_length=16, max_length=128, description="Never returned.")


CREDENTIAL_TYPES: dict[str, type[BaseModel]] = {"twilio": TwilioCredential, **INTEGRATION_CREDENTIALS}


class Credential(TimestampMixin, Base):
    """One stored credential; `secret` is a Fernet token of the secret fields as JSON."""

    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("org_id", "type", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    public: Mapped[dict[str, Any]]
    secret: Mapped[str] = mapped_column(Text)
    allowed_urls: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))

    @property
    def secret_fields(self) -> list[str]:
        """Names of the fields that are stored encrypted (and never shown)."""
        model = CREDENTIAL_TYPES.get(self.type)
        return secret_fields(model) if model is not None else []


def secret_fields(model: type[BaseModel]) -> list[str]:
    """The fields of a credential type that are secret."""
    return [name for name, f in model.model_fields.items() if f.annotation is SecretStr]


def check_data(type_: str, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate `data` for a credential type; returns (public fields, secret fields) or InvalidInputs."""
    model = CREDENTIAL_TYPES.get(type_)
    if model is None:
        known = ", ".join(sorted(CREDENTIAL_TYPES))
        raise InvalidInputs([{"loc": ["body", "type"], "msg": f"unknown credential type; known: {known}",
                              "type": "unknown_type"}])
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputs([{"loc": ["body", "data", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                             for e in exc.errors(include_url=False, include_input=False)]) from None
    hidden = set(secret_fields(model))
    public = {k: v for k, v in parsed.model_dump(mode="json").items() if k not in hidden}
    secret = {k: getattr(parsed, k).get_secret_value() for k in hidden}
    return public, secret


def check_allowed_urls(entries: list[str]) -> list[str]:
    """The entries, each a host or URL prefix (`core/url_scope.py`), or InvalidInputs naming the bad one."""
    try:
        return url_scope.check(entries)
    except ValueError as exc:
        index = re.match(r"allowed_urls\[(\d+)\]", str(exc))
        loc: list[str | int] = ["body", "allowed_urls", *([int(index.group(1))] if index else [])]
        raise InvalidInputs([{"loc": loc, "msg": str(exc), "type": "value_error"}]) from None


def create_credential(session: Session, *, org_id: uuid.UUID, type_: str, name: str, data: dict[str, Any],
                      cipher: MultiFernet, allowed_urls: list[str] | None = None) -> Credential:
    """Store a new credential; a second one of the same type and name is a Conflict."""
    public, secret = check_data(type_, data)
    allowed = check_allowed_urls(allowed_urls or [])
    if find_credential(session, org_id=org_id, type_=type_, name=name) is not None:
        raise Conflict(f"a {type_} credential named {name!r} exists; replace it with PUT",
                       loc=["body", "name"])
    row = Credential(org_id=org_id, type=type_, name=name, public=public,
                     secret=encrypt(cipher, json.dumps(secret)), allowed_urls=allowed)
    session.add(row)
    session.flush()
    return row


def replace_credential(session: Session, *, credential: Credential, data: dict[str, Any],
                       cipher: MultiFernet, allowed_urls: list[str] | None = None) -> Credential:
    """Replace every field of a credential (secrets are write-only, so all are sent again); its
    allowed URLs too, when given."""
    public, secret = check_data(credential.type, data)
    if allowed_urls is not None:
        credential.allowed_urls = check_allowed_urls(allowed_urls)
    credential.public, credential.secret = public, encrypt(cipher, json.dumps(secret))
    credential.updated_at = utcnow()
    return credential


def get_credential(session: Session, *, org_id: uuid.UUID, credential_id: uuid.UUID) -> Credential:
    """The organization's credential, or NotFound."""
    row = session.get(Credential, credential_id)
    if row is None or row.org_id != org_id:
        raise NotFound("credential not found", loc=["credential_id"])
    return row


def find_credential(session: Session, *, org_id: uuid.UUID, type_: str,
                    name: str = DEFAULT_NAME) -> Credential | None:
    """The organization's credential of this type and name, if stored."""
    return session.scalar(select(Credential).where(Credential.org_id == org_id, Credential.type == type_,
                                                   Credential.name == name))


def find_by_public_field(session: Session, *, type_: str, field: str, value: str, limit: int = 20
                         ) -> list[Credential]:
    """Default credentials of `type_`, any organization, whose public `field` is `value` (a Twilio
    account SID, say): for a signed callback that names its account but no organization."""
    stmt = select(Credential).where(Credential.type == type_, Credential.name == DEFAULT_NAME,
                                    Credential.public[field].as_string() == value)
    return list(session.scalars(stmt.order_by(Credential.created_at).limit(limit)))


def list_credentials(session: Session, *, org_id: uuid.UUID) -> list[Credential]:
    """Every credential of the organization, by type and name."""
    stmt = select(Credential).where(Credential.org_id == org_id).order_by(Credential.type, Credential.name)
    return list(session.scalars(stmt))


def reveal(credential: Credential, cipher: MultiFernet) -> dict[str, Any]:
    """Every field, secrets decrypted: for the server's own use, never for a response."""
    secret: dict[str, Any] = json.loads(decrypt(cipher, credential.secret))
    return {**credential.public, **secret}


def load(session: Session, *, org_id: uuid.UUID, type_: str, cipher: MultiFernet,
         name: str = DEFAULT_NAME) -> dict[str, Any] | None:
    """The decrypted fields of the organization's credential, or None when none is stored."""
    row = find_credential(session, org_id=org_id, type_=type_, name=name)
    return reveal(row, cipher) if row is not None else None


def load_bound(session: Session, *, org_id: uuid.UUID, type_: str, cipher: MultiFernet,
               name: str = DEFAULT_NAME) -> tuple[dict[str, Any], list[str]] | None:
    """The decrypted fields of the organization's credential and the URLs it may be sent to, or None."""
    row = find_credential(session, org_id=org_id, type_=type_, name=name)
    return (reveal(row, cipher), list(row.allowed_urls or [])) if row is not None else None


def rotate_all(session: Session, *, cipher: MultiFernet) -> int:
    """Re-encrypt every stored credential with the current key; returns how many (all orgs)."""
    rows = list(session.scalars(select(Credential).with_for_update()))
    for row in rows:
        row.secret = rotate(cipher, row.secret)
    return len(rows)
