"""A reviewer in a real browser approves an edited reply; the run finishes with the edited text."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from api.main import create_app
from models.db import session_factory
from tests.conftest import serve
from tests.engine import conftest as engine_fixtures
from tests.engine.conftest import Stack
from tests.reviews import reviewer_key

stack = engine_fixtures.stack  # the real worker stack of the engine tests (a pytest fixture)


def example_graph() -> dict[str, Any]:
    """The shipped "Review before reply" example app."""
    doc = json.loads((resources.files("cli") / "examples" / "review_before_reply.json").read_text())
    graph: dict[str, Any] = doc["draft"]
    return graph


def test_a_reviewer_edits_and_approves_in_the_browser(stack: Stack, browser: Any, tmp_path: Path) -> None:
    app_id = stack.publish(example_graph(), name="Review before reply")
    run_id = stack.run(app_id, {"message": "Can I return my order?"})["id"]
    stack.wait_run(run_id, ("waiting",))
    key = reviewer_key(session_factory(stack.database_url), stack.org_id, "rita")
    edited = "Yes: returns are free within 30 days. Reply to this email for a label."

    with serve(create_app(stack.settings)) as server:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{server.url}/review")
        page.click("summary:has-text('Use an API key instead')")
        page.fill("#key", key)
        page.click("button:has-text('Sign in with the key')")
        page.wait_for_selector("h1:has-text('Review queue')")
        assert "Review before reply" in page.inner_text("table")
        page.click("table a")
        page.wait_for_selector("textarea#text")
        assert "Can I return my order?" in page.input_value("#text")
        page.screenshot(path=str(tmp_path / "review-item.png"), full_page=True)
        assert page.evaluate("document.cookie") == ""  # the key is out of JavaScript's reach
        page.fill("#text", edited)
        page.fill("#note", "Gave the actual policy")
        page.click("button:has-text('Approve')")
        page.wait_for_selector("#decision")
        assert "edit by rita" in " ".join(page.inner_text("#decision").split())
        assert page.inner_text("#final-text") == edited
        page.screenshot(path=str(tmp_path / "review-decided.png"), full_page=True)
        context.close()

    run = stack.wait_run(run_id)
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"reply": edited}
