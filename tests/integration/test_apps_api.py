"""Apps as a builder uses them: CRUD, the draft, validation, publishing, versions, export and import."""

from __future__ import annotations

import copy
from typing import Any

from tests.conftest import Tenant
from tests.factories import edge, greeter_graph, node


def invalid_graph() -> dict[str, Any]:
    """The greeter with three mistakes: an unknown block, a wire to a missing port, an unfed output."""
    graph = greeter_graph()
    graph["nodes"].append({**node("mystery", "nope.block"), "position": {"x": 300, "y": 40}})
    graph["edges"] = [edge("in", "name", "greet", "name"), edge("in", "name", "greet", "missing_port")]
    return graph


EXPECTED_PROBLEMS = {
    ("unknown_block_type", "mystery", None),
    ("unknown_port", "greet", "missing_port"),
    ("required_input_missing", "out", "text"),
}


def problem_keys(problems: list[dict[str, Any]]) -> set[tuple[str, str | None, str | None]]:
    """The stable part of each problem: its code and where it is."""
    return {(p["code"], p["node_id"], p["port"]) for p in problems}


def create(tenant: Tenant, name: str = "Greeter", **body: Any) -> dict[str, Any]:
    """Create an app and return its body."""
    answer = tenant.client.post("/v1/apps", json={"name": name, **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


# --- CRUD ---------------------------------------------------------------------------------------


def test_create_returns_the_app_with_an_empty_draft(tenant: Tenant) -> None:
    app = create(tenant, "Support bot", description="Answers questions")
    assert app["name"] == "Support bot" and app["description"] == "Answers questions"
    assert app["draft"] == {} and app["draft_revision"] == 1
    assert app["latest_version"] == 0 and app["versions"] == []

    with_graph = create(tenant, "Greeter", graph=greeter_graph())
    assert with_graph["draft"] == greeter_graph()
    assert tenant.client.get(f"/v1/apps/{app['id']}").json() == app


def test_list_is_paginated_and_filtered_by_name(tenant: Tenant) -> None:
    for name in ("Alpha bot", "Beta bot", "Gamma", "Delta bot", "Epsilon"):
        create(tenant, name)
    first = tenant.client.get("/v1/apps", params={"limit": 2}).json()
    assert first["total"] == 5 and first["limit"] == 2 and first["offset"] == 0
    assert len(first["items"]) == 2
    rest = tenant.client.get("/v1/apps", params={"limit": 2, "offset": 2}).json()
    last = tenant.client.get("/v1/apps", params={"limit": 2, "offset": 4}).json()
    assert rest["offset"] == 2 and len(rest["items"]) == 2 and len(last["items"]) == 1
    pages = [a["name"] for page in (first, rest, last) for a in page["items"]]
    assert sorted(pages) == ["Alpha bot", "Beta bot", "Delta bot", "Epsilon", "Gamma"]
    assert "draft" not in first["items"][0]

    bots = tenant.client.get("/v1/apps", params={"q": "BOT"}).json()
    assert bots["total"] == 3
    assert {a["name"] for a in bots["items"]} == {"Alpha bot", "Beta bot", "Delta bot"}
    assert tenant.client.get("/v1/apps", params={"q": "zeta"}).json() == {
        "items": [], "total": 0, "limit": 20, "offset": 0}


def test_update_changes_only_what_is_given(tenant: Tenant) -> None:
    app = create(tenant, "Old name", description="kept")
    renamed = tenant.client.patch(f"/v1/apps/{app['id']}", json={"name": "New name"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "New name" and renamed.json()["description"] == "kept"
    described = tenant.client.patch(f"/v1/apps/{app['id']}", json={"description": "changed"})
    assert described.json()["name"] == "New name" and described.json()["description"] == "changed"
    assert tenant.client.get(f"/v1/apps/{app['id']}").json()["name"] == "New name"
    assert tenant.client.patch(f"/v1/apps/{app['id']}", json={"name": ""}).status_code == 422


def test_delete_then_the_app_is_gone(tenant: Tenant) -> None:
    app = create(tenant, graph=greeter_graph())
    assert tenant.client.post(f"/v1/apps/{app['id']}/publish").status_code == 201
    deleted = tenant.client.delete(f"/v1/apps/{app['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    for path in ("", "/draft", "/versions", "/versions/1", "/export"):
        gone = tenant.client.get(f"/v1/apps/{app['id']}{path}")
        assert gone.status_code == 404, path
        assert gone.json()["detail"][0]["type"] == "not_found"
    assert tenant.client.delete(f"/v1/apps/{app['id']}").status_code == 404
    assert tenant.client.get("/v1/apps").json()["total"] == 0


# --- the draft ------------------------------------------------------------------------------------


def test_an_invalid_draft_is_saved_and_its_problems_returned(tenant: Tenant) -> None:
    app = create(tenant)
    saved = tenant.client.put(f"/v1/apps/{app['id']}/draft", json=invalid_graph())
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["valid"] is False
    assert problem_keys(body["problems"]) == EXPECTED_PROBLEMS
    assert all(p["message"] for p in body["problems"])
    assert body["graph"] == invalid_graph()
    # UI fields the engine ignores come back exactly as sent.
    assert body["graph"]["nodes"][0]["position"] == {"x": 10, "y": 20}
    assert body["graph"]["nodes"][3]["position"] == {"x": 300, "y": 40}

    again = tenant.client.get(f"/v1/apps/{app['id']}/draft").json()
    assert again["graph"] == invalid_graph() and problem_keys(again["problems"]) == EXPECTED_PROBLEMS


def test_revision_grows_and_is_the_etag(tenant: Tenant) -> None:
    app = create(tenant)
    url = f"/v1/apps/{app['id']}/draft"
    first = tenant.client.get(url)
    assert first.json()["revision"] == 1 and first.headers["etag"] == '"1"'
    saved = tenant.client.put(url, json=greeter_graph(), headers={"If-Match": '"1"'})
    assert saved.status_code == 200, saved.text
    assert saved.json()["revision"] == 2 and saved.headers["etag"] == '"2"'
    assert saved.json()["valid"] is True and saved.json()["problems"] == []
    weak = tenant.client.put(url, json=greeter_graph(), headers={"If-Match": 'W/"2"'})
    assert weak.json()["revision"] == 3
    unconditional = tenant.client.put(url, json=greeter_graph())
    assert unconditional.json()["revision"] == 4
    assert tenant.client.get(f"/v1/apps/{app['id']}").json()["draft_revision"] == 4


def test_a_stale_if_match_is_a_conflict_and_saves_nothing(tenant: Tenant) -> None:
    app = create(tenant, graph=greeter_graph())
    url = f"/v1/apps/{app['id']}/draft"
    assert tenant.client.put(url, json=greeter_graph(), headers={"If-Match": '"1"'}).status_code == 200
    stale = tenant.client.put(url, json=invalid_graph(), headers={"If-Match": '"1"'})
    assert stale.status_code == 409
    assert stale.json()["detail"][0]["type"] == "conflict"
    assert stale.json()["detail"][0]["loc"] == ["header", "If-Match"]
    current = tenant.client.get(url).json()
    assert current["revision"] == 2 and current["graph"] == greeter_graph()


def test_a_malformed_if_match_is_refused(tenant: Tenant) -> None:
    app = create(tenant)
    url = f"/v1/apps/{app['id']}/draft"
    bad = tenant.client.put(url, json=greeter_graph(), headers={"If-Match": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["header", "If-Match"]
    assert tenant.client.get(url).json()["revision"] == 1


def test_validate_reports_every_problem_of_the_saved_draft(tenant: Tenant) -> None:
    app = create(tenant, graph=invalid_graph())
    report = tenant.client.post(f"/v1/apps/{app['id']}/validate")
    assert report.status_code == 200, report.text
    assert report.json()["valid"] is False
    assert problem_keys(report.json()["problems"]) == EXPECTED_PROBLEMS

    tenant.client.put(f"/v1/apps/{app['id']}/draft", json=greeter_graph())
    valid = tenant.client.post(f"/v1/apps/{app['id']}/validate").json()
    assert valid["valid"] is True and valid["problems"] == []
    assert set(valid["ports"]) == {node["id"] for node in greeter_graph()["nodes"]}


def test_validate_a_graph_that_is_not_saved(tenant: Tenant) -> None:
    report = tenant.client.post("/v1/graphs/validate", json=invalid_graph())
    assert report.status_code == 200
    assert problem_keys(report.json()["problems"]) == EXPECTED_PROBLEMS
    assert tenant.client.post("/v1/graphs/validate", json=greeter_graph()).json()["valid"] is True
    empty = tenant.client.post("/v1/graphs/validate", json={}).json()
    assert [p["code"] for p in empty["problems"]] == ["no_trigger"]
    assert tenant.client.get("/v1/apps").json()["total"] == 0


# --- publishing and versions ---------------------------------------------------------------------


def test_publishing_an_invalid_draft_is_refused_with_its_problems(tenant: Tenant) -> None:
    app = create(tenant, graph=invalid_graph())
    refused = tenant.client.post(f"/v1/apps/{app['id']}/publish", json={"note": "too soon"})
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert problem_keys(detail) == EXPECTED_PROBLEMS
    for item in detail:
        assert {"loc", "msg", "type", "code", "node_id", "port"} <= set(item)
        assert item["type"] == f"graph.{item['code']}" and item["msg"]
        assert item["loc"] == ["graph", *(x for x in (item["node_id"], item["port"]) if x)]
    after = tenant.client.get(f"/v1/apps/{app['id']}").json()
    assert after["latest_version"] == 0 and after["versions"] == []


def test_publish_numbers_versions_and_lists_them_newest_first(tenant: Tenant) -> None:
    app = create(tenant, graph=greeter_graph())
    first = tenant.client.post(f"/v1/apps/{app['id']}/publish", json={"note": "first"})
    assert first.status_code == 201, first.text
    assert first.json()["number"] == 1 and first.json()["note"] == "first"
    assert first.json()["graph"] == greeter_graph()
    second = tenant.client.post(f"/v1/apps/{app['id']}/publish")
    assert second.status_code == 201 and second.json()["number"] == 2 and second.json()["note"] == ""

    listed = tenant.client.get(f"/v1/apps/{app['id']}/versions").json()
    assert listed["total"] == 2 and [v["number"] for v in listed["items"]] == [2, 1]
    assert "graph" not in listed["items"][0]
    assert all(v["created_by"] for v in listed["items"])
    one = tenant.client.get(f"/v1/apps/{app['id']}/versions/1")
    assert one.status_code == 200 and one.json()["note"] == "first"
    assert one.json()["graph"] == greeter_graph()
    assert tenant.client.get(f"/v1/apps/{app['id']}").json()["latest_version"] == 2
    missing = tenant.client.get(f"/v1/apps/{app['id']}/versions/3")
    assert missing.status_code == 404 and missing.json()["detail"][0]["type"] == "not_found"


def test_published_versions_never_change(tenant: Tenant) -> None:
    app = create(tenant, graph=greeter_graph())
    tenant.client.post(f"/v1/apps/{app['id']}/publish")
    changed = greeter_graph()
    changed["nodes"][1]["config"]["template"] = "Goodbye, {{ name }}."
    tenant.client.put(f"/v1/apps/{app['id']}/draft", json=changed)
    tenant.client.put(f"/v1/apps/{app['id']}/draft", json=invalid_graph())
    assert tenant.client.get(f"/v1/apps/{app['id']}/versions/1").json()["graph"] == greeter_graph()


def test_restore_copies_a_version_into_the_draft(tenant: Tenant) -> None:
    app = create(tenant, graph=greeter_graph())
    tenant.client.post(f"/v1/apps/{app['id']}/publish")
    tenant.client.put(f"/v1/apps/{app['id']}/draft", json=invalid_graph())
    restored = tenant.client.post(f"/v1/apps/{app['id']}/versions/1/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["graph"] == greeter_graph() and restored.json()["valid"] is True
    assert restored.json()["revision"] == 3 and restored.headers["etag"] == '"3"'
    assert tenant.client.get(f"/v1/apps/{app['id']}/draft").json()["graph"] == greeter_graph()
    listed = tenant.client.get(f"/v1/apps/{app['id']}/versions").json()
    assert listed["total"] == 1
    assert tenant.client.post(f"/v1/apps/{app['id']}/versions/9/restore").status_code == 404


# --- export and import ----------------------------------------------------------------------------


def test_export_then_import_makes_an_equal_new_app(tenant: Tenant) -> None:
    app = create(tenant, "Greeter", description="says hello", graph=greeter_graph())
    tenant.client.post(f"/v1/apps/{app['id']}/publish", json={"note": "v1"})
    second = greeter_graph()
    second["nodes"][1]["config"]["template"] = "Hi {{ name }}"
    tenant.client.put(f"/v1/apps/{app['id']}/draft", json=second)
    tenant.client.post(f"/v1/apps/{app['id']}/publish", json={"note": "v2"})
    tenant.client.put(f"/v1/apps/{app['id']}/draft", json=invalid_graph())  # drafts may be invalid

    exported = tenant.client.get(f"/v1/apps/{app['id']}/export")
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["format"] == "mantle.app" and document["format_version"] == 1
    assert [v["number"] for v in document["versions"]] == [1, 2]

    imported = tenant.client.post("/v1/apps/import", json=copy.deepcopy(document))
    assert imported.status_code == 201, imported.text
    new = imported.json()
    assert new["id"] != app["id"]
    assert new["name"] == "Greeter" and new["description"] == "says hello"
    assert new["latest_version"] == 2
    assert [(v["number"], v["note"]) for v in new["versions"]] == [(1, "v1"), (2, "v2")]
    assert problem_keys(tenant.client.get(f"/v1/apps/{new['id']}/draft").json()["problems"]) \
        == EXPECTED_PROBLEMS
    # Exporting the copy gives the same document: same draft, same versions.
    assert tenant.client.get(f"/v1/apps/{new['id']}/export").json() == document
    for number, graph in ((1, greeter_graph()), (2, second)):
        original = tenant.client.get(f"/v1/apps/{app['id']}/versions/{number}").json()["graph"]
        copied = tenant.client.get(f"/v1/apps/{new['id']}/versions/{number}").json()["graph"]
        assert copied == original
        assert copied["nodes"][0]["position"] == graph["nodes"][0]["position"]
    assert tenant.client.get("/v1/apps").json()["total"] == 2


def test_import_refuses_an_invalid_version(tenant: Tenant) -> None:
    versions = [{"number": 1, "graph": greeter_graph()}, {"number": 2, "graph": invalid_graph()}]
    document = {"name": "Broken", "draft": invalid_graph(), "versions": versions}
    refused = tenant.client.post("/v1/apps/import", json=document)
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert problem_keys(detail) == EXPECTED_PROBLEMS
    assert all(item["msg"].startswith("version 2: ") for item in detail)
    assert tenant.client.get("/v1/apps").json()["total"] == 0


def test_import_refuses_unknown_fields(tenant: Tenant) -> None:
    document = {"name": "Greeter", "draft": greeter_graph(), "versions": [], "owner": "someone"}
    refused = tenant.client.post("/v1/apps/import", json=document)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "owner"]
    nested = {"name": "Greeter", "draft": greeter_graph(),
              "versions": [{"number": 1, "graph": greeter_graph(), "published_by": "me"}]}
    assert tenant.client.post("/v1/apps/import", json=nested).status_code == 422
    wrong_format = {"format": "other.app", "name": "Greeter", "draft": greeter_graph()}
    assert tenant.client.post("/v1/apps/import", json=wrong_format).status_code == 422
    assert tenant.client.get("/v1/apps").json()["total"] == 0


# --- the block catalogue ---------------------------------------------------------------------------


def test_block_catalogue_describes_each_block(tenant: Tenant) -> None:
    answer = tenant.client.get("/v1/blocks")
    assert answer.status_code == 200
    blocks = {b["type"]: b for b in answer.json()["items"]}
    assert {"trigger.api", "text.template", "logic.condition", "output"} <= set(blocks)
    for name in ("trigger.api", "text.template", "logic.condition", "output"):
        block = blocks[name]
        assert block["version"] >= 1 and block["description"] and block["category"]
        assert block["execution"] in ("inline", "deferred")
        assert block["config_schema"]["type"] == "object"
        for port in block["inputs"] + block["outputs"]:
            assert isinstance(port["name"], str) and isinstance(port["type"], str)
            assert isinstance(port["required"], bool)
        assert tenant.client.get(f"/v1/blocks/{name}").json() == block
    assert blocks["trigger.api"]["trigger"] is True and blocks["trigger.api"]["inputs"] == []
    assert blocks["output"]["trigger"] is False and blocks["output"]["outputs"] == []
    assert {p["name"] for p in blocks["logic.condition"]["outputs"]} == {"true", "false"}
    assert [(p["name"], p["required"]) for p in blocks["logic.condition"]["inputs"]] == [("value", True)]


def test_unknown_block_is_404(tenant: Tenant) -> None:
    answer = tenant.client.get("/v1/blocks/nope")
    assert answer.status_code == 404
    assert answer.json()["detail"] == [
        {"loc": ["path", "block_type"], "msg": "unknown block type 'nope'", "type": "not_found"}]
