"""Small request checks: an empty Idempotency-Key is refused, not taken as a key; a Twilio status
callback is refused unless signed by the account it names, known message or not."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.integration.test_webhooks_api import hooked_app, runs_of
from tests.security.world import Owned
from tests.sms import ACCOUNT_SID, post_signed, store_twilio


@pytest.mark.parametrize("key", ["", "   ", "\t"])
def test_an_empty_idempotency_key_is_refused_on_every_route_that_takes_one(
        api: TestClient, tenant: Tenant, world: tuple[Owned, Owned], key: str) -> None:
    victim, _ = world
    app_id, run_id = victim.ids["app_id"], victim.ids["run_id"]
    _, hook = hooked_app(tenant)
    before = len(runs_of(tenant, app_id))
    headers = {"Idempotency-Key": key}
    inputs: dict[str, Any] = {"inputs": {"name": "Ada"}}
    answers = {
        "run": tenant.client.post(f"/v1/apps/{app_id}/runs", json=inputs, headers=headers),
        "draft run": tenant.client.post(f"/v1/apps/{app_id}/draft/runs", json=inputs, headers=headers),
        "retry": tenant.client.post(f"/v1/runs/{run_id}/retry", headers=headers),
        "rerun": tenant.client.post(f"/v1/runs/{run_id}/rerun", headers=headers),
        "webhook": api.post(hook, json={"name": "Ada"}, headers=headers),
    }
    for name, answer in answers.items():
        assert answer.status_code == 422, (name, answer.status_code, answer.text[:200])
        detail = answer.json()["detail"][0]
        assert detail["loc"][0] == "header" and "Idempotency-Key is empty" in detail["msg"], (name, detail)
    assert len(runs_of(tenant, app_id)) == before
    # A real key still works as before.
    first = tenant.client.post(f"/v1/apps/{app_id}/runs", json=inputs, headers={"Idempotency-Key": "k-1"})
    again = tenant.client.post(f"/v1/apps/{app_id}/runs", json=inputs, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202 and again.json()["id"] == first.json()["id"]


def test_a_status_callback_needs_its_accounts_signature_known_message_or_not(
        api: TestClient, tenant: Tenant) -> None:
    store_twilio(tenant.client)
    form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
    for path in ("/twilio/status", f"/twilio/status/{uuid.uuid4()}"):
        unsigned = api.post(path, data=form)
        assert unsigned.status_code == 403 and "missing X-Twilio-Signature" in unsigned.text, path
        assert post_signed(api, path, form, token="9" * 32).status_code == 403, path  # forged
        stranger = {**form, "AccountSid": "AC" + "7" * 32}  # an account nobody here holds
        assert post_signed(api, path, stranger, token="9" * 32).status_code == 403, path
        assert post_signed(api, path, {**form, "AccountSid": "nonsense"}).status_code == 403, path
        # Twilio itself, for a message no longer stored: acknowledged, so it does not retry.
        assert post_signed(api, path, form).status_code == 204, path
