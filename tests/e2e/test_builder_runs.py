"""Testing and watching runs in the visual builder, in a real browser, on the real worker stack.

The API is served over HTTP on the stack's database and broker; a run worker executes the runs
and an inference worker serves a tiny random GPT-J as `tiny`, so every status a node shows comes
from the real event stream. `http.request` may reach loopback only because these settings put
127.0.0.1 on the allow-list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.builder_ui import (
    Mantle,
    block,
    csp_watched_page,
    new_context,
    node,
    screenshot,
    serious_violations,
    sign_in_by_link,
)
from tests.builder_ui import node_status as status_of
from tests.builder_ui import serving as serving_builder
from tests.conftest import free_port
from tests.engine.conftest import REPO, Stack, running_stack
from tests.http_server import LocalServer, serving
from worker.inference.tiny import save_tiny

RUN_MS = 60_000  # a run on two busy cores, a model's answer included


# The browser tests exercise the builder, not the stack: one stack (PostgreSQL + Redis, which CI
# has) keeps the suite short; the engine's own tests run on both stacks.
@pytest.fixture(scope="module", params=["production"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A run worker and an inference worker serving `tiny`; loopback allowed for `http.request`."""
    tiny = save_tiny(tmp_path_factory.mktemp("tiny") / "model")
    extra = {"http_allow_hosts": ["127.0.0.1"], "inference_stream_every": 2,
             # Shared with `make up`: the shipped model's conversion happens once per checkout.
             "models_dir": str(REPO / ".mantle" / "models"),
             "model_deployments": [{"name": "tiny", "source": str(tiny), "dtype": "float32", "pinned": True,
                                    "max_context": 4096}]}
    with running_stack(request.param, tmp_path_factory.mktemp("builder-runs"), extra) as built:
        built.start_worker(queues="inference", pool="threads", beat=False, timeout=120)
        yield built


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[Mantle]:
    """The API and the builder over real HTTP, on the stack's database and broker."""
    key = str(stack.client.headers["authorization"]).removeprefix("Bearer ")
    with serving_builder(stack.settings, key) as live:
        yield live


@pytest.fixture(scope="module")
def service() -> Iterator[LocalServer]:
    """An outside HTTP API on loopback (its /echo answers what it received)."""
    with serving() as running:
        yield running


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A fresh browser profile with one large tab; the page's Content-Security-Policy must never bite."""
    with csp_watched_page(browser) as tab:
        yield tab


@pytest.fixture
def axe_page(browser: Any) -> Iterator[Page]:
    """A tab whose context lets axe-core's script in (the page's own policy would refuse it)."""
    context = new_context(browser, bypass_csp=True)
    yield context.new_page()
    context.close()


def open_app(page: Page, server: Mantle, app_id: str, tab: str = "") -> None:
    """Sign in with a one-time link (as `mantle up` prints one), then open the app's `tab`."""
    sign_in_by_link(page, server)
    page.goto(f"{server.url}/builder/apps/{app_id}{'/' + tab if tab else ''}")


Wire = tuple[str, str, str, str]


def seed_app(stack: Stack, name: str, nodes: list[dict[str, Any]], edges: list[Wire]) -> str:
    """A new app whose draft is `nodes` wired by `edges` (source, port, target, port)."""
    graph = {"nodes": nodes, "edges": [{"source": s, "source_port": sp, "target": t, "target_port": tp}
                                       for s, sp, t, tp in edges]}
    created = stack.client.post("/v1/apps", json={"name": name, "graph": graph})
    assert created.status_code == 201, created.text
    app_id: str = created.json()["id"]
    return app_id


def greeter(stack: Stack) -> str:
    """in (a name) -> greet (template) -> gen (the tiny model) -> out."""
    return seed_app(stack, "Greeter", [
        block("in", "trigger.api", 0, 0, fields=[{"name": "name", "label": "Your name"}]),
        block("greet", "text.template", 300, 0, template="Say hi to {{ name }}"),
        block("gen", "llm.prompt", 600, 0, model="tiny", template="{{ text }}", chat=False, temperature=0,
              max_new_tokens=24),
        block("out", "output", 900, 0, fields=[{"name": "reply"}]),
    ], [("in", "name", "greet", "name"), ("greet", "text", "gen", "text"), ("gen", "text", "out", "reply")])


def test_the_draft_is_tested_in_place_and_its_nodes_light_up(stack: Stack, server: Mantle,
                                                              page: Page) -> None:
    app_id = greeter(stack)
    open_app(page, server, app_id)
    page.get_by_test_id("test-draft").click()
    panel = page.get_by_test_id("test-panel")
    panel.get_by_label("Your name").fill("Ada")
    panel.get_by_role("button", name="Run the draft").click()

    for node_id in ("in", "greet", "gen", "out"):
        expect(status_of(page, node_id)).to_contain_text("Succeeded", timeout=RUN_MS)
    expect(panel.get_by_test_id("run-status")).to_have_text("✓ Succeeded")
    run = stack.client.get(f"/v1/apps/{app_id}/runs").json()["items"][0]
    trace = {t["node_id"]: t for t in stack.get_run(run["id"])["trace"]}
    answer = trace["gen"]["outputs"]
    assert run["draft"] and answer["completion_tokens"] > 0
    expect(node(page, "gen").get_by_test_id("node-run-text")).not_to_be_empty()  # the model's text
    expect(panel.get_by_test_id("run-outputs")).to_contain_text('"reply"')
    screenshot(page, f"builder-test-run-{stack.name}")

    # The node inspector: the model's inputs, outputs, timing and tokens.
    node(page, "gen").click()
    inspector = panel.get_by_test_id("node-inspector")
    expect(inspector).to_contain_text("Say hi to Ada")
    expect(inspector).to_contain_text(f"{answer['prompt_tokens']} in, {answer['completion_tokens']} out")
    expect(inspector.get_by_label("Outputs of gen")).to_contain_text('"finish_reason"')
    node(page, "greet").click()
    expect(inspector.get_by_label("Inputs of greet")).to_contain_text('"name": "Ada"')
    screenshot(page, f"builder-node-inspector-{stack.name}")

    # Closing the panel takes the run off the canvas.
    page.get_by_test_id("test-draft").click()
    expect(page.get_by_test_id("node-run-status")).to_have_count(0)


def test_one_node_is_tested_alone_and_side_effects_need_consent(
        stack: Stack, server: Mantle, service: LocalServer, page: Page) -> None:
    app_id = seed_app(stack, "Poster", [
        block("in", "trigger.api", 0, 0),
        block("greet", "text.template", 300, 0, template="Hi {{ text }}, you are {{ age }}"),
        block("post", "http.request", 600, 0, url=service.url + "/echo", method="POST", body_type="json",
              body={"message": "{{ text }}"}, retries=0),
        block("out", "output", 900, 0),
    ], [("in", "text", "greet", "text"), ("greet", "text", "post", "text"), ("post", "text", "out", "text")])
    open_app(page, server, app_id)

    node(page, "greet").click()
    page.get_by_test_id("config-panel").get_by_role("button", name="Test this node").click()
    dialog = page.get_by_role("dialog", name="Test greet alone")
    dialog.get_by_label("age").fill("thirty-six")  # a port of any type takes text...
    dialog.get_by_label("text").fill("Grace")
    dialog.get_by_role("button", name="Run this node").click()
    result = dialog.get_by_test_id("node-test-result")
    expect(result.get_by_test_id("run-status")).to_have_text("✓ Succeeded", timeout=RUN_MS)
    expect(result.get_by_test_id("run-outputs")).to_contain_text("Hi Grace, you are thirty-six")
    dialog.get_by_label("age").fill("36")  # ...and JSON as its value
    dialog.get_by_role("button", name="Run this node").click()
    expect(result.get_by_test_id("run-outputs")).to_contain_text("Hi Grace, you are 36", timeout=RUN_MS)
    screenshot(page, f"builder-node-test-{stack.name}")
    dialog.get_by_role("button", name="Close").click()
    expect(status_of(page, "greet")).to_contain_text("Succeeded")  # the test shows on the canvas too

    node(page, "post").click()
    page.get_by_test_id("config-panel").get_by_role("button", name="Test this node").click()
    dialog = page.get_by_role("dialog", name="Test post alone")
    consent = dialog.get_by_label("Allow side effects")
    expect(dialog).to_contain_text("send a real SMS, or change data in another service")
    dialog.get_by_label("text").fill("hello")
    dialog.get_by_role("button", name="Run this node").click()
    expect(dialog.get_by_role("alert")).to_contain_text("has side effects outside Mantle")
    assert service.seen("/echo") == []
    consent.check()
    dialog.get_by_role("button", name="Run this node").click()
    expect(dialog.get_by_test_id("run-outputs")).to_contain_text('"status": 200', timeout=RUN_MS)
    assert [json.loads(r.body) for r in service.seen("/echo")] == [{"message": "hello"}]
    tests = stack.client.get(f"/v1/apps/{app_id}/runs", params={"kind": "node_test"}).json()
    assert {r["test_node_id"] for r in tests["items"]} == {"greet", "post"}


def test_a_failed_run_is_retried_from_its_failed_node_then_run_again(
        stack: Stack, server: Mantle, axe_page: Page) -> None:
    page = axe_page
    port = free_port()  # nothing listens here yet: the lookup is refused
    app_id = seed_app(stack, "Weather", [
        block("in", "trigger.api", 0, 0, fields=[{"name": "city"}]),
        block("ask", "text.template", 300, 0, template="{{ city | urlencode }}"),
        block("lookup", "http.request", 600, 0, url=f"http://127.0.0.1:{port}/weather/{{{{ text }}}}",
              retries=0),
        block("out", "output", 900, 0, fields=[{"name": "weather", "type": "any"}]),
    ], [("in", "city", "ask", "city"), ("ask", "text", "lookup", "text"),
        ("lookup", "json", "out", "weather")])
    assert stack.client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    failed = stack.wait_run(stack.run(app_id, {"city": "Lyon"})["id"])
    assert failed["status"] == "failed", failed

    open_app(page, server, app_id, "runs")
    row = page.get_by_test_id("run-row").filter(has_text=failed["id"][:8])
    expect(row).to_contain_text("Failed")
    expect(row).to_contain_text("Version 1")
    row.get_by_role("link").click()
    detail = page.get_by_test_id("run-detail")
    expect(detail.get_by_test_id("run-status")).to_have_text("✕ Failed")
    expect(status_of(page, "lookup")).to_contain_text("Failed")
    expect(status_of(page, "ask")).to_contain_text("Succeeded")
    node(page, "lookup").click()  # its trace entry opens beside the graph
    entry = detail.locator('[data-testid="trace-entry"][data-node-id="lookup"]')
    expect(entry).to_have_attribute("open", "")
    expect(entry.get_by_test_id("node-inspector")).to_contain_text("Error:")
    screenshot(page, f"builder-run-failed-{stack.name}")
    assert serious_violations(page) == [], "a failed run"

    with serving(port) as weather:  # the outside service is back
        detail.get_by_test_id("retry").click()
        expect(page).not_to_have_url(f"{server.url}/builder/apps/{app_id}/runs?run={failed['id']}")
        detail = page.get_by_test_id("run-detail")
        expect(detail.get_by_test_id("run-status")).to_have_text("✓ Succeeded", timeout=RUN_MS)
        expect(detail).to_contain_text(f"Retry {page.url[-36:][:8]}")
        expect(detail).to_contain_text("Reused from the failed run (not executed again): in, ask.")
        expect(status_of(page, "in")).to_have_text("✓ Succeeded (reused)")
        expect(status_of(page, "ask")).to_have_text("✓ Succeeded (reused)")
        expect(status_of(page, "lookup")).to_have_text("✓ Succeeded")
        out = detail.locator('[data-testid="trace-entry"][data-node-id="out"]')
        expect(out).to_have_attribute("data-status", "succeeded")
        assert [r.path for r in weather.requests] == ["/weather/Lyon"]
        screenshot(page, f"builder-run-retried-{stack.name}")

        detail.get_by_test_id("rerun").click()
        expect(detail.get_by_role("heading", level=2)).to_contain_text("Re-run", timeout=RUN_MS)
        expect(detail.get_by_test_id("run-status")).to_have_text("✓ Succeeded", timeout=RUN_MS)
        expect(status_of(page, "in")).to_have_text("✓ Succeeded")  # run again, not reused
        assert len(weather.requests) == 2

    page.get_by_role("link", name="← All runs").click()
    rows = page.get_by_test_id("run-row")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Re-run")  # newest first
    page.get_by_test_id("runs-status-filter").select_option("failed")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(failed["id"][:8])
    page.get_by_test_id("runs-status-filter").select_option("succeeded")
    expect(rows).to_have_count(2)
    screenshot(page, f"builder-runs-list-{stack.name}")
    assert serious_violations(page) == [], "the runs list"


def test_a_run_waiting_for_review_holds_the_canvas_and_is_counted(
        stack: Stack, server: Mantle, axe_page: Page) -> None:
    page = axe_page
    app_id = seed_app(stack, "Careful", [
        block("in", "trigger.api", 0, 0),
        block("check", "human.review", 300, 0, instructions="Is this polite?"),
        block("out", "output", 600, 0),
    ], [("in", "text", "check", "text"), ("check", "text", "out", "text")])
    open_app(page, server, app_id)
    page.get_by_test_id("test-draft").click()
    panel = page.get_by_test_id("test-panel")
    panel.get_by_label("text").fill("Hello there")
    panel.get_by_role("button", name="Run the draft").click()

    expect(status_of(page, "check")).to_have_text("⏸ Waiting for a reviewer", timeout=RUN_MS)
    expect(status_of(page, "in")).to_contain_text("Succeeded")
    expect(status_of(page, "out")).to_contain_text("Queued")
    # While the run is live the graph cannot change.
    node(page, "in").click()
    expect(page.get_by_test_id("config-panel").get_by_role("button", name="Add field")).to_be_disabled()
    page.keyboard.press("Delete")
    expect(node(page, "in")).to_be_visible()
    screenshot(page, f"builder-test-waiting-{stack.name}")
    assert serious_violations(page) == [], "the editor during a test run"

    page.get_by_test_id("app-tabs").get_by_role("link", name="Runs").click()
    expect(page.get_by_test_id("reviews-waiting")).to_have_text(
        "1 review waiting for a decision in the review queue")
    expect(page.get_by_test_id("reviews-waiting").get_by_role("link")).to_have_attribute("href", "/review")
    expect(page.get_by_test_id("run-row")).to_contain_text("Waiting")
    page.get_by_test_id("run-row").get_by_role("link").click()
    detail = page.get_by_test_id("run-detail")
    expect(detail.get_by_test_id("run-status")).to_contain_text("Waiting")
    expect(status_of(page, "check")).to_have_text("⏸ Waiting for a reviewer")
    assert serious_violations(page) == [], "a waiting run"

    run_id = page.url.rsplit("=", 1)[1]
    assert stack.client.post(f"/v1/runs/{run_id}/cancel").status_code == 200
    expect(detail.get_by_test_id("run-status")).to_have_text("⊘ Cancelled", timeout=RUN_MS)
