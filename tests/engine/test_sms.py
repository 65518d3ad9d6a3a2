"""The whole SMS loop: the simulator texts a number, Mantle runs the app on a real worker, the reply
comes back inline or through the REST API, and delivery status callbacks follow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from core.settings import Settings
from tests.conftest import LiveServer, free_port, serve
from tests.engine.conftest import Stack, wait_until
from tests.factories import edge, node
from tests.sms import ACCOUNT_SID, AUTH_TOKEN, NUMBER, PHONE, history_graph, sms_app, sms_graph, store_twilio
from twilio_sim.app import create_sim
from twilio_sim.store import Store


@dataclass
class SmsStack:
    """Mantle served over HTTP (its worker pointed at the simulator) and the simulator."""

    stack: Stack
    api: httpx.Client
    sim: httpx.Client
    settings: Settings
    store: Store
    app_id: str
    webhook: str

    def text(self, body: str, *, from_: str = PHONE, sid: str | None = None) -> dict[str, Any]:
        """A phone texts the app's number; returns the simulator's account of the webhook's answer."""
        answer = self.sim.post("/sim/inbound", json={"url": self.webhook, "from": from_, "to": NUMBER,
                                                     "body": body, "message_sid": sid})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        assert result["status_code"] == 200, result
        return result

    def phone_got(self, phone: str = PHONE) -> list[dict[str, Any]]:
        """What the phone received (TwiML replies and REST messages), oldest first."""
        found = self.sim.get("/sim/messages", params={"to": phone}).json()["messages"]
        return [m for m in found if m["direction"] != "inbound"]

    def conversation(self, phone: str = PHONE) -> list[dict[str, Any]]:
        answer = self.api.get(f"/v1/apps/{self.app_id}/conversations/{phone}")
        items: list[dict[str, Any]] = answer.json()["items"]
        return items


@pytest.fixture(scope="module")
def sms(stack: Stack) -> Iterator[SmsStack]:
    """The stack's worker restarted with the simulator's URL, and the API served on a known port."""
    store = Store(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    with serve(create_sim(store, status_delay=0.01)) as sim:
        port = free_port()
        public = f"http://127.0.0.1:{port}"
        stack.env.update({"MANTLE_TWILIO_API_BASE_URL": sim.url, "MANTLE_PUBLIC_BASE_URL": public})
        for worker in list(stack.workers):
            worker.stop()
            stack.workers.remove(worker)
        stack.start_worker()
        settings = stack.settings.model_copy(update={"public_base_url": public,
                                                     "twilio_api_base_url": sim.url})
        with serve(create_app(settings), port=port) as live:
            yield _connect(stack, live, sim, settings, store)


def _connect(stack: Stack, live: LiveServer, sim: LiveServer, settings: Settings, store: Store) -> SmsStack:
    api = httpx.Client(base_url=live.url, headers={"Authorization": stack.client.headers["Authorization"]},
                       timeout=30)
    store_twilio(api)
    app_id, route = sms_app(api, graph=history_graph())
    return SmsStack(stack, api, httpx.Client(base_url=sim.url, timeout=30), settings, store, app_id,
                    route["webhook_url"])


@pytest.fixture
def window(sms: SmsStack) -> Iterator[Any]:
    """Set the webhook's reply window for one test."""
    before = sms.settings.twilio_reply_window_s

    def set_to(seconds: float) -> None:
        sms.settings.twilio_reply_window_s = seconds

    yield set_to
    sms.settings.twilio_reply_window_s = before


def test_a_quick_reply_goes_back_inline(sms: SmsStack, window: Any) -> None:
    window(15)
    phone = "+15550100001"
    answer = sms.text("hello", from_=phone)
    assert answer["replies"] == ["#0: hello"]
    assert [m["body"] for m in sms.phone_got(phone)] == ["#0: hello"]  # and no second copy by REST
    convo = sms.conversation(phone)
    assert [(m["direction"], m["kind"], m["body"]) for m in convo] == [
        ("inbound", "message", "hello"), ("outbound", "inline", "#0: hello")]
    assert convo[0]["run_id"] == convo[1]["run_id"] is not None
    run = sms.api.get(f"/v1/runs/{convo[0]['run_id']}").json()
    reply = next(n for n in run["trace"] if n["node_id"] == "reply")
    assert run["status"] == "succeeded" and reply["outputs"]["delivery"] == "inline"


def test_a_late_reply_goes_by_rest_and_its_status_follows(sms: SmsStack, window: Any) -> None:
    window(0)
    phone = "+15550100002"
    answer = sms.text("first", from_=phone)
    assert answer["replies"] == [] and "<Message" not in answer["twiml"]
    got = wait_until(lambda: sms.phone_got(phone), what="the REST reply")
    assert [(m["body"], m["direction"]) for m in got] == [("#0: first", "outbound-api")]
    wait_until(lambda: sms.conversation(phone)[-1]["status"] == "delivered", what="the delivered callback")
    outbound = sms.conversation(phone)[-1]
    assert outbound["kind"] == "rest" and outbound["message_sid"] == got[0]["sid"]
    # The next message carries the conversation so far.
    sms.text("second", from_=phone)
    wait_until(lambda: len(sms.phone_got(phone)) == 2, what="the second reply")
    assert sms.phone_got(phone)[-1]["body"] == "#2: second"


def test_a_twilio_retry_starts_no_second_run_and_sends_no_second_reply(sms: SmsStack, window: Any) -> None:
    window(0)
    phone = "+15550100003"
    first = sms.text("once", from_=phone)
    runs = sms.api.get(f"/v1/apps/{sms.app_id}/runs").json()["total"]
    retry = sms.text("once", from_=phone, sid=first["message_sid"])
    assert retry["twiml"] == first["twiml"]
    assert sms.api.get(f"/v1/apps/{sms.app_id}/runs").json()["total"] == runs
    wait_until(lambda: sms.conversation(phone)[-1]["status"] == "delivered", what="delivery")
    assert len(sms.phone_got(phone)) == 1
    assert [m["direction"] for m in sms.conversation(phone)] == ["inbound", "outbound"]


def test_a_text_after_a_new_version_is_published_runs_that_version(sms: SmsStack, window: Any) -> None:
    """On PostgreSQL, a text to an app whose latest version this API process knows is stored and
    its run recorded in one round trip, checked to still be the latest version
    (`api/sms_inbound.py: _start_on_known_version`). A version published in between is run from
    the next text on; a retried delivery of a text stored that way starts nothing new."""
    window(15)
    phone = "+15550100007"
    assert sms.text("one", from_=phone)["replies"] == ["#0: one"]
    second = sms.text("two", from_=phone)  # the version is known here by now
    assert second["replies"] == ["#2: two"]
    runs = sms.api.get(f"/v1/apps/{sms.app_id}/runs").json()["total"]
    assert sms.text("two", from_=phone, sid=second["message_sid"])["replies"] == ["#2: two"]
    assert sms.api.get(f"/v1/apps/{sms.app_id}/runs").json()["total"] == runs

    def publish(graph: dict[str, Any]) -> None:
        assert sms.api.put(f"/v1/apps/{sms.app_id}/draft", json=graph).status_code == 200
        assert sms.api.post(f"/v1/apps/{sms.app_id}/publish").status_code == 201

    publish(sms_graph("v2 #{{ history | length }}: {{ body }}", wires=("body", "history")))
    assert sms.text("three", from_=phone)["replies"] == ["v2 #4: three"]
    assert sms.text("four", from_=phone)["replies"] == ["v2 #6: four"]
    publish(history_graph())  # the module's other tests expect the original replies
    assert sms.text("five", from_=phone)["replies"] == ["#8: five"]
    texts = [m for m in sms.conversation(phone) if m["direction"] == "inbound"]
    assert [m["body"] for m in texts] == ["one", "two", "three", "four", "five"]
    versions = [sms.api.get(f"/v1/runs/{m['run_id']}").json()["version_number"] for m in texts]
    assert versions[2:] == [versions[0] + 1, versions[0] + 1, versions[0] + 2]


def test_an_opted_out_phone_gets_no_reply_until_start(sms: SmsStack, window: Any) -> None:
    window(15)
    phone = "+15550100004"
    assert sms.text("STOP", from_=phone)["replies"] == []
    sms.text("are you there?", from_=phone)
    convo = sms.conversation(phone)
    run = sms.api.get(f"/v1/runs/{convo[-1]['run_id']}").json()
    assert run["status"] == "succeeded"
    assert next(n for n in run["trace"] if n["node_id"] == "reply")["outputs"]["delivery"] == "opted_out"
    assert sms.phone_got(phone) == []
    sms.text("START", from_=phone)
    assert sms.text("back", from_=phone)["replies"] == ["#1: back"]


def test_a_worker_killed_while_sending_never_sends_twice(sms: SmsStack, window: Any) -> None:
    window(0)
    phone = "+15550100005"
    sms.sim.post("/sim/delay", params={"seconds": 60})  # Twilio accepts, but its answer never arrives
    try:
        sms.text("crash", from_=phone)
        wait_until(lambda: sms.phone_got(phone), what="Twilio to accept the reply")
        sms.stack.workers[-1].kill()
    finally:
        sms.sim.post("/sim/delay", params={"seconds": 0})
    sms.stack.start_worker()
    run = sms.stack.wait_run(sms.conversation(phone)[0]["run_id"])
    assert run["status"] == "succeeded", run  # the node ran again on the new worker (it held no answer)
    [got] = sms.phone_got(phone)
    assert sms.conversation(phone)[-1]["message_sid"] == got["sid"]


def test_a_retry_killed_while_sending_sends_each_message_once(sms: SmsStack, window: Any,
                                                              tmp_path: Path) -> None:
    """An SMS app that replies, then fails: its retry reuses the sent reply (not sent again), and a
    worker killed while the retry sends its second message never makes it send twice."""
    window(0)
    gate, phone = tmp_path / "gate", "+15550100006"
    graph = sms_graph("You said: {{ body }}", from_number=NUMBER)
    graph["nodes"] += [node("check", "test.count", database_url=sms.stack.database_url,
                            fail_until_file=str(gate)),
                       node("say2", "text.template", template="Second message ({{ value }})"),
                       node("reply2", "twilio.sms_output", from_number=NUMBER)]
    graph["edges"] += [edge("reply", "status", "check", "value"), edge("check", "value", "say2", "value"),
                       edge("say2", "text", "reply2", "body"), edge("sms", "from_number", "reply2", "to")]
    app_id = sms.stack.publish(graph, name="SMS twice")
    failed_id = sms.stack.run(app_id, {"body": "crash", "from_number": phone})["id"]
    assert sms.stack.wait_run(failed_id)["status"] == "failed"
    first = wait_until(lambda: sms.phone_got(phone), what="the reply")
    assert [m["body"] for m in first] == ["You said: crash"]

    gate.touch()
    sms.sim.post("/sim/delay", params={"seconds": 60})  # Twilio accepts, but its answer never arrives
    try:
        retried = sms.api.post(f"/v1/runs/{failed_id}/retry")
        assert retried.status_code == 202, retried.text
        wait_until(lambda: len(sms.phone_got(phone)) == 2, what="Twilio to accept the second message")
        sms.stack.workers[-1].kill()
    finally:
        sms.sim.post("/sim/delay", params={"seconds": 0})
    sms.stack.start_worker()
    run = sms.stack.wait_run(retried.json()["id"])

    assert run["status"] == "succeeded", run
    reused = {n["node_id"]: n["reused"] for n in run["trace"]}
    assert reused["reply"] and not reused["reply2"], reused
    got = [m["body"] for m in sms.phone_got(phone)]
    assert got[0] == "You said: crash" and len(got) == 2 and got[1].startswith("Second message"), got
