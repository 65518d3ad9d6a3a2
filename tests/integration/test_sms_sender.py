"""The worker's SMS service against the Twilio simulator: once per (run, node), whatever happens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from blocks.base import BlockContext
from blocks.twilio_sms_output import OutgoingSms, SmsOutputBlock, SmsOutputInputs
from core.errors import MantleError
from core.settings import Settings
from core.twilio_http import proxy_for
from models.sms import SmsInbound, SmsNumber, SmsOutbound, set_opt_out
from models.sms_messages import add_outbound, close_answer, inline_replies, record_inbound
from tests.conftest import LiveServer, Tenant, free_port, serve
from tests.sms import ACCOUNT_SID, AUTH_TOKEN, NUMBER, PHONE, sms_app, store_twilio
from twilio_sim.app import create_sim
from twilio_sim.store import Message, Store
from worker.sms import TwilioSender


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[LiveServer, Store]]:
    """The simulator, serving the tests' Twilio account."""
    store = Store(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    with serve(create_sim(store, status_delay=0.01)) as live:
        yield live, store


@dataclass
class Case:
    """A run of an SMS app, and a sender pointed at the simulator."""

    sender: TwilioSender
    store: Store
    org_id: uuid.UUID
    app_id: uuid.UUID
    run_id: uuid.UUID

    def message(self, *parts: str, node_id: str = "reply", to: str = PHONE) -> OutgoingSms:
        return OutgoingSms(org_id=self.org_id, app_id=self.app_id, run_id=self.run_id, node_id=node_id,
                           idempotency_key=f"{self.run_id}:{node_id}", to=to, from_number=None, parts=parts)

    def sent(self) -> list[Message]:
        return [m for m in self.store.messages.values() if m.direction == "outbound-api"]


@pytest.fixture
def case(tenant: Tenant, sessions: sessionmaker[Session], sim: tuple[LiveServer, Store],
         tmp_path: Path) -> Case:
    live, store = sim
    store.reset()
    store_twilio(tenant.client)
    app_id, _ = sms_app(tenant.client)
    run = tenant.client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"body": "hi", "from_number": PHONE}})
    assert run.status_code == 202, run.text
    settings = Settings(data_dir=tmp_path, secret_key="test-secret", twilio_api_base_url=live.url,
                        public_base_url="http://127.0.0.1:9")  # status callbacks go nowhere here
    return Case(TwilioSender(settings, sessions), store, tenant.org_id, uuid.UUID(app_id),
                uuid.UUID(run.json()["id"]))


def test_a_repeated_send_reuses_the_first(case: Case) -> None:
    first = case.sender.send(case.message("You said: hi"))
    again = case.sender.send(case.message("You said: hi"))
    assert first["delivery"] == "rest" and first["message_sids"] == again["message_sids"]
    [sent] = case.sent()
    assert (sent.to, sent.from_, sent.body) == (PHONE, NUMBER, "You said: hi")
    assert sent.status_callback is not None and sent.status_callback.startswith("http://127.0.0.1:9/twilio/status/")


def test_a_body_with_accents_emoji_and_form_characters_arrives_as_written(case: Case) -> None:
    body = "Café déjà vu 🌮 & a+b=c 100% ?x=1#frag"
    result = case.sender.send(case.message(body))
    [sent] = case.sent()
    assert sent.body == body and result["message_sids"] == [sent.sid]


def test_the_proxy_in_the_environment_is_used_unless_no_proxy_names_the_host(
        case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTP_PROXY", closed)
    monkeypatch.setenv("NO_PROXY", "")
    proxy_for.cache_clear()  # the environment is read once per host
    try:
        with pytest.raises(MantleError, match="Twilio did not answer"):
            case.sender.send(case.message("via the proxy"))
        assert case.sent() == []
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        proxy_for.cache_clear()
        case.sender.send(case.message("via the proxy"))  # the retry sends it, once
        assert [m.body for m in case.sent()] == ["via the proxy"]
    finally:
        monkeypatch.undo()
        proxy_for.cache_clear()


def test_the_block_splits_a_long_body_into_parts(case: Case) -> None:
    block = SmsOutputBlock.from_config({"max_chars": 20, "max_parts": 2})
    ctx = BlockContext(run_id=case.run_id, node_id="reply", org_id=case.org_id, app_id=case.app_id,
                       services={"sms": case.sender})
    body = "one two three four five six seven eight nine ten"
    outputs = block.run(SmsOutputInputs(to=PHONE, body=body), ctx)
    assert outputs.parts == 2 and outputs.truncated is True and len(outputs.message_sids) == 2
    bodies = [m.body for m in sorted(case.sent(), key=lambda m: m.created)]
    assert bodies[0] == "one two three four" and bodies[1].endswith("…") and len(bodies[1]) <= 20


def test_a_part_twilio_accepted_before_a_crash_is_not_sent_again(case: Case,
                                                                  sessions: sessionmaker[Session]) -> None:
    with sessions() as s:  # the state a worker killed mid-call leaves: a claimed part, no SID yet
        add_outbound(s, org_id=case.org_id, app_id=case.app_id, run_id=case.run_id, node_id="reply",
                     inbound_id=None, key=f"{case.run_id}:reply", to=PHONE, from_=NUMBER,
                     parts=["lost?", "new"], via="rest", status="claimed")
        s.commit()
    case.store.add(Message(sid="SM" + "7" * 32, account_sid=ACCOUNT_SID, to=PHONE, from_=NUMBER, body="lost?",
                           direction="outbound-api", status="delivered", created=datetime.now(UTC)))
    result = case.sender.send(case.message("lost?", "new"))
    assert result["message_sids"][0] == "SM" + "7" * 32
    assert sorted(m.body for m in case.sent()) == ["lost?", "new"]  # only the missing part was sent


def test_a_refusal_fails_the_node_and_is_recorded(case: Case, sessions: sessionmaker[Session]) -> None:
    with pytest.raises(MantleError, match="21211"):
        case.sender.send(case.message("hello", to="+15005550001"))
    with pytest.raises(MantleError, match="21211"):  # a retry tries again: nothing was sent
        case.sender.send(case.message("hello", to="+15005550001"))
    with sessions() as s:
        row = s.scalar(select(SmsOutbound))
        assert row is not None and (row.status, row.error_code, row.message_sid) == ("failed", "21211", None)
    assert case.sent() == []


def test_an_opted_out_phone_gets_nothing(case: Case, sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        set_opt_out(s, org_id=case.org_id, phone=PHONE, keyword="STOP", opted_out=True)
        s.commit()
    assert case.sender.send(case.message("hello"))["delivery"] == "opted_out"
    assert case.sent() == []


def test_a_waiting_webhook_takes_the_reply_inline_until_it_closes(case: Case,
                                                                   sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        route = s.scalar(select(SmsNumber).where(SmsNumber.number == NUMBER))
        assert route is not None
        inbound, _ = record_inbound(s, route=route, message_sid="SM" + "1" * 32, from_number=PHONE,
                                    to_number=NUMBER, body="hi", truncated=False, media_urls=[],
                                    kind="message")
        inbound.run_id, inbound.answer_state = case.run_id, "waiting"
        s.commit()
        inbound_id = inbound.id
    assert case.sender.send(case.message("inline answer"))["delivery"] == "inline"
    with sessions() as s:
        close_answer(s, inbound_id=inbound_id)
        assert [r.body for r in inline_replies(s, inbound_id=inbound_id)] == ["inline answer"]
        assert s.scalar(select(SmsInbound.answer_state)) == "closed"
        s.commit()
    assert case.sender.send(case.message("later", node_id="second"))["delivery"] == "rest"
    assert [m.body for m in case.sent()] == ["later"]
