"""The routes public by design, aimed at another organization: Twilio webhooks, share links and the
reviewer pages each stay inside the organization their secret belongs to."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from models.db import session_scope
from models.sms import SmsOutbound
from models.sms_messages import add_outbound
from tests.people import accept
from tests.security.world import PHONE, Owned
from tests.sms import inbound_form, post_signed


def test_a_webhook_signed_with_another_organizations_token_is_refused(world: tuple[Owned, Owned]) -> None:
    victim, attacker = world
    before = victim.tenant.client.get(f"/v1/apps/{victim.ids['sms_app_id']}/conversations/{PHONE}").json()
    forged = post_signed(attacker.tenant.client, victim.sms_webhook_path,
                         inbound_form("send me their data", to="+15550001111"), token=attacker.twilio_token)
    assert forged.status_code == 403, forged.text
    after = victim.tenant.client.get(f"/v1/apps/{victim.ids['sms_app_id']}/conversations/{PHONE}").json()
    assert after == before  # no message stored, no run started


def test_a_status_callback_signed_with_another_organizations_token_is_refused(
        world: tuple[Owned, Owned], sessions: sessionmaker[Session]) -> None:
    victim, attacker = world
    with session_scope(sessions) as session:
        sms_app = uuid.UUID(victim.ids["sms_app_id"])
        [sent] = add_outbound(session, org_id=victim.tenant.org_id, app_id=sms_app, run_id=None,
                              node_id="reply", inbound_id=None, key=f"x:{uuid.uuid4()}", to=PHONE,
                              from_="+15550001111", parts=["hello"], via="rest", status="queued")
        sent_id = sent.id
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered",
            "AccountSid": victim.ids["account_sid"]}
    forged = post_signed(attacker.tenant.client, f"/twilio/status/{sent_id}", form,
                         token=attacker.twilio_token)
    assert forged.status_code == 403, forged.text
    with sessions() as session:
        assert session.get(SmsOutbound, sent_id).status == "queued"  # type: ignore[union-attr]
    genuine = post_signed(victim.tenant.client, f"/twilio/status/{sent_id}", form, token=victim.twilio_token)
    assert genuine.status_code == 204, genuine.text  # the same callback, signed by its own account


def test_a_share_link_reveals_its_own_app_and_nothing_else(api: TestClient,
                                                           world: tuple[Owned, Owned]) -> None:
    victim, attacker = world
    info = api.get(f"/s/{victim.share_slug}/app.json")
    assert info.status_code == 200 and info.json()["name"] == "victim greeter"
    hidden = victim.secrets() - {victim.share_slug} | attacker.secrets() | {str(victim.tenant.org_id)}
    for path in (f"/s/{victim.share_slug}", f"/s/{victim.share_slug}/app.json"):
        body = api.get(path).text
        assert not [s for s in hidden if s in body], path
    run, token = victim.share_run["run_id"], victim.share_run["token"]
    assert api.get(f"/s/{victim.share_slug}/runs/{run}", params={"token": token}).status_code == 200
    # The same run through another organization's link, or another run through this one: 404.
    assert api.get(f"/s/{attacker.share_slug}/runs/{run}", params={"token": token}).status_code == 404
    for other in (victim.ids["run_id"], attacker.share_run["run_id"]):
        assert api.get(f"/s/{victim.share_slug}/runs/{other}", params={"token": token}).status_code == 404
        assert api.get(f"/s/{victim.share_slug}/runs/{other}/events",
                       params={"token": token}).status_code == 404


def test_the_reviewer_page_hides_another_organizations_items(api: TestClient,
                                                             world: tuple[Owned, Owned]) -> None:
    victim, attacker = world
    browser = TestClient(api.app, raise_server_exceptions=False)
    assert browser.post("/review/login", data={"key": attacker.tenant.key}).status_code in (200, 303)
    queue = browser.get("/review")
    assert queue.status_code == 200 and victim.ids["review_id"] not in queue.text
    token = re.search(r'name="token" value="([A-Za-z0-9_-]+)"', queue.text)
    assert token is not None, queue.text[:500]
    item = f"/review/items/{victim.ids['review_id']}"
    assert browser.get(item).status_code == 404
    for action in ("claim", "decision"):
        answer = browser.post(f"{item}/{action}", data={"token": token.group(1), "action": "approve"})
        assert answer.status_code == 404, (action, answer.text[:300])
    assert victim.tenant.client.get(f"/v1/reviews/{victim.ids['review_id']}").json()["status"] == "pending"


def test_an_invitation_link_shows_and_joins_its_own_organization_only(api: TestClient,
                                                                       world: tuple[Owned, Owned]) -> None:
    victim, attacker = world
    made = attacker.tenant.client.post("/v1/invitations", json={"email": "victim@example.com"}).json()
    token = made["url"].split("token=")[1]
    info = api.get("/v1/invitations/accept", params={"token": token})
    assert info.json()["org_name"] == "globex" and info.json()["has_account"] is True
    assert not [s for s in victim.secrets() if s in info.text]
    # The victim's member, invited elsewhere, joins with her own password: her organization's
    # data stays out of the other organization's reach, and it cannot take her session.
    joined = accept(TestClient(api.app, raise_server_exceptions=False), made["url"])
    assert joined.session["org_name"] == "globex"
    assert not [s for s in victim.secrets() - {victim.ids["user_id"]} if s in str(joined.session)]
    members = attacker.tenant.client.get("/v1/members").json()
    assert victim.ids["user_id"] in str(members)  # she is a member there now, by her own choice
    assert attacker.tenant.client.get(f"/v1/apps/{victim.ids['app_id']}").status_code == 404
    assert attacker.tenant.client.delete(f"/v1/sessions/{victim.ids['session_id']}").status_code == 404
    assert victim.tenant.client.get("/v1/session").status_code == 200
    assert victim.ids["session_id"] in str(victim.tenant.client.get("/v1/sessions").json())
