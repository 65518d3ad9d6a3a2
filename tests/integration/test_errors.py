"""Every failure a caller can provoke, in the one error shape: `{"detail": [{"loc", "msg", "type"}]}`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from core.settings import Settings
from tests.conftest import Tenant, make_tenant
from tests.factories import greeter_graph


def assert_error_shape(body: Any) -> None:
    """The body is `{"detail": [{"loc": [...], "msg": "...", "type": "..."}, ...]}` and nothing else."""
    assert set(body) == {"detail"} and isinstance(body["detail"], list) and body["detail"]
    for item in body["detail"]:
        assert {"loc", "msg", "type"} <= set(item)
        assert isinstance(item["loc"], list) and all(isinstance(p, str | int) for p in item["loc"])
        assert isinstance(item["msg"], str) and item["msg"]
        assert isinstance(item["type"], str) and item["type"]


class Answer(Protocol):
    """A response, from the test client or from httpx."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Any: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def error(answer: Answer, status: int) -> list[dict[str, Any]]:
    """The items of an error response, after checking its status, content type and shape."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert_error_shape(body)
    items: list[dict[str, Any]] = body["detail"]
    return items


# --- malformed requests ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"name": ', b"not json", b'{"name": "x",}', b"\xff\xfe",
                                 b'{"name": "\x98\xb2"}', b"\xc2\xae\xdb\xdd\xda"])
def test_bad_json_is_422_json_invalid(tenant: Tenant, raw: bytes) -> None:
    answer = tenant.client.post("/v1/apps", content=raw, headers={"Content-Type": "application/json"})
    items = error(answer, 422)
    assert items[0]["type"] == "json_invalid" and items[0]["loc"][0] == "body"
    assert tenant.client.get("/v1/apps").json()["total"] == 0


def test_bad_json_in_a_draft_is_422(tenant: Tenant) -> None:
    app_id = tenant.client.post("/v1/apps", json={"name": "Greeter"}).json()["id"]
    answer = tenant.client.put(f"/v1/apps/{app_id}/draft", content=b'{"nodes": [',
                               headers={"Content-Type": "application/json"})
    assert error(answer, 422)[0]["type"] == "json_invalid"
    assert tenant.client.get(f"/v1/apps/{app_id}/draft").json()["revision"] == 1


@pytest.mark.parametrize(("body", "loc", "kind"), [
    ({"name": 123}, ["body", "name"], "string_type"),
    ({"name": "x", "description": ["a"]}, ["body", "description"], "string_type"),
    ({"name": "x", "graph": {"nodes": "many"}}, ["body", "graph", "nodes"], "list_type"),
    ({"name": "x", "graph": {"nodes": [{"id": "a b", "type": "output"}]}},
     ["body", "graph", "nodes", 0, "id"], "string_pattern_mismatch"),
    ({"name": "x", "graph": {"schema_version": 2}}, ["body", "graph", "schema_version"], "literal_error"),
    ({}, ["body", "name"], "missing"),
    ({"name": ""}, ["body", "name"], "string_too_short"),
    ([1, 2], ["body"], "model_attributes_type"),
])
def test_wrong_types_name_the_field(tenant: Tenant, body: Any, loc: list[Any], kind: str) -> None:
    items = error(tenant.client.post("/v1/apps", json=body), 422)
    assert {"loc": loc, "type": kind} in [{"loc": i["loc"], "type": i["type"]} for i in items]
    assert tenant.client.get("/v1/apps").json()["total"] == 0


def test_errors_never_echo_the_submitted_value(tenant: Tenant) -> None:
    secret = "sk-live-" + "x" * 40
    answer = tenant.client.post("/v1/apps", json={"name": "x", "api_key": secret})
    items = error(answer, 422)
    assert items[0]["loc"] == ["body", "api_key"] and items[0]["type"] == "extra_forbidden"
    assert secret not in answer.text and set(items[0]) == {"loc", "msg", "type"}


@pytest.mark.parametrize(("method", "path", "body", "loc"), [
    ("POST", "/v1/apps", {"name": "x", "colour": "red"}, ["body", "colour"]),
    ("POST", "/v1/keys", {"name": "x", "scopes": ["all"]}, ["body", "scopes"]),
    ("POST", "/v1/graphs/validate", {"nodes": [], "settings": {"speed": "fast"}},
     ["body", "settings", "speed"]),
    ("POST", "/v1/graphs/validate", {"nodes": [{"id": "a", "type": "output", "policy": {"retry": 1}}]},
     ["body", "nodes", 0, "policy", "retry"]),
])
def test_unknown_fields_are_refused(tenant: Tenant, method: str, path: str, body: Any,
                                    loc: list[Any]) -> None:
    items = error(tenant.client.request(method, path, json=body), 422)
    assert [(i["loc"], i["type"]) for i in items] == [(loc, "extra_forbidden")]


def test_unknown_fields_on_update_and_publish(tenant: Tenant) -> None:
    app_id = tenant.client.post("/v1/apps", json={"name": "Greeter", "graph": greeter_graph()}).json()["id"]
    patched = tenant.client.patch(f"/v1/apps/{app_id}", json={"name": "y", "owner": "me"})
    assert error(patched, 422)[0]["loc"] == ["body", "owner"]
    published = tenant.client.post(f"/v1/apps/{app_id}/publish", json={"note": "n", "version": 5})
    assert error(published, 422)[0]["loc"] == ["body", "version"]
    after = tenant.client.get(f"/v1/apps/{app_id}").json()
    assert after["name"] == "Greeter" and after["latest_version"] == 0


@pytest.mark.parametrize("path", ["/v1/apps/not-a-uuid", "/v1/apps/123/draft", "/v1/apps/zzz/versions",
                                  "/v1/runs/nope"])
def test_a_bad_uuid_in_the_path_is_422(tenant: Tenant, path: str) -> None:
    items = error(tenant.client.get(path), 422)
    assert items[0]["loc"][0] == "path" and items[0]["type"] == "uuid_parsing"


def test_a_bad_number_in_the_path_is_422(tenant: Tenant) -> None:
    app_id = tenant.client.post("/v1/apps", json={"name": "Greeter"}).json()["id"]
    items = error(tenant.client.get(f"/v1/apps/{app_id}/versions/first"), 422)
    assert items[0]["loc"] == ["path", "number"] and items[0]["type"] == "int_parsing"


# --- routes and methods --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/apps/00000000-0000-0000-0000-000000000000/nope",
                                  "/v2/apps"])
def test_unknown_route_is_404_in_the_one_shape(tenant: Tenant, path: str) -> None:
    items = error(tenant.client.get(path), 404)
    assert items == [{"loc": [], "msg": "Not Found", "type": "http_404"}]


def test_a_missing_app_is_404_in_the_one_shape(tenant: Tenant) -> None:
    items = error(tenant.client.get("/v1/apps/00000000-0000-0000-0000-000000000000"), 404)
    assert items[0]["type"] == "not_found"


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/v1/blocks"), ("PUT", "/v1/apps"),
                                              ("GET", "/v1/graphs/validate"), ("PATCH", "/v1/org")])
def test_wrong_method_is_405_in_the_one_shape(tenant: Tenant, method: str, path: str) -> None:
    answer = tenant.client.request(method, path)
    items = error(answer, 405)
    assert items == [{"loc": [], "msg": "Method Not Allowed", "type": "http_405"}]
    assert answer.headers["allow"]


# --- limits ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "loc"), [
    ({"limit": 1000}, ["query", "limit"]),
    ({"limit": 0}, ["query", "limit"]),
    ({"limit": "ten"}, ["query", "limit"]),
    ({"offset": -1}, ["query", "offset"]),
    ({"q": "x" * 201}, ["query", "q"]),
])
def test_pagination_limits(tenant: Tenant, params: dict[str, Any], loc: list[str]) -> None:
    items = error(tenant.client.get("/v1/apps", params=params), 422)
    assert items[0]["loc"] == loc
    assert tenant.client.get("/v1/apps", params={"limit": 100}).status_code == 200


def test_versions_and_audit_pages_are_limited_too(tenant: Tenant) -> None:
    app_id = tenant.client.post("/v1/apps", json={"name": "Greeter"}).json()["id"]
    for path in (f"/v1/apps/{app_id}/versions", "/v1/audit", f"/v1/apps/{app_id}/runs"):
        assert error(tenant.client.get(path, params={"limit": 1000}), 422)[0]["loc"] == ["query", "limit"]


def test_a_graph_over_the_node_limit_is_refused_at_publish(sessions: sessionmaker[Session],
                                                           tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="test-secret",
                        max_graph_nodes=3)
    tenant = make_tenant(sessions, TestClient(create_app(settings, sessions=sessions)), "acme")
    graph = greeter_graph()
    graph["nodes"].append({"id": "extra", "type": "output", "config": {}})
    app_id = tenant.client.post("/v1/apps", json={"name": "Big", "graph": graph}).json()["id"]
    problems = tenant.client.get(f"/v1/apps/{app_id}/draft").json()["problems"]
    assert [p["code"] for p in problems] == ["too_many_nodes"]
    items = error(tenant.client.post(f"/v1/apps/{app_id}/publish"), 422)
    assert [i["type"] for i in items] == ["graph.too_many_nodes"]


# --- body size ------------------------------------------------------------------------------------------


@pytest.fixture
def small(sessions: sessionmaker[Session], tmp_path: Path) -> Tenant:
    """A tenant of an API that refuses bodies over 2 KiB."""
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="test-secret",
                        max_body_bytes=2048)
    return make_tenant(sessions, TestClient(create_app(settings, sessions=sessions)), "acme")


def big_body() -> bytes:
    """A well-formed app of about 4 KiB."""
    return json.dumps({"name": "Big", "description": "x" * 4000}).encode()


def test_a_body_over_the_limit_is_413(small: Tenant) -> None:
    body = big_body()
    answer = small.client.post("/v1/apps", content=body, headers={"Content-Type": "application/json"})
    items = error(answer, 413)
    assert items[0]["type"] == "too_large" and items[0]["loc"] == ["body"] and "2048" in items[0]["msg"]
    under = small.client.post("/v1/apps", json={"name": "Small", "description": "x" * 1000})
    assert under.status_code == 201
    assert small.client.get("/v1/apps").json()["total"] == 1


def test_a_lying_content_length_is_413(small: Tenant) -> None:
    answer = small.client.post("/v1/apps", content=b'{"name": "x"}',
                               headers={"Content-Type": "application/json", "Content-Length": "abc"})
    assert error(answer, 413)[0]["type"] == "too_large"


def test_a_streamed_body_over_the_limit_is_413(small: Tenant) -> None:
    def chunks() -> Iterator[bytes]:
        body = big_body()
        for start in range(0, len(body), 512):
            yield body[start:start + 512]

    answer = small.client.post("/v1/apps", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in answer.request.headers
    items = error(answer, 413)
    assert items[0]["type"] == "too_large"
    assert small.client.get("/v1/apps").json()["total"] == 0


def test_a_body_streamed_in_many_small_chunks_is_413(small: Tenant) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = big_body()
        for start in range(0, len(body), 256):
            yield body[start:start + 256]

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=small.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers={"Authorization": f"Bearer {small.key}"}) as client:
            return await client.post("/v1/apps", content=chunks(),
                                     headers={"Content-Type": "application/json"})

    # In a thread of its own: a browser test's event loop may already run in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(asyncio.run, send()).result()
    assert error(answer, 413)[0]["type"] == "too_large"
    assert small.client.get("/v1/apps").json()["total"] == 0
