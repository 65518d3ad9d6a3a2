"""Schemathesis over the API's own OpenAPI schema, in-process: no request, however odd, gets a 500.

Every operation gets valid and invalid requests, each carrying a real admin key so they reach
the handlers, and some aimed at real apps (one published, one with an empty draft) so they go
past the 404. Every answer must be documented (status, content type, body schema) and invalid
requests must be refused. It runs on a fresh SQLite file, since the requests commit;
PostgreSQL is covered by the other integration tests.

(`schemathesis.pytest.from_fixture` cannot run under pytest 9, so the operations are driven
through their Hypothesis strategies directly.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from core.settings import Settings
from migrations.run import upgrade
from models import apps as app_store
from models.db import make_engine, session_scope
from models.orgs import Role, create_key, create_org
from tests.factories import greeter_graph

MAX_EXAMPLES = 20  # per operation: the whole run stays well under a minute

Operation = APIOperation[Any, Any, Any, Any]


@dataclass(frozen=True)
class Fuzzed:
    """The API under test, its database and an admin key of one organization."""

    app: FastAPI
    sessions: sessionmaker[Session]
    org_id: uuid.UUID
    key: str


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A migrated SQLite file with an organization and an admin key, and the API on it."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{data_dir / 'mantle.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with session_scope(sessions) as session:
        org = create_org(session, name="fuzz")
        _, secret = create_key(session, org_id=org.id, name="fuzz admin", role=Role.admin)
        org_id = org.id
    api = create_app(Settings(data_dir=data_dir, database_url=url, secret_key="fuzz-secret"))
    yield Fuzzed(app=api, sessions=sessions, org_id=org_id, key=secret)
    engine.dispose()


def fresh_apps(fuzzed: Fuzzed) -> list[str]:
    """A published greeter and an app with an empty draft, new for each operation (some get deleted)."""
    with session_scope(fuzzed.sessions) as session:
        published = app_store.create_app(session, org_id=fuzzed.org_id, name="Greeter", description="",
                                         draft=greeter_graph())
        app_store.publish(session, app=published, graph=greeter_graph(), note="v1", actor="fuzz")
        empty = app_store.create_app(session, org_id=fuzzed.org_id, name="Empty", description="",
                                     draft={})
        return [str(published.id), str(empty.id)]


def operations(fuzzed: Fuzzed) -> list[Operation]:
    """Every operation of the API's own schema, loaded in-process, except never-ending streams."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    found = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the API's own schema is invalid: {result.err()}"
        found.append(result.ok())
    # A run's event stream stays open until the run ends, and no worker runs here.
    return [op for op in found if not op.path.endswith("/events")]


def cases(operation: Operation, fuzzed: Fuzzed, app_ids: list[str]) -> st.SearchStrategy[Any]:
    """Valid and invalid requests for `operation`, all with the admin key, some aimed at real apps."""
    auth = {"Authorization": f"Bearer {fuzzed.key}"}
    strategies = [operation.as_strategy(mode, headers=auth) for mode in GenerationMode]
    if "{app_id}" in operation.path:
        for app_id in app_ids:
            aimed: dict[str, Any] = {"app_id": app_id}
            if "{number}" in operation.path:
                aimed["number"] = 1
            strategies += [operation.as_strategy(mode, headers=auth, path_parameters=aimed)
                           for mode in GenerationMode]
    return st.one_of(strategies)


def fuzz(operation: Operation, fuzzed: Fuzzed) -> None:
    """Send generated requests to `operation`; raise on the first failed check (shrunk)."""
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance,
              negative_data_rejection]
    if not operation.path.startswith("/twilio/"):
        # Twilio's webhooks read a signed form the schema does not describe, so every generated
        # request is refused with a 415 the schema does not list either.
        checks.append(status_code_conformance)

    @given(case=cases(operation, fuzzed, fresh_apps(fuzzed)))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def send(case: schemathesis.Case[Any]) -> None:
        if case.query and "wait" in case.query:
            case.query["wait"] = 0  # no worker will finish the run: don't wait for it
        case.call_and_validate(checks=checks)

    send()


def test_every_answer_is_documented_and_none_is_a_server_error(fuzzed: Fuzzed) -> None:
    found = operations(fuzzed)
    assert {"POST /v1/apps", "PUT /v1/apps/{app_id}/draft", "POST /v1/apps/{app_id}/publish",
            "POST /v1/apps/import", "POST /v1/keys"} <= {op.label for op in found}
    failures = []
    for operation in found:
        try:
            fuzz(operation, fuzzed)
        except (Exception, FailureGroup) as exc:  # report every operation's failure, not only the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
