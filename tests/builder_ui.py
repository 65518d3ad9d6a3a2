"""Helpers for browser tests of the visual builder at /builder (tests/e2e/test_builder_*.py).

A `Mantle` is the real API served over HTTP on a migrated SQLite file, with one organization and
its admin key; a test seeds apps through the public API (`mantle.client`) and drives the builder
like a person: typing the key into the sign-in form, dragging blocks from the palette onto the
canvas, and pressing a wire from one handle to another with the mouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Locator, Page, expect

from api.main import create_app
from core.settings import Settings
from migrations.run import upgrade
from models.db import session_factory
from models.orgs import Role, create_key, create_org
from tests.conftest import serve

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE = ROOT / "builder" / "ui" / "node_modules" / "axe-core" / "axe.min.js"
# How long a browser wait (a navigation, a click, an expectation) may take before it fails: a
# page load once took over 15 s on a slow machine running the whole suite.
WAIT_MS = 30_000
T = TypeVar("T")


@dataclass
class Mantle:
    """The API over real HTTP, an organization's admin key, and a client sending it."""

    url: str
    key: str
    client: httpx.Client
    org: str = "acme"  # the organization's name, which the builder's header shows

    def create_app(self, name: str, graph: dict[str, Any] | None = None) -> str:
        """A new app (with `graph` as its draft), made through the public API."""
        body: dict[str, Any] = {"name": name}
        if graph is not None:
            body["graph"] = graph
        created = self.client.post("/v1/apps", json=body)
        assert created.status_code == 201, created.text
        app_id: str = created.json()["id"]
        return app_id

    def draft(self, app_id: str) -> dict[str, Any]:
        """The stored draft, its revision and its problems."""
        got = self.client.get(f"/v1/apps/{app_id}/draft")
        assert got.status_code == 200, got.text
        draft: dict[str, Any] = got.json()
        return draft


@contextmanager
def serving(settings: Settings, key: str, port: int | None = None) -> Iterator[Mantle]:
    """Serve the API with `settings` over HTTP (on `port`, or any free one) until the block ends."""
    with serve(create_app(settings), port=port) as server, httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        org = client.get("/v1/org")
        assert org.status_code == 200, org.text
        yield Mantle(url=server.url, key=key, client=client, org=org.json()["name"])


@contextmanager
def running_mantle(data_dir: Path) -> Iterator[Mantle]:
    """Serve the API on a fresh database in `data_dir` until the block ends."""
    url = f"sqlite:///{data_dir / 'mantle.db'}"
    upgrade(url)
    with session_factory(url)() as session:
        org = create_org(session, name="acme")
        _, key = create_key(session, org_id=org.id, name="builder tests", role=Role.admin)
        session.commit()
    settings = Settings(data_dir=data_dir, database_url=url, secret_key="test-secret",
                        twilio_verify_numbers=False)
    with serving(settings, key) as mantle:
        yield mantle


def new_context(browser: Any, **options: Any) -> Any:
    """A fresh browser profile (no cookies) with a large viewport and the builder tests' patience."""
    options.setdefault("viewport", {"width": 1600, "height": 1000})
    context = browser.new_context(**options)
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    return context


@contextmanager
def csp_watched_page(browser: Any, **options: Any) -> Iterator[Page]:
    """One tab in a fresh profile; the test fails if the page did anything its CSP refuses."""
    context = new_context(browser, **options)
    tab = context.new_page()
    refused: list[str] = []
    tab.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        yield tab
    finally:
        context.close()
    assert refused == [], f"the builder did something its Content-Security-Policy refuses: {refused}"


def wait_for(check: Callable[[], T | None], what: str, timeout_s: float = WAIT_MS / 1000) -> T:
    """Poll `check` until it returns something truthy, or fail after the deadline saying `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def sign_in(page: Page, mantle: Mantle, path: str = "/builder/") -> None:
    """Open the builder at `path` and sign in by typing the API key, as a person would."""
    page.goto(f"{mantle.url}{path}")
    page.get_by_role("button", name="Use an API key instead").click()
    page.get_by_label("API key").fill(mantle.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("app-header")).to_contain_text(mantle.org)


def sign_in_by_link(page: Page, mantle: Mantle) -> None:
    """Open a one-time sign-in link (as `mantle up` prints one): one click, and the apps screen shows."""
    link = mantle.client.post("/v1/session/links")
    assert link.status_code == 201, link.text
    parts = urlsplit(link.json()["url"])
    page.goto(f"{mantle.url}{parts.path}?{parts.query}")
    expect(page.get_by_test_id("app-header")).to_contain_text(mantle.org)


def open_editor(page: Page, mantle: Mantle, app_id: str) -> None:
    """Sign in straight into an app's editor (the URL routes there)."""
    sign_in(page, mantle, f"/builder/apps/{app_id}")
    expect(page.get_by_test_id("palette-item").first).to_be_visible()


def block(node_id: str, block_type: str, x: int, y: int, **config: Any) -> dict[str, Any]:
    """A node of a graph seeded through the API, at (x, y) on the canvas."""
    return {"id": node_id, "type": block_type, "config": config, "position": {"x": x, "y": y}}


def node(page: Page, node_id: str) -> Locator:
    """A node on the canvas, by the test id React Flow gives it."""
    return page.locator(f'[data-testid="rf__node-{node_id}"]')


def handle(page: Page, node_id: str, port: str, side: str) -> Locator:
    """A port's handle; `side` is "source" (an output) or "target" (an input)."""
    return page.locator(f'.react-flow__handle.{side}[data-nodeid="{node_id}"][data-handleid="{port}"]')


def select_node(page: Page, node_id: str) -> Locator:
    """Click a node's title: it becomes the selection and the side panel shows its config form."""
    node(page, node_id).locator(".block-head").click()
    panel = page.get_by_test_id("config-panel")
    expect(panel).to_contain_text(node_id)
    return panel


def node_status(page: Page, node_id: str) -> Locator:
    """The status line a node shows during and after a run (icon and words)."""
    return node(page, node_id).get_by_test_id("node-run-status")


def publish(page: Page, note: str) -> None:
    """Publish the draft from the editor's toolbar with a note (the caller checks the version shown)."""
    page.get_by_test_id("publish").click()
    dialog = page.get_by_test_id("publish-dialog")
    dialog.get_by_label("Note (what changed)").fill(note)
    dialog.get_by_role("button", name="Publish").click()


def add_block(page: Page, block_type: str, x: float, y: float, node_id: str) -> Locator:
    """Drag a palette item onto the canvas at (x, y) inside it; the new node gets `node_id`."""
    item = page.locator(f'[data-testid="palette-item"][data-block-type="{block_type}"]')
    item.drag_to(page.get_by_test_id("canvas"), target_position={"x": x, "y": y})
    added = node(page, node_id)
    expect(added).to_be_visible()
    return added


def connect(page: Page, source: str, source_port: str, target: str, target_port: str) -> None:
    """Press the mouse on an output handle, move to an input handle, release."""
    handle(page, source, source_port, "source").hover()
    page.mouse.down()
    end = handle(page, target, target_port, "target").bounding_box()
    assert end is not None, f"{target}.{target_port} is not on screen"
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=8)
    page.mouse.up()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page (its context must bypass the CSP)."""
    page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter(v => v.impact === "serious" || v.impact === "critical")
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         targets: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))""")
    return found


def screenshot(page: Page, name: str) -> None:
    """Keep a picture of the screen in tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
