"""A visitor uses a shared web app in a real browser, with a real worker running the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from api.main import create_app
from tests.conftest import LiveServer, serve
from tests.engine import conftest as engine_fixtures
from tests.engine.conftest import Stack
from tests.factories import node
from tests.webapps import steady_minute, webapp_graph

stack = engine_fixtures.stack  # the real worker stack of the engine tests (a pytest fixture)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[LiveServer]:
    """The API (public pages included) over real HTTP, on the stack's database and broker."""
    with serve(create_app(stack.settings)) as live:
        yield live


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A fresh browser profile (no cookies) and one tab."""
    context = browser.new_context()
    yield context.new_page()
    context.close()


def _shared(stack: Stack, graph: dict[str, Any], **settings: Any) -> tuple[str, dict[str, Any]]:
    app_id = stack.publish(graph, name="Greeter")
    created = stack.client.post(f"/v1/apps/{app_id}/shares", json=settings)
    assert created.status_code == 201, created.text
    return app_id, created.json()


def _submit(page: Page, name: str) -> None:
    page.fill("#f-name", name)
    page.click("#mantle-submit")


def test_a_visitor_fills_the_form_and_sees_the_answer(stack: Stack, server: LiveServer, page: Page) -> None:
    template = "{{ name }} ({{ age }}), {{ tone }}: {{ story }}{% if loud %} HELLO!{% endif %}"
    _, shared = _shared(stack, webapp_graph(template))
    page.goto(f"{server.url}/s/{shared['slug']}")
    expect(page.locator("h1")).to_have_text("Greeter")
    page.fill("#f-name", "Ada")
    page.fill("#f-story", "I like engines.")
    page.fill("#f-age", "36")
    page.select_option("#f-tone", "formal")
    page.check("#f-loud")
    page.click("#mantle-submit")
    output = page.locator("[data-output=greeting]")
    expect(output).to_have_text("Ada (36), formal: I like engines. HELLO!", timeout=WAIT_MS)
    expect(page.locator("#mantle-status-text")).to_have_text("Done.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"webapp-{stack.name}.png"), full_page=True)

    # The server checks limits too: a script that skips the browser's checks is told what is wrong.
    page.evaluate("document.getElementById('f-age').removeAttribute('max')")
    page.fill("#f-age", "400")
    page.click("#mantle-submit")
    expect(page.locator("#e-age")).to_have_text("must be at most 130", timeout=WAIT_MS)


def test_markup_in_the_output_is_shown_as_text(stack: Stack, server: LiveServer, page: Page) -> None:
    _, shared = _shared(stack, webapp_graph("{{ name }}", fields=[{"name": "name", "max_length": 500}]))
    page.goto(f"{server.url}/s/{shared['slug']}")
    markup = '<img src=x onerror="window.pwned=1"><b>bold</b><script>window.pwned=2</script>'
    _submit(page, markup)
    expect(page.locator("[data-output=greeting]")).to_have_text(markup, timeout=WAIT_MS)
    assert page.locator("#mantle-result b, #mantle-result img, #mantle-result script").count() == 0
    assert page.evaluate("window.pwned") is None


def test_the_limit_page_after_too_many_runs(stack: Stack, server: LiveServer, page: Page) -> None:
    _, shared = _shared(stack, webapp_graph("Hi {{ name }}"), visitor_per_minute=2)
    url = f"{server.url}/s/{shared['slug']}"
    steady_minute()
    page.goto(url)
    for name in ("Ada", "Grace"):
        _submit(page, name)
        expect(page.locator("[data-output=greeting]")).to_have_text(f"Hi {name}", timeout=WAIT_MS)
    _submit(page, "Edsger")
    expect(page.locator("#mantle-status-text")).to_contain_text("try again in", timeout=WAIT_MS)
    response = page.goto(url)
    assert response is not None and response.status == 429
    expect(page.locator("h1")).to_have_text("Please slow down")


def test_a_revoked_link_stops_working(stack: Stack, server: LiveServer, page: Page) -> None:
    app_id, shared = _shared(stack, webapp_graph("Hi {{ name }}"))
    url = f"{server.url}/s/{shared['slug']}"
    page.goto(url)
    revoked = stack.client.post(f"/v1/apps/{app_id}/shares/{shared['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    _submit(page, "Ada")  # the page was open before the link was revoked
    expect(page.locator("#mantle-status-text")).to_have_text("This link is no longer available.",
                                                             timeout=WAIT_MS)
    response = page.goto(url)
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Link not found")


def test_waiting_for_review_then_the_decision(stack: Stack, server: LiveServer, page: Page) -> None:
    review = node("review", "human.review", instructions="Check the greeting.")
    app_id, shared = _shared(stack, webapp_graph("Hi {{ name }}", middle=[review]))
    page.goto(f"{server.url}/s/{shared['slug']}")
    _submit(page, "Ada")
    try:
        expect(page.locator("#mantle-status-text")).to_contain_text("Waiting for review", timeout=WAIT_MS)
    except AssertionError as failed:  # what the run and the worker say, beside what the page shows
        runs = stack.client.get("/v1/runs", params={"app_id": app_id}).json()
        raise AssertionError(f"{failed}\nruns: {runs}\n{stack.worker_logs()}") from None
    items = stack.client.get("/v1/reviews", params={"app_id": app_id}).json()["items"]
    decided = stack.client.post(f"/v1/reviews/{items[0]['id']}/decision",
                                json={"action": "edit", "text": "Hello Ada, welcome!"})
    assert decided.status_code == 200, decided.text
    expect(page.locator("[data-output=greeting]")).to_have_text("Hello Ada, welcome!", timeout=WAIT_MS)


def test_only_the_embed_variant_shows_in_a_frame(stack: Stack, server: LiveServer, page: Page) -> None:
    blogs: dict[str, str] = {}
    # Another site (another origin) frames both variants of a share that lists it, and the embed
    # variant of a share that lists no site (the default).
    with serve(Starlette(routes=[Route("/", lambda _: HTMLResponse(blogs["page"]))])) as other_site:
        origin = other_site.url.replace("127.0.0.1", "localhost")
        _, shared = _shared(stack, webapp_graph("Hi {{ name }}"), embed_origins=[origin])
        _, unlisted = _shared(stack, webapp_graph("Hi {{ name }}"))
        url, other = f"{server.url}/s/{shared['slug']}", f"{server.url}/s/{unlisted['slug']}"
        blogs["page"] = (f'<iframe id="embed" src="{url}?embed=1"></iframe><iframe id="plain" src="{url}">'
                         f'</iframe><iframe id="unlisted" src="{other}?embed=1"></iframe>')
        page.goto(origin)
        embedded = page.frame_locator("#embed")
        embedded.locator("#f-name").fill("Ada")
        embedded.locator("#mantle-submit").click()
        expect(embedded.locator("[data-output=greeting]")).to_have_text("Hi Ada", timeout=WAIT_MS)
        for refused in ("#plain", "#unlisted"):
            frame = page.locator(refused).element_handle().content_frame()
            assert frame is not None and frame.url.startswith("chrome-error://"), refused  # frame-ancestors
