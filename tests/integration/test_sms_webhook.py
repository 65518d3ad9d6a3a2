"""The inbound SMS webhook: signatures, deduplication, keywords and every kind of bad input.

These tests run without a worker: the reply window is 0, so the webhook answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from core.settings import Settings
from models.sms import SmsInbound, SmsOptOut
from tests.conftest import Tenant
from tests.sms import NUMBER, PHONE, PUBLIC, inbound_form, post_signed, sign, sms_app, store_twilio

EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The API's settings: no reply window (nothing would run the app here)."""
    return Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="test-secret",
                    twilio_reply_window_s=0, twilio_verify_numbers=False)


@pytest.fixture
def routed(tenant: Tenant) -> tuple[str, str]:
    """An SMS app with NUMBER routed to it: (app id, webhook path)."""
    store_twilio(tenant.client)
    app_id, route = sms_app(tenant.client)
    path = f"/twilio/sms/{route['id']}"
    assert route["webhook_url"] == PUBLIC + path
    return app_id, path


def runs_of(tenant: Tenant, app_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = tenant.client.get(f"/v1/apps/{app_id}/runs").json()["items"]
    return items


def inbound_rows(sessions: sessionmaker[Session]) -> list[SmsInbound]:
    with sessions() as s:
        return list(s.scalars(select(SmsInbound).order_by(SmsInbound.created_at)))


def test_a_message_is_stored_once_and_a_retry_starts_no_second_run(tenant: Tenant, routed: tuple[str, str],
                                                                   sessions: sessionmaker[Session]) -> None:
    app_id, path = routed
    form = inbound_form("hello", MediaUrl0="https://media.example/cat.jpg", NumMedia="1")
    first = post_signed(tenant.client, path, form)
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/xml")
    assert first.text == EMPTY  # the reply will come through the REST API
    again = post_signed(tenant.client, path, form)  # Twilio retrying
    assert again.status_code == 200 and again.text == first.text
    runs = runs_of(tenant, app_id)
    assert len(runs) == 1 and runs[0]["trigger"] == "sms"
    inputs = tenant.client.get(f"/v1/runs/{runs[0]['id']}").json()["inputs"]
    assert inputs == {"body": "hello", "from_number": PHONE, "to_number": NUMBER,
                      "message_sid": form["MessageSid"], "media_urls": ["https://media.example/cat.jpg"],
                      "history": []}
    assert len(inbound_rows(sessions)) == 1


def test_the_next_message_carries_the_conversation_so_far(tenant: Tenant, routed: tuple[str, str]) -> None:
    app_id, path = routed
    post_signed(tenant.client, path, inbound_form("first"))
    post_signed(tenant.client, f"/twilio/sms/{NUMBER}", inbound_form("second"))  # routed by the number too
    latest = runs_of(tenant, app_id)[0]
    history = tenant.client.get(f"/v1/runs/{latest['id']}").json()["inputs"]["history"]
    assert [(h["direction"], h["body"]) for h in history] == [("inbound", "first")]


@pytest.mark.parametrize("tamper", ["missing", "wrong_token", "changed_body", "other_url"])
def test_a_bad_signature_is_refused_and_nothing_is_stored(tenant: Tenant, routed: tuple[str, str],
                                                          sessions: sessionmaker[Session], tamper: str
                                                          ) -> None:
    app_id, path = routed
    form = inbound_form("pay me")
    signature = {"missing": "", "wrong_token": sign(PUBLIC + path, form, token="0" * 32),
                 "changed_body": sign(PUBLIC + path, inbound_form("hi", sid=form["MessageSid"])),
                 "other_url": sign("https://evil.example" + path, form)}[tamper]
    answer = post_signed(tenant.client, path, form, signature=signature)
    assert answer.status_code == 403
    assert answer.json()["detail"][0]["loc"] == ["header", "X-Twilio-Signature"]
    assert inbound_rows(sessions) == [] and runs_of(tenant, app_id) == []


def test_missing_or_malformed_fields_are_named(tenant: Tenant, routed: tuple[str, str]) -> None:
    _, path = routed
    form = inbound_form("hi", MessageSid="not-a-sid")
    del form["From"]
    answer = post_signed(tenant.client, path, form)
    assert answer.status_code == 422
    assert {tuple(d["loc"]) for d in answer.json()["detail"]} == {("body", "MessageSid"), ("body", "From")}


def test_a_form_is_required(tenant: Tenant, routed: tuple[str, str]) -> None:
    answer = tenant.client.post(routed[1], json=inbound_form("hi"), headers={"X-Twilio-Signature": "x"})
    assert answer.status_code == 415


@pytest.mark.parametrize("target", ["+15559990000", "5d5c6a42-8f00-4b27-9d7e-0d8e2b1f0c11", "nonsense"])
def test_an_unknown_number_gets_200_and_empty_twiml(tenant: Tenant, routed: tuple[str, str], target: str,
                                                    sessions: sessionmaker[Session]) -> None:
    answer = post_signed(tenant.client, f"/twilio/sms/{target}", inbound_form("hi", to="+15559990000"))
    assert answer.status_code == 200 and answer.text == EMPTY  # a 4xx would make Twilio retry forever
    assert inbound_rows(sessions) == []


def test_a_to_number_other_than_the_routes_is_unknown(tenant: Tenant, routed: tuple[str, str]) -> None:
    app_id, path = routed
    answer = post_signed(tenant.client, path, inbound_form("hi", to="+15559990000"))
    assert answer.status_code == 200 and answer.text == EMPTY and runs_of(tenant, app_id) == []


def test_an_oversized_body_is_kept_truncated(tenant: Tenant, routed: tuple[str, str],
                                             sessions: sessionmaker[Session]) -> None:
    app_id, path = routed
    answer = post_signed(tenant.client, path, inbound_form("x" * 5000))
    assert answer.status_code == 200
    [row] = inbound_rows(sessions)
    assert row.truncated and len(row.body) == 1600
    run = tenant.client.get(f"/v1/runs/{runs_of(tenant, app_id)[0]['id']}").json()
    assert len(run["inputs"]["body"]) == 1600


def test_a_number_whose_app_was_deleted_keeps_its_messages(tenant: Tenant, routed: tuple[str, str],
                                                           sessions: sessionmaker[Session]) -> None:
    app_id, path = routed
    assert tenant.client.delete(f"/v1/apps/{app_id}").status_code == 204
    answer = post_signed(tenant.client, path, inbound_form("anyone there?"))
    assert answer.status_code == 200 and answer.text == EMPTY
    [row] = inbound_rows(sessions)
    assert row.body == "anyone there?" and row.run_id is None and "deleted" in row.note
    # The number is free for another app of the organization now.
    _, route = sms_app(tenant.client, name="Successor")
    assert route["number"] == NUMBER


def test_stop_start_and_help_start_no_run(tenant: Tenant, routed: tuple[str, str],
                                          sessions: sessionmaker[Session]) -> None:
    app_id, path = routed
    assert post_signed(tenant.client, path, inbound_form(" stop ")).text == EMPTY
    with sessions() as s:
        assert s.scalar(select(SmsOptOut.phone)) == PHONE
    conversation = tenant.client.get(f"/v1/apps/{app_id}/conversations")
    assert conversation.json()["items"][0]["opted_out"] is True
    helped = post_signed(tenant.client, path, inbound_form("HELP"))
    assert "<Message>Text anything; STOP to stop.</Message>" in helped.text
    assert post_signed(tenant.client, path, inbound_form("Start")).text == EMPTY
    with sessions() as s:
        assert s.scalar(select(SmsOptOut.phone)) is None
    assert runs_of(tenant, app_id) == []
    assert [r.kind for r in inbound_rows(sessions)] == ["stop", "help", "start"]


def test_forwarded_headers_count_only_behind_a_trusted_proxy(tenant: Tenant, routed: tuple[str, str],
                                                             sessions: sessionmaker[Session],
                                                             settings: Settings) -> None:
    _, path = routed
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sms.example.com"}
    form = inbound_form("via proxy")
    # Signed for the URL Twilio called at the proxy, not the configured public URL.
    untrusted = post_signed(tenant.client, path, form, base="https://sms.example.com", headers=proxy)
    assert untrusted.status_code == 403
    trusting = TestClient(create_app(settings.model_copy(update={"trust_proxy": True}), sessions=sessions))
    trusted = post_signed(trusting, path, form, base="https://sms.example.com", headers=proxy)
    assert trusted.status_code == 200
