"""Credentials, phone-number routes, delivery status callbacks and the conversation view."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cli.seed import seed_local
from core.crypto import SecretUnreadable, cipher_for
from core.settings import Settings
from models.credentials import Credential, reveal, rotate_all
from models.orgs import Role
from models.sms_messages import add_outbound
from tests.conftest import Tenant, make_tenant
from tests.factories import greeter_graph
from tests.sms import ACCOUNT_SID, AUTH_TOKEN, NUMBER, PHONE, inbound_form, post_signed, sms_app, store_twilio


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No reply window: nothing runs the apps in these tests."""
    return Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="test-secret",
                    twilio_reply_window_s=0, twilio_verify_numbers=False)


def test_credentials_are_encrypted_and_never_returned(tenant: Tenant, other_tenant: Tenant,
                                                      sessions: sessionmaker[Session], settings: Settings
                                                      ) -> None:
    created = store_twilio(tenant.client)
    assert created["public"] == {"account_sid": ACCOUNT_SID} and created["secret_fields"] == ["auth_token"]
    listed = tenant.client.get("/v1/credentials")
    assert AUTH_TOKEN not in listed.text and listed.json()["items"][0]["id"] == created["id"]
    with sessions() as s:
        row = s.scalar(select(Credential))
        assert row is not None and AUTH_TOKEN not in row.secret
        assert reveal(row, cipher_for(settings))["auth_token"] == AUTH_TOKEN
        # A different secret key cannot read it; the old key as a fallback can.
        rotated = settings.model_copy(update={"secret_key": "new", "secret_key_fallbacks": ["test-secret"]})
        assert reveal(row, cipher_for(rotated))["auth_token"] == AUTH_TOKEN
        assert rotate_all(s, cipher=cipher_for(rotated)) == 1  # `mantle credentials rotate`
        new_only = cipher_for(settings.model_copy(update={"secret_key": "new"}))
        assert reveal(row, new_only)["auth_token"] == AUTH_TOKEN
        with pytest.raises(SecretUnreadable):
            reveal(row, cipher_for(settings))
        s.rollback()
    again = tenant.client.post("/v1/credentials", json={"type": "twilio", "data": {
        "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}})
    assert again.status_code == 409
    assert other_tenant.client.get(f"/v1/credentials/{created['id']}").status_code == 404
    replaced = tenant.client.put(f"/v1/credentials/{created['id']}", json={"data": {
        "account_sid": ACCOUNT_SID, "auth_token": "1" * 32}})
    assert replaced.status_code == 200 and "1" * 32 not in replaced.text
    assert tenant.client.delete(f"/v1/credentials/{created['id']}").status_code == 204
    assert tenant.client.get("/v1/credentials").json()["items"] == []


def test_bad_credentials_are_named_without_echoing_the_secret(tenant: Tenant, sessions: sessionmaker[Session],
                                                              api: object) -> None:
    answer = tenant.client.post("/v1/credentials", json={"type": "twilio", "data": {
        "account_sid": "XX123", "auth_token": "short-secret"}})
    assert answer.status_code == 422 and "short-secret" not in answer.text
    assert {tuple(d["loc"]) for d in answer.json()["detail"]} == {
        ("body", "data", "account_sid"), ("body", "data", "auth_token")}
    assert tenant.client.post("/v1/credentials", json={"type": "fax", "data": {}}).status_code == 422
    builder = make_tenant(sessions, api, "builders", role=Role.builder)  # type: ignore[arg-type]
    assert builder.client.post("/v1/credentials", json={"type": "twilio", "data": {}}).status_code == 403


def test_routing_a_number(tenant: Tenant, other_tenant: Tenant) -> None:
    greeter = tenant.client.post("/v1/apps", json={"name": "Greeter", "graph": greeter_graph()}).json()["id"]
    body = {"number": NUMBER}
    unpublished = tenant.client.post(f"/v1/apps/{greeter}/phone-numbers", json=body)
    assert unpublished.status_code == 422 and "publish" in unpublished.json()["detail"][0]["msg"]
    tenant.client.post(f"/v1/apps/{greeter}/publish")
    not_sms = tenant.client.post(f"/v1/apps/{greeter}/phone-numbers", json=body)
    assert not_sms.status_code == 422 and "twilio.sms_input" in not_sms.json()["detail"][0]["msg"]
    store_twilio(tenant.client)
    app_id, route = sms_app(tenant.client)
    assert tenant.client.post(f"/v1/apps/{app_id}/phone-numbers", json=body).status_code == 200  # same app
    other_app, _ = sms_app(tenant.client, number="+15550002222", name="Other")
    taken = tenant.client.post(f"/v1/apps/{other_app}/phone-numbers", json=body)
    assert taken.status_code == 409 and taken.json()["detail"][0]["loc"] == ["body", "number"]
    bad = tenant.client.post(f"/v1/apps/{app_id}/phone-numbers", json={"number": "555-1234"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "number"]
    store_twilio(other_tenant.client)
    foreign, _ = sms_app(other_tenant.client, number="+15550003333")
    # Another organization's routes are never looked at: no 409 tells it the number is in use.
    assert other_tenant.client.post(f"/v1/apps/{foreign}/phone-numbers", json=body).status_code == 201
    assert other_tenant.client.get(f"/v1/apps/{app_id}/phone-numbers").status_code == 404
    listed = tenant.client.get(f"/v1/apps/{app_id}/phone-numbers").json()["items"]
    assert [r["number"] for r in listed] == [NUMBER]
    assert tenant.client.delete(f"/v1/apps/{app_id}/phone-numbers/{route['id']}").status_code == 204
    assert tenant.client.post(f"/v1/apps/{other_app}/phone-numbers", json=body).status_code == 201


def test_status_callbacks_only_move_forward(tenant: Tenant, sessions: sessionmaker[Session]) -> None:
    store_twilio(tenant.client)
    app_id, _ = sms_app(tenant.client)
    with sessions() as s:
        [row] = add_outbound(s, org_id=tenant.org_id, app_id=uuid.UUID(app_id), run_id=None, node_id="reply",
                             inbound_id=None, key="test:reply", to=PHONE, from_=NUMBER, parts=["hi"],
                             via="rest", status="queued")
        s.commit()
        outbound_id = row.id
    sid = "SM" + "0" * 32

    def callback(status: str, path: str = f"/twilio/status/{outbound_id}", **extra: str) -> int:
        form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID, **extra}
        code: int = post_signed(tenant.client, path, form).status_code
        return code

    def current() -> tuple[str, str | None]:
        convo = tenant.client.get(f"/v1/apps/{app_id}/conversations/{PHONE}").json()["items"]
        return convo[-1]["status"], convo[-1]["message_sid"]

    assert callback("sent") == 204 and current() == ("sent", sid)
    assert callback("delivered", path="/twilio/status") == 204 and current() == ("delivered", sid)
    assert callback("sent") == 204 and current() == ("delivered", sid)  # late: changes nothing
    assert callback("failed", ErrorCode="30008") == 204 and current() == ("delivered", sid)
    form = {"MessageSid": sid, "MessageStatus": "queued", "AccountSid": ACCOUNT_SID}
    forged = post_signed(tenant.client, f"/twilio/status/{outbound_id}", form, token="9" * 32)
    assert forged.status_code == 403
    assert callback("sent", path=f"/twilio/status/{uuid.uuid4()}") == 204  # unknown: Twilio must not retry


def test_the_conversation_view(tenant: Tenant, other_tenant: Tenant) -> None:
    store_twilio(tenant.client)
    app_id, route = sms_app(tenant.client)
    path = f"/twilio/sms/{route['id']}"
    post_signed(tenant.client, path, inbound_form("hello"))
    post_signed(tenant.client, path, inbound_form("help"))
    post_signed(tenant.client, path, inbound_form("hi", from_="+15550009999"))
    convos = tenant.client.get(f"/v1/apps/{app_id}/conversations").json()
    assert convos["total"] == 2 and convos["items"][0]["phone"] == "+15550009999"
    assert {c["phone"]: c["messages"] for c in convos["items"]} == {PHONE: 3, "+15550009999": 1}
    messages = tenant.client.get(f"/v1/apps/{app_id}/conversations/{PHONE}").json()["items"]
    assert [(m["direction"], m["kind"], m["body"]) for m in messages] == [
        ("inbound", "message", "hello"), ("inbound", "help", "help"),
        ("outbound", "inline", "Text anything; STOP to stop.")]
    assert messages[0]["run_id"] is not None and messages[1]["run_id"] is None
    assert other_tenant.client.get(f"/v1/apps/{app_id}/conversations").status_code == 404
    assert other_tenant.client.get(f"/v1/apps/{app_id}/conversations/{PHONE}").status_code == 404


def test_the_seeded_sms_assistant_answers_a_text(sessions: sessionmaker[Session], api: TestClient,
                                                 tmp_path: Path) -> None:
    seeded = seed_local(sessions, tmp_path)
    app_id = next(app_id for app_id, name, _ in seeded.apps if name == "SMS assistant")
    client = TestClient(api.app, headers={"Authorization": f"Bearer {seeded.api_key}"})
    store_twilio(client)
    route = client.post(f"/v1/apps/{app_id}/phone-numbers", json={"number": NUMBER})
    assert route.status_code == 201, route.text
    assert post_signed(client, f"/twilio/sms/{route.json()['id']}", inbound_form("hi")).status_code == 200
    [run] = client.get(f"/v1/apps/{app_id}/runs").json()["items"]
    assert run["trigger"] == "sms"
    helped = post_signed(client, f"/twilio/sms/{NUMBER}", inbound_form("help"))
    assert "SMS assistant: text any question." in helped.text
