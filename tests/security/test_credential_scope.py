"""A stored credential goes only where its admin allows: a builder cannot send it elsewhere.

`http.request` names a credential; a builder writes its URL. Each credential lists the hosts or
URL prefixes it may be sent to (`allowed_urls`, set by admins through /v1/credentials); every
other URL is refused before anything is sent, the node's error saying why, and a redirect that
leaves what is allowed goes on without it. A real local server records what each request carried.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from blocks.base import BlockContext, port_values
from blocks.http_request import CredentialRefused, HttpRequestBlock
from blocks.net_guard import NetGuard
from blocks.registry import default_registry
from builder.executor import Executor, RunState
from builder.graph import Graph
from builder.validation import analyze
from core.errors import MantleError
from core.settings import Settings
from models.orgs import Role
from tests.conftest import Tenant, make_tenant
from tests.factories import edge, node
from tests.http_server import LocalServer, serving
from worker.integrations import CredentialReader

TOKEN = "tok-9d2e7c1b5a3f4e6d"
HOSTS = ("api.test", "api.test.evil.test", "evil.test", "allowed.test")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serving() as running:
        yield running


@pytest.fixture(scope="module")
def other_server() -> Iterator[LocalServer]:
    with serving() as running:
        yield running


def resolve(host: str, port: int) -> Sequence[str]:
    return ["127.0.0.1"] if host in HOSTS else []


def bind(tenant: Tenant, allowed: list[str], name: str = "svc") -> dict[str, Any]:
    created = tenant.client.post("/v1/credentials", json={"type": "bearer_token", "name": name,
                                                          "data": {"token": TOKEN}, "allowed_urls": allowed})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def context(tenant: Tenant, settings: Settings, sessions: sessionmaker[Session]) -> BlockContext:
    services = {"net_guard": NetGuard(allow=list(HOSTS), resolver=resolve),
                "credentials": CredentialReader(settings, sessions)}
    return BlockContext(run_id=uuid.uuid4(), node_id="http", org_id=tenant.org_id, app_id=uuid.uuid4(),
                        services=services)


def call(tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], url: str,
         **config: Any) -> dict[str, Any]:
    block = HttpRequestBlock.from_config({"url": url, "timeout_s": 5, "retries": 0,
                                          "auth": {"type": "bearer_token", "credential": "svc"}, **config})
    return port_values(block.run(block.typed_inputs({}), context(tenant, settings, sessions)))


def carried(server: LocalServer) -> list[str]:
    """The paths of the requests that carried the token."""
    return [r.path for r in server.requests if TOKEN in r.headers.get("authorization", "")]


def test_an_allowed_host_gets_the_credential(tenant: Tenant, settings: Settings,
                                             sessions: sessionmaker[Session], server: LocalServer) -> None:
    bind(tenant, [f"http://api.test:{server.port}/"])
    out = call(tenant, settings, sessions, f"http://api.test:{server.port}/json")
    assert out["status"] == 200 and carried(server)[-1] == "/json"


@pytest.mark.parametrize(("allowed", "url"), [
    (["http://api.test:{port}/"], "http://evil.test:{port}/json"),  # another host
    (["http://api.test:{port}/"], "http://api.test.evil.test:{port}/json"),  # the allowed name as a prefix
    (["http://api.test:{port}/"], "http://api.test@evil.test:{port}/json"),  # ... as user info
    (["http://api.test:{port}/"], "http://api.test:{port}@evil.test:{port}/json"),
    (["http://api.test:{port}/"], "http://evil.test:{port}/json?api.test"),
    (["http://api.test:{port}/"], "http://api.test:{other}/json"),  # another port
    (["api.test"], "http://api.test:{port}/json"),  # a bare host allows https on 443 only
    (["http://api.test:{port}/weather"], "http://api.test:{port}/weatherstation"),  # past the prefix
    (["http://api.test:{port}/weather/"], "http://api.test:{port}/weather/%2e%2e/json"),  # encoded dots
    (["http://api.test:{port}/weather/"], "http://api.test:{port}/weather/..%2fjson"),
    ([], "http://api.test:{port}/json"),  # allowed nowhere
])
def test_a_url_outside_the_allowed_ones_is_refused_before_sending(
        tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], server: LocalServer,
        other_server: LocalServer, allowed: list[str], url: str) -> None:
    ports = {"port": server.port, "other": other_server.port}
    bind(tenant, [a.format(**ports) for a in allowed])
    before = len(server.requests) + len(other_server.requests)
    with pytest.raises(CredentialRefused) as refused:
        call(tenant, settings, sessions, url.format(**ports))
    assert len(server.requests) + len(other_server.requests) == before  # nothing was sent at all
    assert "bearer_token credential 'svc' may not be sent to" in refused.value.message
    assert TOKEN not in refused.value.message
    assert ("nowhere" if not allowed else allowed[0].format(**ports)) in refused.value.message


def test_a_path_prefix_allows_the_paths_under_it(
        tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], server: LocalServer) -> None:
    bind(tenant, [f"http://api.test:{server.port}/weather"])
    assert call(tenant, settings, sessions, f"http://api.test:{server.port}/weather/lyon")["status"] == 200
    assert carried(server)[-1] == "/weather/lyon"


@pytest.mark.parametrize("target", ["http://evil.test:{port}/echo", "http://api.test:{port}/echo"])
def test_a_redirect_out_of_the_allowed_urls_does_not_carry_the_credential(
        tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], server: LocalServer,
        target: str) -> None:
    # Allowed: /redirect only. Its answer sends the request to another host, or to the same origin
    # outside the allowed prefix; neither gets the token.
    bind(tenant, [f"http://api.test:{server.port}/redirect"])
    to = target.format(port=server.port)
    out = call(tenant, settings, sessions, f"http://api.test:{server.port}/redirect", query={"to": to})
    assert out["url"] == to and out["status"] == 200
    assert server.seen("/redirect")[-1].headers.get("authorization") == f"Bearer {TOKEN}"
    assert "authorization" not in server.seen("/echo")[-1].headers


def test_the_refusal_is_the_nodes_error_in_its_run(
        tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], server: LocalServer) -> None:
    bind(tenant, ["allowed.test"])
    graph = {"nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                       node("http", "http.request", auth={"type": "bearer_token", "credential": "svc"},
                            url=f"http://evil.test:{server.port}/json?q={{{{ text }}}}")],
             "edges": [edge("in", "text", "http", "text")]}
    analysis = analyze(Graph.model_validate(graph), default_registry())
    assert analysis.valid, analysis.problems
    services = context(tenant, settings, sessions).services
    executor = Executor(analysis, services=services)
    state = RunState(run_id=uuid.uuid4(), org_id=tenant.org_id, app_id=uuid.uuid4(), inputs={"text": "x"},
                     created_at=datetime.now(UTC))
    list(executor.drive(state))
    failed = state.node("http")
    assert failed.status.value == "failed" and failed.error_type == "credential_refused"
    error = failed.error or ""
    assert "may not be sent to http://evil.test" in error and "allowed.test" in error


def test_admins_set_the_allowed_urls_and_bad_ones_are_named(tenant: Tenant,
                                                             sessions: sessionmaker[Session]) -> None:
    shown = bind(tenant, ["API.example.com", "https://hooks.example.org/v1/"])
    assert shown["allowed_urls"] == ["API.example.com", "https://hooks.example.org/v1/"]
    listed = tenant.client.get("/v1/credentials").json()["items"]
    assert listed[0]["allowed_urls"] == shown["allowed_urls"]

    kept = tenant.client.put(f"/v1/credentials/{shown['id']}", json={"data": {"token": "t2"}})
    assert kept.status_code == 200 and kept.json()["allowed_urls"] == shown["allowed_urls"]
    changed = tenant.client.put(f"/v1/credentials/{shown['id']}",
                                json={"data": {"token": "t3"}, "allowed_urls": ["api.example.net"]})
    assert changed.status_code == 200 and changed.json()["allowed_urls"] == ["api.example.net"]

    for bad in ("https://user@api.example.com/", "ftp://api.example.com", "*.example.com", "api example",
                "https://api.example.com/?q=1", "https://api.example.com/%2e%2e/"):
        response = tenant.client.post("/v1/credentials", json={"type": "bearer_token", "name": "bad",
                                                               "data": {"token": "t"},
                                                               "allowed_urls": ["ok.example", bad]})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", "allowed_urls", 1], response.json()
    builder = make_tenant(sessions, tenant.client, "acme-builders", role=Role.builder)
    refused = builder.client.put(f"/v1/credentials/{shown['id']}",
                                 json={"data": {"token": "t"}, "allowed_urls": ["evil.test"]})
    assert refused.status_code in (403, 404)


def test_a_missing_credential_is_still_named(tenant: Tenant, settings: Settings,
                                             sessions: sessionmaker[Session], server: LocalServer) -> None:
    with pytest.raises(MantleError, match="no bearer_token credential named 'svc'"):
        call(tenant, settings, sessions, f"http://api.test:{server.port}/json")
