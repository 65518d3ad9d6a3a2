"""The builder's Versions and Deploy tabs in a real browser.

Versions: two versions published through the API, their diff (a block added, a config changed)
as a list and on the read-only canvas, version 1 restored into the draft and seen in the editor,
and a publish from the editor's toolbar listed when the tab opens again. Deploy: a share link
with an access code made in the builder and run in a second browser context that has no key and
no cookie (on the real worker stack: the run needs a worker), then revoked and refused; a phone
number routed with the webhook URL to paste into Twilio; a webhook URL made and rotated; a
schedule set in the draft with its next run; a policy attached; the app offered as an MCP tool
with its name and description. Errors from the API show next to the field they name. axe-core
finds nothing serious or critical on either tab.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from api.main import create_app
from tests.builder_ui import (
    ARTIFACTS,
    AXE,
    Mantle,
    csp_watched_page,
    new_context,
    running_mantle,
    screenshot,
    serious_violations,
)
from tests.conftest import IN_CI, free_port, serve
from tests.engine.conftest import running_stack
from tests.factories import edge
from tests.sms import sms_graph, store_twilio
from tests.webapps import webapp_graph

RUN_WAIT_MS = 30_000


@pytest.fixture(scope="module")
def mantle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mantle]:
    """The API over HTTP on its own database (no worker: nothing here runs an app)."""
    with running_mantle(tmp_path_factory.mktemp("deploy")) as live:
        yield live


# The browser tests exercise the builder, not the stack: one stack (PostgreSQL + Redis, which CI
# has) keeps the suite short; the engine's own tests run on both stacks.
@pytest.fixture(scope="module", params=["production"])
def stack_mantle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Mantle]:
    """The real worker stack (tests/engine/conftest.py) served over HTTP at the public URL its links name."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tmp = tmp_path_factory.mktemp("stack")
    with running_stack(request.param, tmp, extra={"public_base_url": base}) as stack, \
            serve(create_app(stack.settings), port=port) as server:
        key = str(stack.client.headers["Authorization"]).removeprefix("Bearer ")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            yield Mantle(url=server.url, key=key, client=client)


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A fresh browser profile with one large tab; the page's Content-Security-Policy must never bite."""
    with csp_watched_page(browser) as tab:
        yield tab


def flow_node(scope: Page | Locator, node_id: str) -> Locator:
    """A node drawn by React Flow (the editor's canvas or the diff's), by its test id."""
    return scope.locator(f'[data-testid="rf__node-{node_id}"]')


def path_of(url: str) -> str:
    """The path of a URL the builder shows (`/hooks/<token>`), to call it on the served API."""
    return "/" + url.split("/", 3)[3]


def open_signed_in(page: Page, mantle: Mantle, path: str) -> None:
    """Sign in with a one-time link from `POST /v1/session/links`, then open `path` in the builder."""
    link = ok(mantle.client.post("/v1/session/links"), 201)["url"]
    page.goto(mantle.url + path_of(link))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto(f"{mantle.url}{path}")


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def publish(mantle: Mantle, app_id: str, note: str) -> None:
    ok(mantle.client.post(f"/v1/apps/{app_id}/publish", json={"note": note}), 201)


def two_versions(mantle: Mantle) -> str:
    """An app published twice: version 2 adds a `sign` block and changes `greet`'s template."""
    v1 = webapp_graph("Hi {{ name }}")
    app_id = mantle.create_app("Greeter", v1)
    publish(mantle, app_id, "First greeting")
    v2 = webapp_graph("Hello {{ name }}!")
    v2["nodes"].insert(2, {"id": "sign", "type": "text.template", "position": {"x": 500, "y": 200},
                           "config": {"template": "{{ text }} (Mantle)"}})
    v2["edges"] = [e for e in v2["edges"] if e["target"] != "out"]
    v2["edges"] += [edge("greet", "text", "sign", "text"), edge("sign", "text", "out", "greeting")]
    ok(mantle.client.put(f"/v1/apps/{app_id}/draft", json=v2))
    publish(mantle, app_id, "Signed greeting")
    return app_id


def test_versions_show_the_diff_and_restore_into_the_draft(mantle: Mantle, page: Page) -> None:
    app_id = two_versions(mantle)
    open_signed_in(page, mantle, f"/builder/apps/{app_id}/versions")

    rows = page.get_by_test_id("version-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Signed greeting")
    expect(rows.nth(0)).to_contain_text("builder tests (API key)")  # who published: the key's name
    expect(rows.nth(1)).to_contain_text("First greeting")

    # Version 1 against version 2, as it opens.
    expect(page.get_by_label("Compare", exact=True)).to_have_value("1")
    expect(page.get_by_label("with", exact=True)).to_have_value("2")
    changes = page.get_by_test_id("diff-list")
    expect(changes.get_by_role("status")).to_have_text("5 changes from version 1 to version 2.")
    expect(changes.get_by_role("region", name="Blocks added")).to_contain_text("sign (text.template)")
    changed = changes.get_by_role("region", name="Blocks changed")
    expect(changed).to_contain_text("greet (text.template): config template")
    expect(changes.get_by_role("region", name="Wires added")).to_contain_text("greet.text → sign.text")
    expect(changes.get_by_role("region", name="Wires removed")).to_contain_text("greet.text → out.greeting")
    canvas = page.get_by_test_id("diff-canvas")
    expect(flow_node(canvas, "sign").locator("[data-change]")).to_have_attribute("data-change", "added")
    expect(flow_node(canvas, "sign")).to_contain_text("Added")
    expect(flow_node(canvas, "greet")).to_contain_text("Changed")
    expect(flow_node(canvas, "greet")).to_contain_text("config: template")
    expect(flow_node(canvas, "form").locator("[data-change]")).to_have_attribute("data-change", "same")
    screenshot(page, "builder-versions")

    # The other way round, removed is what version 2 added.
    page.get_by_role("button", name="Swap: compare version 2 with version 1").click()
    expect(changes.get_by_role("region", name="Blocks removed")).to_contain_text("sign (text.template)")
    expect(flow_node(canvas, "sign")).to_contain_text("Removed")

    # Restore version 1: asked first, then the editor shows the restored draft.
    rows.nth(1).get_by_role("button", name="Restore version 1 into the draft").click()
    dialog = page.get_by_role("dialog", name="Restore version 1?")
    expect(dialog).to_contain_text("The draft is replaced by version 1's graph")
    dialog.get_by_role("button", name="Restore version 1").click()
    expect(page).to_have_url(f"{mantle.url}/builder/apps/{app_id}")
    expect(page.get_by_test_id("canvas-status")).to_contain_text("Restored version 1 into the draft")
    expect(flow_node(page, "greet")).to_be_visible()
    expect(flow_node(page, "sign")).to_have_count(0)
    draft = mantle.draft(app_id)
    assert [n["id"] for n in draft["graph"]["nodes"]] == ["form", "greet", "out"]
    greet = next(n for n in draft["graph"]["nodes"] if n["id"] == "greet")
    assert greet["config"]["template"] == "Hi {{ name }}"

    # Publishing from the editor's toolbar: the Versions tab lists it when opened.
    publish_button = page.get_by_test_id("publish")
    expect(publish_button).to_be_enabled()
    publish_button.click()
    page.get_by_label("Note (what changed)").fill("Back to plain")
    page.get_by_test_id("publish-dialog").get_by_role("button", name="Publish").click()
    expect(page.get_by_test_id("published-version")).to_have_text("Published version 3")
    page.get_by_role("link", name="Versions").click()
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Back to plain")
    expect(page.get_by_label("with", exact=True)).to_have_value("3")
    expect(changes.get_by_role("status")).to_have_text("5 changes from version 2 to version 3.")


def test_a_share_link_with_an_access_code_runs_without_a_key_until_revoked(
        stack_mantle: Mantle, page: Page, browser: Any) -> None:
    mantle = stack_mantle
    app_id = mantle.create_app("Greeter", webapp_graph("Hi {{ name }}"))
    publish(mantle, app_id, "First")
    open_signed_in(page, mantle, f"/builder/apps/{app_id}/deploy")
    form = page.get_by_test_id("share-form")
    form.get_by_label("Label (only you see it)").fill("Newsletter")

    # The API's refusal shows next to the field it names.
    code = form.get_by_label("Access code (optional)")
    code.fill("abc")
    form.get_by_role("button", name="Create link").click()
    expect(page.locator("#share-access-code-error")).to_contain_text("at least 4 characters")
    expect(code).to_have_attribute("aria-invalid", "true")
    expect(code).to_be_focused()  # where a keyboard or screen reader user hears the error
    code.fill("open sesame")
    form.get_by_role("button", name="Create link").click()

    item = page.get_by_test_id("share-item").filter(has_text="Newsletter")
    expect(item).to_have_attribute("data-state", "active")
    expect(item).to_contain_text("Access code required")
    url = item.get_by_role("textbox", name="URL").input_value()
    assert url.startswith(f"{mantle.url}/s/")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    item.get_by_role("button", name="Copy the URL of Newsletter").click()
    expect(item.get_by_role("status").first).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == url
    expect(page.locator("#share-access-code-error")).to_have_count(0)
    item.get_by_text("Embed on a web page").click()
    expect(item.get_by_label("HTML to paste into the page")).to_have_value(
        f'<iframe src="{url}?embed=1" title="Greeter" width="100%" height="640" style="border:0" '
        'loading="lazy"></iframe>')
    screenshot(page, "builder-deploy-share")

    # A second browser, without any key or cookie, enters the code and runs the app.
    visitor_context = new_context(browser)
    try:
        visitor = visitor_context.new_page()
        visitor.goto(url)
        expect(visitor.get_by_role("heading", name="Access code needed")).to_be_visible()
        visitor.get_by_label("Access code").fill("open sesame")
        visitor.get_by_role("button", name="Continue").click()
        visitor.locator("#f-name").fill("Ada")
        visitor.locator("#mantle-submit").click()
        expect(visitor.locator("[data-output=greeting]")).to_have_text("Hi Ada", timeout=RUN_WAIT_MS)

        # Revoked in the builder: the visitor is refused.
        item.get_by_role("button", name="Revoke Newsletter").click()
        page.get_by_test_id("revoke-dialog").get_by_role("button", name="Revoke link").click()
        expect(item).to_have_attribute("data-state", "revoked")
        expect(item).to_contain_text("Revoked")
        answer = visitor.goto(url)
        assert answer is not None and answer.status == 404
        expect(visitor.get_by_role("heading", name="Link not found")).to_be_visible()
    finally:
        visitor_context.close()


def test_sms_route_webhook_schedule_and_policies(mantle: Mantle, page: Page) -> None:
    app_id = mantle.create_app("Texter", sms_graph())
    publish(mantle, app_id, "SMS")
    ok(mantle.client.post("/v1/policies", json={"name": "No PII", "description": "Redacts personal data.",
                                                "rules": {"pii": {"action": "redact"}}}), 201)
    open_signed_in(page, mantle, f"/builder/apps/{app_id}/deploy")

    sms = page.get_by_test_id("sms-section")
    expect(sms).to_contain_text("No Twilio credentials are stored")
    store_twilio(mantle.client)
    page.reload()
    expect(sms).to_contain_text("Twilio credentials stored (account AC")
    number = sms.get_by_label("Phone number (E.164)")
    number.fill("555-0100")
    sms.get_by_role("button", name="Route number").click()
    expect(page.locator("#sms-number-error")).to_contain_text("should match pattern")
    number.fill("+15550100222")
    sms.get_by_role("button", name="Route number").click()
    routed = sms.get_by_test_id("number-item").filter(has_text="+15550100222")
    expect(routed).to_be_visible()
    route = ok(mantle.client.get(f"/v1/apps/{app_id}/phone-numbers"))["items"][0]
    paste = routed.get_by_label("Twilio: “A message comes in” webhook (HTTP POST)")
    expect(paste).to_have_value(route["webhook_url"])
    assert route["webhook_url"].endswith(f"/twilio/sms/{route['id']}")

    hook = page.get_by_test_id("webhook-section")
    hook.get_by_role("button", name="Create webhook URL").click()
    shown = hook.get_by_label("Webhook URL (shown once: copy it now and keep it secret)")
    # At the settings' public URL (the address people reach the API at).
    expect(shown).to_have_value(re.compile(r"^http://127\.0\.0\.1:8000/hooks/\S+$"))
    old = shown.input_value()
    # The URL answers; this app is not started by a webhook, which the section says too.
    assert mantle.client.post(path_of(old), json={}).status_code == 409
    expect(hook).to_contain_text("does not start with trigger.webhook")
    hook.get_by_role("button", name="Rotate the webhook URL").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate URL").click()
    expect(shown).not_to_have_value(old)
    assert mantle.client.post(path_of(old), json={}).status_code == 404
    assert mantle.client.post(path_of(shown.input_value()), json={}).status_code == 409

    policies = page.get_by_test_id("policies-section")
    policy = policies.get_by_test_id("policy-item").filter(has_text="No PII")
    expect(policy).to_contain_text("Not attached")
    policy.get_by_role("button", name="Attach No PII").click()
    expect(policy).to_have_attribute("data-attached", "true")
    expect(policies.get_by_role("status")).to_have_text("Attached No PII.")
    assert [p["name"] for p in ok(mantle.client.get(f"/v1/apps/{app_id}/policies"))["items"]] == ["No PII"]
    expect(page.get_by_test_id("schedule-section")).to_contain_text("The draft starts with twilio.sms_input")
    page.get_by_test_id("sms-section").scroll_into_view_if_needed()
    screenshot(page, "builder-deploy-sms")

    routed.get_by_role("button", name="Remove the route of +15550100222").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove route").click()
    expect(routed).to_have_count(0)
    assert ok(mantle.client.get(f"/v1/apps/{app_id}/phone-numbers"))["items"] == []


def test_a_schedule_is_set_in_the_draft_and_its_next_run_shown(mantle: Mantle, page: Page) -> None:
    say = {"id": "say", "type": "text.template", "config": {"template": "tick {{ scheduled_at }}"}}
    graph = {"nodes": [say, {"id": "out", "type": "output", "config": {}}],
             "edges": [edge("say", "text", "out", "text")]}
    app_id = mantle.create_app("Clock", graph)
    open_signed_in(page, mantle, f"/builder/apps/{app_id}/deploy")
    section = page.get_by_test_id("schedule-section")
    expect(section).to_contain_text("The published version is not started by a schedule.")
    section.get_by_label("Cron expression").fill("0 9 * *")
    section.get_by_label("Time zone").fill("Europe/Paris")
    section.get_by_role("button", name="Save schedule to the draft").click()
    expect(page.locator("#schedule-cron-error")).to_contain_text("five fields")
    expect(section.get_by_label("Cron expression")).to_be_focused()
    section.get_by_label("Cron expression").fill("0 9 * * 1-5")
    section.get_by_role("button", name="Save schedule to the draft").click()
    expect(section.get_by_role("status")).to_have_text(
        "Saved in the draft. Publish the draft from the editor to run on it.")
    expect(section.locator("[data-draft-next-run]")).to_be_visible()
    expect(page.locator("#schedule-cron-error")).to_have_count(0)

    # Wired and published, the schedule is live: the next run shows, and it can be stopped.
    draft = mantle.draft(app_id)["graph"]
    draft["edges"].append(edge("schedule", "scheduled_at", "say", "scheduled_at"))
    ok(mantle.client.put(f"/v1/apps/{app_id}/draft", json=draft))
    publish(mantle, app_id, "Weekdays")
    page.reload()
    expect(section).to_contain_text("Version 1 runs on 0 9 * * 1-5 in Europe/Paris.")
    next_run = ok(mantle.client.get(f"/v1/apps/{app_id}/schedule"))["published"]["next_at"]
    # The page shows it in the browser's own time zone and in the schedule's, as the browser writes times.
    utc = next_run if next_run.endswith("Z") or "+" in next_run else f"{next_run}Z"
    here, paris = page.evaluate("(iso) => [new Date(iso).toLocaleString(), "
                                "new Date(iso).toLocaleString(undefined, {timeZone: 'Europe/Paris'})]", utc)
    both = here if here == paris else f"{here} ({paris} in Europe/Paris)"
    expect(section.locator("[data-next-run]")).to_have_text(f"Next run: {both}.")
    section.scroll_into_view_if_needed()
    screenshot(page, "builder-deploy-schedule")
    section.get_by_role("button", name="Stop schedule").click()
    page.get_by_role("dialog").get_by_role("button", name="Stop schedule").click()
    expect(section).to_contain_text("Stopped: publishing a version starts its schedule again.")
    assert ok(mantle.client.get(f"/v1/apps/{app_id}/schedule"))["published"]["active"] is False


def test_no_serious_accessibility_violations_on_versions_and_deploy(mantle: Mantle, browser: Any) -> None:
    if not AXE.exists():
        if IN_CI:
            pytest.fail(f"axe-core is missing at {AXE}: run `make ui` (npm ci) first")
        pytest.skip(f"axe-core missing at {AXE} (npm ci in builder/ui installs it)")
    app_id = two_versions(mantle)
    ok(mantle.client.post(f"/v1/apps/{app_id}/shares", json={"label": "Open", "access_code": "letmein"}), 201)
    context = new_context(browser, bypass_csp=True)  # axe's script is injected, which the CSP forbids
    try:
        page = context.new_page()
        open_signed_in(page, mantle, f"/builder/apps/{app_id}/versions")
        expect(page.get_by_test_id("diff-canvas").locator(".react-flow__node")).to_have_count(4)
        assert serious_violations(page) == [], "versions tab"
        page.get_by_role("link", name="Deploy").click()
        expect(page.get_by_test_id("share-item")).to_have_count(1)
        expect(page.get_by_test_id("policies-section")).to_contain_text(re.compile("No PII|no policies yet"))
        assert serious_violations(page) == [], "deploy tab"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "builder-deploy.png"), full_page=True)
    finally:
        context.close()


def test_an_app_is_offered_as_an_mcp_tool_with_its_name_and_description(mantle: Mantle, page: Page) -> None:
    app_id = mantle.create_app("Greeting Writer", webapp_graph())
    publish(mantle, app_id, "First")
    other = mantle.create_app("Other", webapp_graph())
    ok(mantle.client.patch(f"/v1/apps/{other}", json={"tool": True, "tool_name": "greet"}))
    open_signed_in(page, mantle, f"/builder/apps/{app_id}/deploy")

    section = page.get_by_test_id("mcp-section")
    switch = section.get_by_role("switch", name="Offer this app as an MCP tool")
    expect(switch).not_to_be_checked()
    expect(section).to_contain_text("Not offered: MCP clients do not see it.")
    expect(section.get_by_label("MCP server URL (streamable HTTP)")).to_have_value(f"{mantle.url}/mcp")
    switch.click()
    expect(switch).to_be_checked()
    expect(section).to_contain_text("✓ Offered as the tool greeting_writer.")  # made of the app's name
    assert ok(mantle.client.get(f"/v1/apps/{app_id}"))["tool"] is True

    name = section.get_by_label("Tool name")
    name.fill("greet")  # the other app's tool name: refused, said by the field
    section.get_by_label("Tool description").fill("Writes a greeting for a name.")
    section.get_by_role("button", name="Save tool name and description").click()
    expect(page.locator("#mcp-tool-name-error")).to_contain_text(
        "another app of the organization is the tool")
    expect(name).to_be_focused()
    name.fill("write_greeting")
    section.get_by_role("button", name="Save tool name and description").click()
    expect(section.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    saved = ok(mantle.client.get(f"/v1/apps/{app_id}"))
    assert (saved["tool_name"], saved["tool_description"]) == ("write_greeting",
                                                               "Writes a greeting for a name.")
    section.scroll_into_view_if_needed()
    screenshot(page, "builder-deploy-mcp")

    switch.click()
    expect(section).to_contain_text("Not offered: MCP clients do not see it.")
    assert ok(mantle.client.get(f"/v1/apps/{app_id}"))["tool"] is False
