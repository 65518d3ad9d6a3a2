"""The services integration blocks use (`ctx.services`): stored credentials and the SSRF guard.

* `credentials`: the organization's decrypted credential of a type and name, read in a short
  transaction of its own (never while a run's row is locked) for `http.request`'s `auth`.
* `net_guard`: the outbound-request guard with this deployment's allow-list
  (`MANTLE_HTTP_ALLOW_HOSTS`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from blocks.net_guard import NetGuard
from core.crypto import cipher_for
from core.settings import Settings
from models import credentials
from models.db import session_factory, session_scope
from worker.hooks import service


class CredentialReader:
    """Reads one organization's credentials for a block; the block never sees another's."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.cipher = cipher_for(settings)

    def get(self, org_id: uuid.UUID, type_: str, name: str) -> Mapping[str, Any] | None:
        """The decrypted fields of the organization's credential, or None when none is stored."""
        with session_scope(self.sessions) as session:
            return credentials.load(session, org_id=org_id, type_=type_, cipher=self.cipher, name=name)

    def bound(self, org_id: uuid.UUID, type_: str, name: str
              ) -> tuple[Mapping[str, Any], Sequence[str]] | None:
        """The decrypted fields of the organization's credential and the URLs it may be sent to."""
        with session_scope(self.sessions) as session:
            return credentials.load_bound(session, org_id=org_id, type_=type_, cipher=self.cipher, name=name)


@service("credentials")
def credential_reader(settings: Settings) -> CredentialReader:
    """The credentials service of this worker process."""
    return CredentialReader(settings, session_factory(settings.resolved_database_url))


@service("net_guard")
def net_guard(settings: Settings) -> NetGuard:
    """The SSRF guard with this deployment's allow-list."""
    return NetGuard(allow=tuple(settings.http_allow_hosts))
