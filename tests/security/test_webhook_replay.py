"""A captured signed webhook post starts no second run: its signature carries the time it was
signed, is accepted only within a window around it, and only once, even when copies race."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from blocks.trigger_webhook import sign
from models.base import utcnow
from models.db import session_scope
from models.webhooks import WebhookEndpoint, WebhookNonce
from tests.committed import Committed, committed_api
from tests.conftest import Tenant, serve
from tests.integration.test_webhooks_api import hooked_app, runs_of, webhook_graph

SECRET = "whsec-9d0c1b2a3e4f5a6b"
BODY = json.dumps({"name": "Ada"}).encode()
JSON = {"content-type": "application/json"}


def signed_app(tenant: Tenant) -> tuple[str, str]:
    """A published app whose webhook requires signatures with SECRET: (app id, URL path)."""
    stored = tenant.client.post("/v1/credentials", json={"type": "webhook_secret", "name": "hooks",
                                                         "data": {"secret": SECRET}})
    assert stored.status_code == 201, stored.text
    return hooked_app(tenant, webhook_graph(signature_credential="hooks"))


def test_a_resent_post_is_refused_and_starts_nothing(tenant: Tenant, api: TestClient) -> None:
    app_id, path = signed_app(tenant)
    headers = {**JSON, "X-Mantle-Signature": sign(SECRET, BODY)}
    first = api.post(path, content=BODY, headers=headers)
    assert first.status_code == 202, first.text
    for _ in range(3):
        again = api.post(path, content=BODY, headers=headers)
        assert again.status_code == 403, again.text
        assert "was used already" in again.json()["detail"][0]["msg"]
    assert [r["id"] for r in runs_of(tenant, app_id)] == [first.json()["run_id"]]
    # The same body signed anew (another second) is a new post.
    later = api.post(path, content=BODY,
                     headers={**JSON, "X-Mantle-Signature": sign(SECRET, BODY, int(time.time()) + 1)})
    assert later.status_code == 202 and len(runs_of(tenant, app_id)) == 2


def test_a_resent_post_with_its_idempotency_key_gets_its_first_run(tenant: Tenant, api: TestClient) -> None:
    app_id, path = signed_app(tenant)
    headers = {**JSON, "X-Mantle-Signature": sign(SECRET, BODY), "Idempotency-Key": "order-17"}
    first = api.post(path, content=BODY, headers=headers)
    again = api.post(path, content=BODY, headers=headers)
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert first.json()["run_id"] == again.json()["run_id"] and len(runs_of(tenant, app_id)) == 1
    # A replay cannot borrow another key to start a run either.
    other = api.post(path, content=BODY, headers={**headers, "Idempotency-Key": "order-18"})
    assert other.status_code == 403 and len(runs_of(tenant, app_id)) == 1


# Well outside the 300 s window: the server reads its clock a moment after the test signs.
@pytest.mark.parametrize(("offset", "says"), [(-330, "s old"), (-3600 * 24, "s old"), (330, "in the future")])
def test_a_signature_outside_its_window_is_refused_naming_it(tenant: Tenant, api: TestClient, offset: int,
                                                            says: str) -> None:
    app_id, path = signed_app(tenant)
    stale = sign(SECRET, BODY, int(time.time()) + offset)
    answer = api.post(path, content=BODY, headers={**JSON, "X-Mantle-Signature": stale})
    assert answer.status_code == 403, answer.text
    message = answer.json()["detail"][0]["msg"]
    assert says in message and "within 300 s of signing" in message
    assert runs_of(tenant, app_id) == []


@pytest.mark.parametrize("header", [
    "sha256=" + "0" * 64,  # the earlier scheme, without a timestamp: replayable, so refused
    "t=notanumber,v1=" + "0" * 64, "v1=" + "0" * 64, "t=1700000000", "t=1700000000,v1=zz"])
def test_a_signature_not_in_the_timestamped_form_names_the_form(tenant: Tenant, api: TestClient,
                                                                header: str) -> None:
    app_id, path = signed_app(tenant)
    answer = api.post(path, content=BODY, headers={**JSON, "X-Mantle-Signature": header})
    assert answer.status_code == 403
    assert "must be t=<Unix time>,v1=<hex HMAC-SHA256" in answer.json()["detail"][0]["msg"]
    assert runs_of(tenant, app_id) == []


def test_used_signatures_are_forgotten_once_their_window_has_passed(
        tenant: Tenant, api: TestClient, sessions: sessionmaker[Session]) -> None:
    _, path = signed_app(tenant)
    with session_scope(sessions) as session:
        endpoint_id = session.scalars(select(WebhookEndpoint.id)).one()
        for i in range(5):
            session.add(WebhookNonce(endpoint_id=endpoint_id, signature=f"{i:064x}",
                                     seen_at=utcnow() - timedelta(hours=1)))
    answer = api.post(path, content=BODY, headers={**JSON, "X-Mantle-Signature": sign(SECRET, BODY)})
    assert answer.status_code == 202
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookNonce)) == 1  # the new one only


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def committed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Committed]:
    """The API on a database of its own, where each request has its own connection."""
    with committed_api(request.param, tmp_path_factory.mktemp("replay")) as built:
        yield built


def test_copies_of_one_post_racing_start_one_run(committed: Committed) -> None:
    app_id, path = signed_app(Tenant(committed.org_id, "racer", committed.key, committed.client))
    headers = {**JSON, "X-Mantle-Signature": sign(SECRET, BODY)}
    copies = 12
    barrier = threading.Barrier(copies)
    with serve(committed.app) as live:
        def post(_: int) -> int:
            with httpx.Client(base_url=live.url, timeout=60) as client:
                barrier.wait(timeout=30)
                return client.post(path, content=BODY, headers=headers).status_code

        with ThreadPoolExecutor(copies) as pool:
            answers = list(pool.map(post, range(copies)))
    assert sorted(answers) == [202] + [403] * (copies - 1), answers
    runs = committed.client.get(f"/v1/apps/{app_id}/runs").json()["items"]
    assert len(runs) == 1
