"""Who may route a phone number: the organization whose Twilio account owns it, asked of Twilio
(the simulator, through the real SDK); and no route of one organization blocks or reveals another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.conftest import LiveServer, Tenant, free_port, serve
from tests.sms import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    NUMBER,
    PHONE,
    inbound_form,
    post_signed,
    sms_graph,
    store_twilio,
)
from twilio_sim.app import create_sim
from twilio_sim.store import Store

OTHER_SID = "AC" + "cd34" * 8
OTHER_TOKEN = "d00d" * 8


@pytest.fixture(scope="module")
def sim() -> Iterator[LiveServer]:
    """A Twilio simulator for ACCOUNT_SID, which owns NUMBER (and what a test gives it)."""
    with serve(create_sim(Store(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN))) as live:
        yield live


@pytest.fixture
def settings(tmp_path: Path, sim: LiveServer) -> Settings:
    """The API asks the simulator whether an account owns a number."""
    return Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="test-secret",
                    twilio_reply_window_s=0, twilio_api_base_url=sim.url, twilio_verify_numbers=True)


def change_settings(api: TestClient, **update: Any) -> None:
    """Change the running API's settings (as a restart with other settings would)."""
    app = cast(FastAPI, api.app)
    app.state.settings = app.state.settings.model_copy(update=update)


def sms_app_id(client: TestClient) -> str:
    """A published SMS app with no number yet."""
    created = client.post("/v1/apps", json={"name": "SMS", "graph": sms_graph()})
    app_id: str = created.json()["id"]
    assert client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    return app_id


def route(client: TestClient, app_id: str, number: str) -> Any:
    return client.post(f"/v1/apps/{app_id}/phone-numbers", json={"number": number})


def test_only_a_number_the_account_owns_can_be_routed(tenant: Tenant, sim: LiveServer) -> None:
    assert httpx.post(f"{sim.url}/sim/reset").status_code == 204  # the account owns NUMBER alone
    store_twilio(tenant.client)
    app_id = sms_app_id(tenant.client)
    assert route(tenant.client, app_id, NUMBER).status_code == 201

    stranger = route(tenant.client, app_id, "+15550009999")
    assert stranger.status_code == 422 and stranger.json()["detail"][0]["loc"] == ["body", "number"]
    assert "+15550009999 is not a phone number of the Twilio account" in stranger.json()["detail"][0]["msg"]
    assert [r["number"] for r in tenant.client.get(f"/v1/apps/{app_id}/phone-numbers").json()["items"]] \
        == [NUMBER]

    # Once the account owns it (bought in Twilio's console), it routes.
    assert httpx.post(f"{sim.url}/sim/numbers", params={"number": "+15550009999"}).status_code == 204
    assert route(tenant.client, app_id, "+15550009999").status_code == 201


def test_a_twilio_credential_not_named_default_is_named_in_the_refusal(tenant: Tenant) -> None:
    app_id = sms_app_id(tenant.client)
    assert "Twilio credentials first" in route(tenant.client, app_id, NUMBER).json()["detail"][0]["msg"]
    data = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    assert tenant.client.post("/v1/credentials", json={"type": "twilio", "name": "prod", "data": data}
                              ).status_code == 201
    refused = route(tenant.client, app_id, NUMBER)
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "number"]
    assert "named 'default'" in problem["msg"] and "named 'prod'" in problem["msg"], problem
    store_twilio(tenant.client)  # what the message says to do
    assert route(tenant.client, app_id, NUMBER).status_code == 201


def test_another_tenant_with_the_owners_account_sid_but_not_its_token_is_refused(
        tenant: Tenant, other_tenant: Tenant) -> None:
    store_twilio(tenant.client)
    assert route(tenant.client, sms_app_id(tenant.client), NUMBER).status_code == 201
    store_twilio(other_tenant.client, account_sid=ACCOUNT_SID, auth_token="f" * 32)  # a squatter's guess
    squat = route(other_tenant.client, sms_app_id(other_tenant.client), NUMBER)
    assert squat.status_code == 422 and "Twilio refused" in squat.json()["detail"][0]["msg"]
    assert "in use" not in squat.text and "already routed" not in squat.text


def test_an_unreachable_twilio_is_a_503_and_routes_nothing(tenant: Tenant, api: TestClient) -> None:
    store_twilio(tenant.client)
    app_id = sms_app_id(tenant.client)
    change_settings(api, twilio_api_base_url=f"http://127.0.0.1:{free_port()}", twilio_timeout_s=5)
    answer = route(tenant.client, app_id, NUMBER)
    assert answer.status_code == 503 and answer.json()["detail"][0]["type"] == "twilio_unavailable"
    assert tenant.client.get(f"/v1/apps/{app_id}/phone-numbers").json()["items"] == []


def test_two_tenants_routing_one_number_each_get_their_own_accounts_messages(
        tenant: Tenant, other_tenant: Tenant, api: TestClient) -> None:
    """Without verification (where Twilio cannot be asked), a route still takes nothing from anyone."""
    change_settings(api, twilio_verify_numbers=False)
    store_twilio(tenant.client)
    store_twilio(other_tenant.client, account_sid=OTHER_SID, auth_token=OTHER_TOKEN)
    mine, theirs = sms_app_id(tenant.client), sms_app_id(other_tenant.client)
    assert route(other_tenant.client, theirs, NUMBER).status_code == 201  # first, and no proof
    assert route(tenant.client, mine, NUMBER).status_code == 201  # not blocked, and told nothing

    # By number, each signed request reaches the organization of the account that sent it.
    assert post_signed(tenant.client, f"/twilio/sms/{NUMBER}", inbound_form("for acme")).status_code == 200
    theirs_form = {**inbound_form("for globex"), "AccountSid": OTHER_SID}
    assert post_signed(other_tenant.client, f"/twilio/sms/{NUMBER}", theirs_form,
                       token=OTHER_TOKEN).status_code == 200

    def bodies(client: TestClient, app_id: str) -> list[str]:
        return [m["body"] for m in client.get(f"/v1/apps/{app_id}/conversations/{PHONE}").json()["items"]]

    assert bodies(tenant.client, mine) == ["for acme"]
    assert bodies(other_tenant.client, theirs) == ["for globex"]

    # A request claiming one account but signed with another's token is refused, stored nowhere.
    forged = post_signed(tenant.client, f"/twilio/sms/{NUMBER}", {**inbound_form("forged"),
                                                                "AccountSid": OTHER_SID})
    assert forged.status_code == 403
    # An account that routes nothing is an unknown number: 200 and an empty answer, stored nowhere.
    nobody = {**inbound_form("nobody"), "AccountSid": "AC" + "ef56" * 8}
    assert post_signed(tenant.client, f"/twilio/sms/{NUMBER}", nobody).text.endswith("<Response />")
    assert bodies(tenant.client, mine) == ["for acme"]
    assert bodies(other_tenant.client, theirs) == ["for globex"]


def test_a_squatter_holding_the_owners_account_sid_never_gets_its_messages(
        tenant: Tenant, other_tenant: Tenant, api: TestClient) -> None:
    change_settings(api, twilio_verify_numbers=False)
    store_twilio(other_tenant.client, account_sid=ACCOUNT_SID, auth_token="f" * 32)
    squatter = sms_app_id(other_tenant.client)
    assert route(other_tenant.client, squatter, NUMBER).status_code == 201
    store_twilio(tenant.client)
    owner = sms_app_id(tenant.client)
    assert route(tenant.client, owner, NUMBER).status_code == 201
    assert post_signed(tenant.client, f"/twilio/sms/{NUMBER}", inbound_form("mine")).status_code == 200
    owned = tenant.client.get(f"/v1/apps/{owner}/conversations/{PHONE}").json()["items"]
    assert [m["body"] for m in owned] == ["mine"]
    assert other_tenant.client.get(f"/v1/apps/{squatter}/conversations").json()["items"] == []
