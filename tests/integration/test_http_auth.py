"""Integration credentials: stored through /v1/credentials (typed, encrypted, write-only) and used by
`http.request` through the worker's credentials service, never leaving the request's origin."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from blocks.base import BlockContext, port_values
from blocks.http_request import HttpRequestBlock
from blocks.net_guard import NetGuard
from core.errors import MantleError
from core.settings import Settings
from models.credentials import Credential
from tests.conftest import Tenant
from tests.http_server import LocalServer, serving
from worker.integrations import CredentialReader

TOKEN = "tok-3f1c9a7e5b2d4c6a"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serving() as running:
        yield running


def store(tenant: Tenant, type_: str, data: dict[str, Any], name: str = "default",
          allowed_urls: Sequence[str] = ()) -> dict[str, Any]:
    created = tenant.client.post("/v1/credentials", json={"type": type_, "name": name, "data": data,
                                                          "allowed_urls": list(allowed_urls)})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def resolve(host: str, port: int) -> Sequence[str]:
    return ["127.0.0.1"] if host in ("api.test", "elsewhere.test") else []


def call(tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], config: dict[str, Any]
         ) -> dict[str, Any]:
    block = HttpRequestBlock.from_config({"timeout_s": 5, **config})
    services = {"net_guard": NetGuard(allow=["api.test", "elsewhere.test"], resolver=resolve),
                "credentials": CredentialReader(settings, sessions)}
    ctx = BlockContext(run_id=uuid.uuid4(), node_id="http", org_id=tenant.org_id, app_id=uuid.uuid4(),
                       services=services)
    return port_values(block.run(block.typed_inputs({}), ctx))


def test_integration_credentials_are_typed_encrypted_and_write_only(tenant: Tenant, session: Session) -> None:
    shown = store(tenant, "api_key_header", {"header": "X-API-Key", "value": "k-secret-value-123"})
    assert shown["public"] == {"header": "X-API-Key"} and shown["secret_fields"] == ["value"]
    store(tenant, "basic_auth", {"username": "ada", "password": "pw-very-secret"})
    store(tenant, "bearer_token", {"token": TOKEN})
    store(tenant, "webhook_secret", {"secret": "whsec-0123456789abcdef"})
    listed = tenant.client.get("/v1/credentials").text
    for secret in ("k-secret-value-123", "pw-very-secret", TOKEN, "whsec-0123456789abcdef"):
        assert secret not in listed
    stored = " ".join(session.scalars(select(Credential.secret).where(Credential.org_id == tenant.org_id)))
    assert TOKEN not in stored and "pw-very-secret" not in stored  # encrypted at rest


@pytest.mark.parametrize(("type_", "data", "loc"), [
    ("api_key_header", {"header": "Host", "value": "x"}, "header"),
    ("api_key_header", {"header": "Bad Header", "value": "x"}, "header"),
    ("basic_auth", {"username": "a:b", "password": "x"}, "username"),
    ("webhook_secret", {"secret": "short"}, "secret"),
    ("bearer_token", {"token": "x", "extra": 1}, "extra"),
])
def test_bad_credential_data_is_a_422_naming_the_field(tenant: Tenant, type_: str, data: dict[str, Any],
                                                       loc: str) -> None:
    response = tenant.client.post("/v1/credentials", json={"type": type_, "data": data})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "data", loc]


@pytest.mark.parametrize(("type_", "data", "header", "expected"), [
    ("bearer_token", {"token": TOKEN}, "authorization", f"Bearer {TOKEN}"),
    ("basic_auth", {"username": "ada", "password": "pw-1"}, "authorization",
     "Basic " + base64.b64encode(b"ada:pw-1").decode()),
    ("api_key_header", {"header": "X-API-Key", "value": "key-42"}, "x-api-key", "key-42"),
])
def test_a_stored_credential_authenticates_the_request_and_stays_out_of_the_outputs(
        tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], server: LocalServer,
        type_: str, data: dict[str, Any], header: str, expected: str) -> None:
    store(tenant, type_, data, name="svc", allowed_urls=[f"http://api.test:{server.port}/"])
    out = call(tenant, settings, sessions, {"url": f"http://api.test:{server.port}/json",
                                            "auth": {"type": type_, "credential": "svc"}})
    assert server.seen("/json")[-1].headers[header] == expected
    assert expected.split()[-1] not in json.dumps(out)


def test_credentials_are_not_sent_to_a_redirect_on_another_origin(
        tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], server: LocalServer) -> None:
    store(tenant, "bearer_token", {"token": TOKEN}, allowed_urls=[f"http://api.test:{server.port}/"])
    elsewhere = f"http://elsewhere.test:{server.port}/echo"
    out = call(tenant, settings, sessions, {"url": f"http://api.test:{server.port}/redirect",
                                            "query": {"to": elsewhere}, "auth": {"type": "bearer_token"}})
    assert out["url"] == elsewhere
    first, second = server.seen("/redirect")[-1], server.seen("/echo")[-1]
    assert first.headers["authorization"] == f"Bearer {TOKEN}" and "authorization" not in second.headers


def test_a_missing_credential_fails_the_node_naming_it(
        tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], server: LocalServer) -> None:
    with pytest.raises(MantleError, match="no basic_auth credential named 'partner'"):
        call(tenant, settings, sessions, {"url": f"http://api.test:{server.port}/json",
                                          "auth": {"type": "basic_auth", "credential": "partner"}})
