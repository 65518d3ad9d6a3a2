"""People in a real browser: an admin invites a builder and a reviewer from the People screen; each
accepts in a browser of their own and chooses a password; the builder signs in and creates an app;
the reviewer signs in on /review, and is refused in the builder where a reviewer may not write."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.builder_ui import AXE, WAIT_MS, Mantle, running_mantle, serious_violations, sign_in
from tests.conftest import IN_CI

BEA, RITA = "bea@example.com", "rita@example.com"
PASSWORDS = {BEA: "saffron-kettle-204", RITA: "orchid-ledger-918"}
REFUSED: list[str] = []


@pytest.fixture
def mantle(tmp_path: Path) -> Iterator[Mantle]:
    """The API over HTTP on its own database, with an organization "acme" and its admin key."""
    with running_mantle(tmp_path) as live:
        yield live


@pytest.fixture
def contexts(browser: Any) -> Iterator[list[BrowserContext]]:
    """Separate browser profiles (no shared cookies), closed after the test."""
    made: list[BrowserContext] = []
    expect.set_options(timeout=WAIT_MS)
    REFUSED.clear()
    yield made
    for context in made:
        context.close()
    assert REFUSED == [], "a page did something its Content-Security-Policy refuses"


def fresh_page(browser: Any, contexts: list[BrowserContext]) -> Page:
    """A tab in a new browser profile."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    contexts.append(context)
    tab: Page = context.new_page()
    tab.on("console", lambda m: REFUSED.append(m.text) if "Content Security Policy" in m.text else None)
    return tab


def invite(page: Page, email: str, role: str) -> str:
    """Invite `email` with `role` on the People screen; the link it shows to copy."""
    form = page.get_by_test_id("invite-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Role").select_option(role)
    form.get_by_role("button", name="Invite").click()
    expect(form).to_contain_text(f"Give this one-time link to {email}")
    link = page.get_by_label(f"Invitation link for {email}", exact=True)
    expect(link).to_have_value(re.compile(r"/builder/invite\?token=[\w-]+$"))
    url: str = link.input_value()
    return url


def accept(page: Page, mantle: Mantle, url: str, email: str) -> None:
    """Open an invitation link, try a common password (refused by name), then choose a good one."""
    parts = urlsplit(url)
    page.goto(f"{mantle.url}{parts.path}?{parts.query}")
    expect(page.get_by_test_id("accept-link-form")).to_contain_text(email)
    page.get_by_label("Password", exact=True).fill("password1234")
    page.get_by_label("The same password again").fill("password1234")
    page.get_by_role("button", name="Join and sign in").click()
    expect(page.get_by_test_id("accept-link-form")).to_contain_text("commonly used")
    page.get_by_label("Password", exact=True).fill(PASSWORDS[email])
    page.get_by_label("The same password again").fill(PASSWORDS[email])
    page.get_by_role("button", name="Join and sign in").click()
    expect(page.get_by_test_id("app-header")).to_contain_text(email)


def sign_in_with_password(page: Page, mantle: Mantle, email: str, password: str) -> None:
    """The builder's sign-in form, with an email and a password."""
    page.goto(f"{mantle.url}/builder/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_invited_people_sign_in_build_and_review_within_their_roles(
        mantle: Mantle, browser: Any, contexts: list[BrowserContext]) -> None:
    admin = fresh_page(browser, contexts)
    sign_in(admin, mantle)
    admin.get_by_test_id("people-link").click()
    expect(admin.get_by_test_id("people-page")).to_contain_text("No one has an account here yet")
    links = {BEA: invite(admin, BEA, "builder"), RITA: invite(admin, RITA, "reviewer")}
    expect(admin.get_by_test_id("invitation-row")).to_have_count(2)

    bea = fresh_page(browser, contexts)
    accept(bea, mantle, links[BEA], BEA)
    expect(bea.get_by_test_id("app-header")).to_contain_text("builder")
    bea.get_by_test_id("sign-out").click()
    sign_in_with_password(bea, mantle, BEA, "not-her-password")
    expect(bea.get_by_role("alert")).to_have_text("the email or the password is wrong")
    sign_in_with_password(bea, mantle, BEA, PASSWORDS[BEA])
    expect(bea.get_by_test_id("app-header")).to_contain_text(BEA)
    bea.get_by_label("Name").fill("Bea's greeter")
    bea.get_by_role("button", name="Create app").click()
    expect(bea.get_by_test_id("palette")).to_be_visible()
    assert "/builder/apps/" in bea.url
    made = mantle.client.get("/v1/audit").json()["items"]
    assert any(e["action"] == "app.create" and e["actor"].endswith(f":{BEA}") for e in made)

    rita = fresh_page(browser, contexts)
    accept(rita, mantle, links[RITA], RITA)
    expect(rita.get_by_test_id("app-header")).to_contain_text("reviewer")
    rita.get_by_label("Name").fill("Not mine to make")
    rita.get_by_role("button", name="Create app").click()
    expect(rita.get_by_test_id("create-app")).to_contain_text("this needs the role admin or builder")

    reviewing = fresh_page(browser, contexts)
    reviewing.goto(f"{mantle.url}/review")
    reviewing.get_by_label("Email").fill(RITA)
    reviewing.get_by_label("Password").fill(PASSWORDS[RITA])
    reviewing.get_by_role("button", name="Sign in", exact=True).click()
    expect(reviewing.locator("h1")).to_have_text("Review queue")
    expect(reviewing.locator("header")).to_contain_text(RITA)

    admin.reload()
    rows = admin.get_by_test_id("member-row")
    expect(rows).to_have_count(2)
    expect(admin.get_by_test_id("invitation-row")).to_have_count(0)
    bea_row = rows.filter(has_text=BEA)
    expect(bea_row.get_by_test_id("member-role")).to_have_value("builder")
    bea_row.get_by_test_id("revoke-member-sessions").click()
    admin.get_by_role("dialog").get_by_role("button", name="Sign out everywhere").click()
    expect(bea_row).to_contain_text("none")
    bea.reload()
    expect(bea.get_by_test_id("sign-in-form")).to_be_visible()


def test_the_people_screen_and_the_invitation_page_have_no_serious_accessibility_violations(
        mantle: Mantle, browser: Any) -> None:
    if not AXE.exists():
        if IN_CI:
            pytest.fail(f"axe-core is missing at {AXE}: run `make ui` (npm ci) first")
        pytest.skip(f"axe-core missing at {AXE} (npm ci in builder/ui installs it)")
    # Only this check bypasses the pages' CSP, to inject axe-core's source.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        sign_in(page, mantle, "/builder/people")
        url = invite(page, BEA, "builder")
        expect(page.get_by_test_id("invitation-row")).to_have_count(1)
        assert serious_violations(page) == [], "people screen"
        guest = browser.new_context(bypass_csp=True)  # the invitee: another browser profile
        other = guest.new_page()
        parts = urlsplit(url)
        other.goto(f"{mantle.url}{parts.path}?{parts.query}")
        expect(other.get_by_test_id("accept-link-form")).to_contain_text(BEA)
        assert serious_violations(other) == [], "invitation page"
        guest.close()
    finally:
        context.close()
