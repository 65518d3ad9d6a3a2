"""The visual builder in a real browser: sign in, manage apps, and compose an app on the canvas.

Everything runs against the real API (served over HTTP by the test) and the committed bundle in
builder/ui/dist; blocks are dragged from the palette and wires pressed from handle to handle
with the mouse, as a person would. A config field the block hints is picked from a list loaded
from the API (app.call's app and version).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.builder_ui import (
    AXE,
    WAIT_MS,
    Mantle,
    add_block,
    block,
    connect,
    csp_watched_page,
    handle,
    node,
    open_editor,
    running_mantle,
    screenshot,
    select_node,
    serious_violations,
    sign_in,
    wait_for,
)
from tests.conftest import IN_CI
from tests.webapps import webapp_graph


@pytest.fixture(scope="module")
def mantle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mantle]:
    """The API over HTTP on its own database, with an organization "acme" and its admin key."""
    with running_mantle(tmp_path_factory.mktemp("builder")) as live:
        yield live


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A fresh browser profile with one large tab; the page's Content-Security-Policy must never bite."""
    with csp_watched_page(browser, accept_downloads=True) as tab:
        yield tab


def edges(page: Page) -> Any:
    """Every wire drawn on the canvas."""
    return page.locator('[data-testid^="rf__edge-"]')


def saved(page: Page) -> None:
    """Wait until the editor says every change is saved."""
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-status", "saved")


def test_apps_are_created_renamed_searched_exported_imported_and_deleted(
        mantle: Mantle, page: Page, tmp_path: Path) -> None:
    sign_in(page, mantle)
    page.get_by_label("Name", exact=True).fill("Support bot")
    page.get_by_label("Description").fill("Answers texts")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="Support bot")).to_be_visible()
    app_id = page.url.rsplit("/", 1)[-1]
    assert page.url == f"{mantle.url}/builder/apps/{app_id}"
    page.reload()  # the URL keeps you in place
    expect(page.get_by_role("heading", name="Support bot")).to_be_visible()

    page.get_by_role("link", name="Apps").click()
    row = page.get_by_test_id("app-row").filter(has_text="Support bot")
    row.get_by_role("button", name="Rename").click()
    row.get_by_label("New name for Support bot").fill("Help desk")
    row.get_by_role("button", name="Save name").click()
    expect(page.get_by_test_id("app-row").filter(has_text="Help desk")).to_be_visible()
    assert mantle.client.get(f"/v1/apps/{app_id}").json()["name"] == "Help desk"

    mantle.create_app("Weather")
    page.get_by_label("Search apps").fill("help")
    expect(page.get_by_test_id("app-row")).to_have_count(1)
    expect(page.get_by_test_id("app-row")).to_contain_text("Help desk")
    screenshot(page, "builder-apps")

    row = page.get_by_test_id("app-row").filter(has_text="Help desk")
    with page.expect_download() as download:
        row.get_by_role("button", name="Export").click()
    exported = tmp_path / "help-desk.mantle.json"
    download.value.save_as(exported)
    assert json.loads(exported.read_text())["name"] == "Help desk"

    row.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete Help desk?")
    dialog.get_by_role("button", name="Delete app").click()
    expect(page.get_by_test_id("app-row")).to_have_count(0)
    assert mantle.client.get(f"/v1/apps/{app_id}").status_code == 404

    page.get_by_test_id("import-app").set_input_files(str(exported))
    expect(page.get_by_role("heading", name="Help desk")).to_be_visible()
    assert page.url != f"{mantle.url}/builder/apps/{app_id}"  # a new app, not the deleted one


def test_an_sms_app_is_composed_with_the_mouse_checked_configured_and_published(
        mantle: Mantle, page: Page) -> None:
    app_id = mantle.create_app("SMS helper")
    open_editor(page, mantle, app_id)
    add_block(page, "twilio.sms_input", 110, 220, "sms_input_1")
    add_block(page, "governance.policy", 470, 70, "policy_1")
    add_block(page, "llm.prompt", 470, 420, "prompt_1")
    add_block(page, "twilio.sms_output", 850, 260, "sms_output_1")
    connect(page, "sms_input_1", "body", "policy_1", "text")
    connect(page, "policy_1", "text", "prompt_1", "text")
    connect(page, "prompt_1", "text", "sms_output_1", "body")
    expect(edges(page)).to_have_count(3)

    # The reply has no recipient yet: the problem shows on the node, on its port, and in the list.
    reply = node(page, "sms_output_1")
    expect(reply.get_by_test_id("node-problems")).to_have_text("⚠ 1")
    expect(reply.locator(".port-in.has-problem")).to_contain_text("to")
    problem = page.get_by_test_id("problem-item").filter(has_text="sms_output_1.to")
    expect(problem).to_contain_text("required input 'to'")
    expect(page.get_by_test_id("publish")).to_be_disabled()
    expect(page.locator("#publish-reason")).to_have_text("Fix 1 problem first")
    problem.click()  # selects and opens the node it names
    expect(page.get_by_test_id("config-panel")).to_contain_text("sms_output_1")
    screenshot(page, "builder-editor-problem")
    page.get_by_role("button", name="Fit View").click()  # back to the whole graph

    # A list of media URLs is no phone number: the wire is refused on the spot, with the reason.
    connect(page, "sms_input_1", "media_urls", "sms_output_1", "to")
    expect(page.get_by_test_id("canvas-status")).to_contain_text(
        "Cannot connect sms_input_1.media_urls (array) to sms_output_1.to (string)")
    expect(edges(page)).to_have_count(3)
    connect(page, "sms_input_1", "from_number", "sms_output_1", "to")
    expect(edges(page)).to_have_count(4)
    expect(problem).to_have_count(0)
    expect(reply.get_by_test_id("node-problems")).to_have_count(0)

    # Configure the policy through its generated form: redact e-mail addresses.
    node(page, "policy_1").locator(".block-head").click()
    panel = page.get_by_test_id("config-panel")
    panel.get_by_label("Use pii").check()
    panel.get_by_label("EMAIL_ADDRESS").check()
    # A template that reads {{ customer }} gives the prompt a `customer` input, to be wired.
    node(page, "prompt_1").locator(".block-head").click()
    panel.get_by_label("Template").fill("Reply kindly to {{ customer }}: {{ text }}")
    expect(handle(page, "prompt_1", "customer", "target")).to_be_visible()
    expect(page.get_by_test_id("problem-item").filter(has_text="prompt_1.customer")).to_be_visible()
    connect(page, "sms_input_1", "from_number", "prompt_1", "customer")
    expect(page.get_by_test_id("problem-item")).to_have_count(0)
    saved(page)

    draft = mantle.draft(app_id)
    nodes = {n["id"]: n for n in draft["graph"]["nodes"]}
    assert nodes["policy_1"]["config"] == {"pii": {"entities": ["EMAIL_ADDRESS"]}}
    assert nodes["prompt_1"]["config"]["template"] == "Reply kindly to {{ customer }}: {{ text }}"
    assert all(set(n["position"]) == {"x", "y"} for n in nodes.values())
    wires = {(e["source"], e["source_port"], e["target"], e["target_port"]) for e in draft["graph"]["edges"]}
    assert wires == {
        ("sms_input_1", "body", "policy_1", "text"), ("policy_1", "text", "prompt_1", "text"),
        ("prompt_1", "text", "sms_output_1", "body"), ("sms_input_1", "from_number", "sms_output_1", "to"),
        ("sms_input_1", "from_number", "prompt_1", "customer")}
    assert draft["problems"] == []
    assert "selected" not in json.dumps(draft["graph"])  # UI-only keys stay in the browser

    page.get_by_test_id("publish").click()
    dialog = page.get_by_test_id("publish-dialog")
    dialog.get_by_label("Note (what changed)").fill("First version")
    dialog.get_by_role("button", name="Publish").click()
    expect(page.get_by_test_id("published-version")).to_have_text("Published version 1")
    versions = mantle.client.get(f"/v1/apps/{app_id}/versions").json()["items"]
    assert [(v["number"], v["note"]) for v in versions] == [(1, "First version")]
    screenshot(page, "builder-editor")


def test_undo_redo_copy_paste_and_delete(mantle: Mantle, page: Page) -> None:
    graph = {"nodes": [block("api", "trigger.api", 0, 0, fields=[{"name": "text"}]),
                       block("tpl", "text.template", 320, 0, template="Hi {{ text }}")], "edges": []}
    app_id = mantle.create_app("Greeter", graph)
    open_editor(page, mantle, app_id)
    connect(page, "api", "text", "tpl", "text")
    expect(edges(page)).to_have_count(1)

    page.keyboard.press("Control+z")
    expect(edges(page)).to_have_count(0)
    expect(page.get_by_test_id("canvas-status")).to_have_text("Undid: connect.")
    page.keyboard.press("Control+Shift+z")
    expect(edges(page)).to_have_count(1)
    page.get_by_test_id("undo").click()
    expect(edges(page)).to_have_count(0)
    page.get_by_test_id("redo").click()
    expect(edges(page)).to_have_count(1)

    # Box-select both nodes (Shift + drag on the pane), copy, paste: new ids, the wire kept.
    canvas = page.get_by_test_id("canvas").bounding_box()
    assert canvas is not None
    page.keyboard.down("Shift")
    page.mouse.move(canvas["x"] + 5, canvas["y"] + 5)
    page.mouse.down()
    page.mouse.move(canvas["x"] + canvas["width"] - 5, canvas["y"] + canvas["height"] - 5, steps=10)
    page.mouse.up()
    page.keyboard.up("Shift")
    expect(page.locator(".react-flow__node.selected")).to_have_count(2)
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    expect(node(page, "api_1")).to_be_visible()
    expect(node(page, "template_1")).to_be_visible()
    expect(page.locator('[data-testid="rf__edge-api_1:text->template_1:text"]')).to_have_count(1)
    saved(page)
    stored = mantle.draft(app_id)["graph"]
    copy = next(n for n in stored["nodes"] if n["id"] == "template_1")
    assert copy["config"] == {"template": "Hi {{ text }}"}
    assert copy["position"] == {"x": 360, "y": 40}

    page.keyboard.press("Delete")  # the pasted copies are the selection
    expect(node(page, "template_1")).to_have_count(0)
    expect(edges(page)).to_have_count(1)
    page.keyboard.press("Control+z")
    expect(node(page, "template_1")).to_be_visible()
    node(page, "tpl").locator(".block-head").click()
    page.get_by_test_id("delete-selected").click()
    expect(node(page, "tpl")).to_have_count(0)
    expect(page.locator('[data-testid="rf__edge-api:text->tpl:text"]')).to_have_count(0)

    # A block can be added without a mouse: Enter on a palette item.
    page.get_by_label("Find a block").fill("condition")
    page.locator('[data-testid="palette-item"][data-block-type="logic.condition"]').press("Enter")
    expect(node(page, "condition_1")).to_be_visible()
    # ... and wired without one: the new block's inputs list the outputs that fit them.
    wiring = page.get_by_test_id("config-panel").get_by_label("value (any, required) from")
    wiring.select_option(label="api.text (string)")
    expect(page.locator('[data-testid="rf__edge-api:text->condition_1:value"]')).to_have_count(1)


def test_a_stale_draft_save_asks_to_reload_or_overwrite(mantle: Mantle, page: Page) -> None:
    graph = {"nodes": [block("api", "trigger.api", 0, 0)], "edges": []}
    app_id = mantle.create_app("Contested", graph)
    open_editor(page, mantle, app_id)

    # Someone else saves the draft behind this page's back.
    revision = mantle.draft(app_id)["revision"]
    theirs = {"nodes": [*graph["nodes"], {"id": "theirs", "type": "output", "config": {}}], "edges": []}
    put = mantle.client.put(f"/v1/apps/{app_id}/draft", json=theirs, headers={"If-Match": f'"{revision}"'})
    assert put.status_code == 200, put.text

    page.locator('[data-testid="palette-item"][data-block-type="text.template"]').press("Enter")
    dialog = page.get_by_test_id("conflict-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("save-state")).to_contain_text("Not saved")
    screenshot(page, "builder-conflict")
    dialog.get_by_role("button", name="Reload").click()
    expect(dialog).to_be_hidden()
    expect(node(page, "theirs")).to_be_visible()
    expect(node(page, "template_1")).to_have_count(0)

    # Again, and this time keep this page's version.
    revision = mantle.draft(app_id)["revision"]
    put = mantle.client.put(f"/v1/apps/{app_id}/draft", json=graph, headers={"If-Match": f'"{revision}"'})
    assert put.status_code == 200, put.text
    page.locator('[data-testid="palette-item"][data-block-type="text.template"]').press("Enter")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Overwrite").click()
    expect(dialog).to_be_hidden()
    saved(page)
    assert {n["id"] for n in mantle.draft(app_id)["graph"]["nodes"]} == {"api", "theirs", "template_1"}


def test_clicking_a_problem_focuses_the_config_field_it_names(mantle: Mantle, page: Page) -> None:
    fields = [{"name": "text"}, {"name": "2nd"}]  # a port name cannot start with a digit
    graph = {"nodes": [block("api", "trigger.api", 0, 0, fields=fields)], "edges": []}
    app_id = mantle.create_app("Misnamed", graph)
    open_editor(page, mantle, app_id)
    page.get_by_test_id("problem-item").filter(has_text="config.fields.1.name").click()
    field = page.locator('[id="cfg-api-config.fields.1.name"]')
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    field.fill("second")
    expect(page.get_by_test_id("problem-item")).to_have_count(0)
    saved(page)
    assert mantle.draft(app_id)["graph"]["nodes"][0]["config"]["fields"][1] == {"name": "second"}


def big_graph(count: int) -> dict[str, Any]:
    """A trigger and a chain of `count - 1` templates, laid out in rows."""
    nodes = [block("n0", "trigger.api", 0, 0, fields=[{"name": "text"}])]
    edges = []
    for i in range(1, count):
        nodes.append(block(f"n{i}", "text.template", (i % 20) * 260, (i // 20) * 160, template="{{ text }}!"))
        edges.append({"source": f"n{i - 1}", "source_port": "text", "target": f"n{i}", "target_port": "text"})
    return {"nodes": nodes, "edges": edges}


def test_a_300_node_graph_opens_and_a_node_can_be_selected_and_moved(mantle: Mantle, page: Page) -> None:
    app_id = mantle.create_app("Big", big_graph(300))
    open_editor(page, mantle, app_id)
    expect(page.get_by_test_id("problem-item")).to_have_count(0)
    page.get_by_role("button", name="Zoom In").click()  # from the whole graph towards its middle
    target = node(page, "n150")  # row 7, column 10: the middle of the graph
    expect(target).to_be_visible()
    head = target.locator(".block-head")
    head.click()
    expect(page.get_by_test_id("config-panel")).to_contain_text("n150")
    box = head.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 80 + box["height"] / 2, steps=10)
    page.mouse.up()
    saved(page)
    moved = next(n for n in mantle.draft(app_id)["graph"]["nodes"] if n["id"] == "n150")["position"]
    assert moved["x"] > 10 * 260 and moved["y"] > 7 * 160, moved
    screenshot(page, "builder-300-nodes")


def test_main_screens_have_no_serious_accessibility_violations(mantle: Mantle, browser: Any) -> None:
    if not AXE.exists():
        if IN_CI:
            pytest.fail(f"axe-core is missing at {AXE}: run `make ui` (npm ci) first")
        pytest.skip(f"axe-core missing at {AXE} (npm ci in builder/ui installs it)")
    graph = {"nodes": [block("api", "trigger.api", 0, 0, fields=[{"name": "text"}]),
                       block("gen", "llm.prompt", 320, 0)], "edges": []}
    app_id = mantle.create_app("Accessible", graph)
    # Only this check bypasses the page's CSP, to inject axe-core's source.
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, bypass_csp=True)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        page.goto(f"{mantle.url}/builder/")
        expect(page.get_by_label("Email")).to_be_visible()
        assert serious_violations(page) == [], "sign-in screen"
        sign_in(page, mantle)
        expect(page.get_by_test_id("app-row").first).to_be_visible()
        assert serious_violations(page) == [], "apps list"
        page.goto(f"{mantle.url}/builder/apps/{app_id}")
        node(page, "gen").locator(".block-head").click()
        expect(page.get_by_test_id("config-panel")).to_contain_text("gen")
        expect(page.get_by_test_id("problem-item").first).to_be_visible()
        assert serious_violations(page) == [], "editor"
    finally:
        context.close()


def test_an_app_call_block_picks_a_published_app_and_its_version(mantle: Mantle, page: Page) -> None:
    callee = mantle.create_app("Greeting service", webapp_graph())
    published = mantle.client.post(f"/v1/apps/{callee}/publish", json={"note": "First greeting"})
    assert published.status_code == 201, published.text
    mantle.create_app("Unpublished helper")
    caller = mantle.create_app("Caller")
    open_editor(page, mantle, caller)
    add_block(page, "app.call", 300, 200, "call_1")
    panel = select_node(page, "call_1")

    apps = panel.get_by_role("combobox", name="App Id")
    expect(apps.locator("option", has_text="Unpublished helper (not published)")).to_be_disabled()
    expect(apps.locator("option", has_text="Caller (this app)")).to_be_disabled()
    apps.select_option(label="Greeting service (version 1)")
    version = panel.get_by_role("combobox", name="Version")
    expect(version.locator("option")).to_have_text(
        ["Latest published (now version 1)", "Version 1: First greeting"])
    version.select_option(label="Version 1: First greeting")

    def config() -> dict[str, Any]:
        nodes = mantle.draft(caller)["graph"].get("nodes", [])
        return next((n["config"] for n in nodes if n["id"] == "call_1"), {})

    wait_for(lambda: (config().get("app_id"), config().get("version")) == (callee, 1), "the call to be saved")
    # The called app's output is now the node's output port.
    expect(handle(page, "call_1", "greeting", "source")).to_be_visible()


def test_a_map_ticks_its_body_from_the_graph_nodes(mantle: Mantle, page: Page) -> None:
    app_id = mantle.create_app("Mapper", {"nodes": [
        block("in", "trigger.api", 0, 0), block("each", "flow.map", 300, 0),
        block("tidy", "text.template", 600, 0, template="{{ item }}"), block("out", "output", 900, 0)],
        "edges": []})
    open_editor(page, mantle, app_id)
    panel = select_node(page, "each")
    body = panel.get_by_role("group", name="Body")
    expect(body.get_by_role("checkbox")).to_have_count(3)  # every node but the map itself
    body.get_by_role("checkbox", name="tidy").check()

    def config() -> dict[str, Any]:
        return next(n["config"] for n in mantle.draft(app_id)["graph"]["nodes"] if n["id"] == "each")

    wait_for(lambda: config().get("body") == ["tidy"], "the map's body to be saved")
