"""People through the API: invitations, passwords, organizations, roles, sessions and their own keys."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from models import accounts
from models.db import session_scope
from models.orgs import Role, create_org
from tests.conftest import Tenant
from tests.people import PASSWORD, accept, browser, invite, join, sign_in, token_of


def test_an_invited_person_chooses_a_password_and_signs_in_with_it(api: TestClient, tenant: Tenant) -> None:
    made = invite(tenant.client, "Ada@Example.com", "builder")
    assert made["email"] == "ada@example.com" and made["url"].split("?")[0].endswith("/builder/invite")
    assert [i["email"] for i in tenant.client.get("/v1/invitations").json()] == ["ada@example.com"]
    info = browser(api).get("/v1/invitations/accept", params={"token": token_of(made["url"])})
    assert info.status_code == 200, info.text
    assert info.json() | {"expires_at": None} == {"email": "ada@example.com", "org_name": "acme",
                                                  "role": "builder", "has_account": False, "expires_at": None}
    ada = accept(api, made["url"])
    assert ada.session["email"] == "ada@example.com" and ada.session["role"] == "builder"
    assert ada.session["actor"] == f"user:{ada.user_id}:ada@example.com"
    assert [o["name"] for o in ada.session["orgs"]] == ["acme"]
    again = browser(api).post("/v1/invitations/accept",
                              json={"token": token_of(made["url"]), "password": PASSWORD})
    assert again.status_code == 404 and "already used" in again.json()["detail"][0]["msg"]
    assert tenant.client.get("/v1/invitations").json() == []
    members = tenant.client.get("/v1/members").json()
    assert [(m["email"], m["role"], m["sessions"]) for m in members] == [("ada@example.com", "builder", 1)]
    assert sign_in(api, "ADA@example.com").session["user_id"] == ada.user_id


def test_common_and_short_passwords_are_refused_by_name(api: TestClient, tenant: Tenant) -> None:
    token = token_of(invite(tenant.client, "bob@example.com")["url"])
    client = browser(api)
    for password, rule in (("password1234", "password.common"), ("Password1234", "password.common"),
                           ("short", "password.too_short")):
        refused = client.post("/v1/invitations/accept", json={"token": token, "password": password})
        assert refused.status_code == 422, refused.text
        [problem] = refused.json()["detail"]
        assert problem["type"] == rule and problem["loc"] == ["body", "password"], problem
    assert "commonly used" in client.post("/v1/invitations/accept", json={
        "token": token, "password": "iloveyou123"}).json()["detail"][0]["msg"]
    assert accept(api, invite(tenant.client, "bob@example.com")["url"]).session["email"] == "bob@example.com"


def test_a_person_writes_with_the_csrf_token_and_the_audit_log_names_them(api: TestClient,
                                                                           tenant: Tenant) -> None:
    ada = join(api, tenant.client, "ada@example.com")
    bare = browser(api)
    bare.cookies.update(ada.client.cookies)
    refused = bare.post("/v1/apps", json={"name": "No token"})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"][0]["msg"]
    made = ada.client.post("/v1/apps", json={"name": "Ada's app"})
    assert made.status_code == 201, made.text
    [entry] = tenant.client.get("/v1/audit", params={"target_id": made.json()["id"]}).json()["items"]
    assert entry["actor"] == f"user:{ada.user_id}:ada@example.com"
    assert ada.client.get("/v1/org").json()["actor"] == entry["actor"]


def test_an_existing_account_joins_with_its_own_password_and_switches_organization(
        api: TestClient, tenant: Tenant, other_tenant: Tenant, sessions: sessionmaker[Session]) -> None:
    ada = join(api, tenant.client, "ada@example.com", "builder")
    url = invite(other_tenant.client, "ada@example.com", "reviewer")["url"]
    info = browser(api).get("/v1/invitations/accept", params={"token": token_of(url)}).json()
    assert info["has_account"] is True and info["org_name"] == "globex"
    wrong = browser(api).post("/v1/invitations/accept",
                              json={"token": token_of(url), "password": "not-her-pass-1"})
    assert wrong.status_code == 401
    joined = accept(api, url)
    assert joined.session["org_name"] == "globex" and joined.session["role"] == "reviewer"
    assert sorted((o["name"], o["role"]) for o in joined.session["orgs"]) == [("acme", "builder"),
                                                                             ("globex", "reviewer")]
    csrf = ada.client.headers["X-CSRF-Token"]
    moved = ada.client.post("/v1/session/org", json={"org_id": str(other_tenant.org_id)})
    assert moved.status_code == 200, moved.text
    assert moved.json()["org_name"] == "globex" and moved.json()["csrf_token"] == csrf
    assert ada.client.post("/v1/apps", json={"name": "x"}).status_code == 403  # a reviewer there
    back = ada.client.post("/v1/session/org", json={"org_id": str(tenant.org_id)})
    assert back.json()["role"] == "builder"
    assert ada.client.post("/v1/apps", json={"name": "Back home"}).status_code == 201
    with_key = tenant.client.post("/v1/session/org", json={"org_id": str(tenant.org_id)})
    assert with_key.status_code == 403
    with session_scope(sessions) as session:
        initech = create_org(session, name="initech").id
    for elsewhere in (str(uuid.uuid4()), str(initech)):
        answer = ada.client.post("/v1/session/org", json={"org_id": elsewhere})
        assert answer.status_code == 404 and answer.json()["detail"][0]["loc"] == ["body", "org_id"]


def test_signing_out_and_revoking_end_sessions_server_side(api: TestClient, tenant: Tenant) -> None:
    ada = join(api, tenant.client, "ada@example.com")
    laptop, phone = sign_in(api, "ada@example.com"), sign_in(api, "ada@example.com")
    mine = [s for s in tenant.client.get("/v1/sessions").json() if s["email"] == "ada@example.com"]
    assert len(mine) == 3 and sorted(s["via"] for s in mine) == ["invitation", "password", "password"]
    stolen = laptop.client.cookies.get("mantle_session")
    assert laptop.client.delete("/v1/session").status_code == 204
    replay = browser(api)
    replay.cookies.set("mantle_session", stolen or "")
    assert replay.get("/v1/apps").status_code == 401
    first = next(s["id"] for s in tenant.client.get("/v1/sessions").json() if s["via"] == "invitation")
    assert tenant.client.delete(f"/v1/sessions/{first}").status_code == 204
    assert ada.client.get("/v1/apps").status_code == 401
    assert phone.client.get("/v1/apps").status_code == 200
    revoked = tenant.client.delete(f"/v1/members/{ada.user_id}/sessions")
    assert revoked.status_code == 200 and revoked.json() == {"revoked": 1}
    assert phone.client.get("/v1/apps").status_code == 401
    assert tenant.client.get("/v1/members").json()[0]["sessions"] == 0
    assert tenant.client.delete(f"/v1/sessions/{uuid.uuid4()}").status_code == 404


def test_roles_apply_to_people_and_change_at_once(api: TestClient, tenant: Tenant) -> None:
    rita = join(api, tenant.client, "rita@example.com", "reviewer")
    assert rita.client.get("/v1/apps").status_code == 200
    refused = rita.client.post("/v1/apps", json={"name": "x"})
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["msg"] == ("this needs the role admin or builder; "
                                                  "your role here is reviewer")
    assert rita.client.get("/v1/members").status_code == 403
    promoted = tenant.client.patch(f"/v1/members/{rita.user_id}", json={"role": "builder"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "builder"
    assert rita.client.post("/v1/apps", json={"name": "Now I build"}).status_code == 201
    assert tenant.client.patch(f"/v1/members/{rita.user_id}", json={"role": "owner"}).status_code == 422
    assert tenant.client.delete(f"/v1/members/{rita.user_id}").status_code == 204
    assert rita.client.get("/v1/apps").status_code == 401
    assert tenant.client.get("/v1/members").json() == []
    assert tenant.client.delete(f"/v1/members/{rita.user_id}").status_code == 404


def test_the_last_admin_stays_an_admin(api: TestClient, sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        org = create_org(session, name="solo")
        user = accounts.create_user(session, email="root@example.com", password=PASSWORD)
        accounts.add_member(session, org_id=org.id, user_id=user.id, role=Role.admin)
        user_id = user.id
    root = sign_in(api, "root@example.com")
    demoted = root.client.patch(f"/v1/members/{user_id}", json={"role": "builder"})
    assert demoted.status_code == 409 and "last admin" in demoted.json()["detail"][0]["msg"]
    assert root.client.delete(f"/v1/members/{user_id}").status_code == 409
    other = join(api, root.client, "deputy@example.com", "admin")
    assert root.client.patch(f"/v1/members/{user_id}", json={"role": "builder"}).status_code == 200
    assert other.client.get("/v1/members").status_code == 200


def test_a_person_makes_keys_of_their_own_role_listed_with_their_name(api: TestClient,
                                                                      tenant: Tenant) -> None:
    ada = join(api, tenant.client, "ada@example.com", "builder")
    made = ada.client.post("/v1/keys", json={"name": "ada ci", "role": "builder"})
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == f"user:{ada.user_id}:ada@example.com"
    assert made.json()["user_id"] == ada.user_id
    too_much = ada.client.post("/v1/keys", json={"name": "sneaky", "role": "admin"})
    assert too_much.status_code == 403 and too_much.json()["detail"][0]["loc"] == ["body", "role"]
    assert [k["name"] for k in ada.client.get("/v1/keys").json()] == ["ada ci"]
    everyone = {k["name"]: k["created_by"] for k in tenant.client.get("/v1/keys").json()}
    assert everyone["ada ci"] == made.json()["created_by"] and "acme key" in everyone
    admin_key = next(k for k in tenant.client.get("/v1/keys").json() if k["name"] == "acme key")
    assert ada.client.delete(f"/v1/keys/{admin_key['id']}").status_code == 404  # not hers
    program = TestClient(api.app, headers={"Authorization": f"Bearer {made.json()['key']}"},
                         raise_server_exceptions=False)
    assert program.post("/v1/apps", json={"name": "From CI"}).status_code == 201
    assert program.get("/v1/keys").status_code == 403  # a builder key manages no keys
    assert tenant.client.delete(f"/v1/members/{ada.user_id}").status_code == 204
    assert program.get("/v1/apps").status_code == 401  # her keys left with her


def test_a_set_password_link_sets_it_once(api: TestClient, tenant: Tenant,
                                          sessions: sessionmaker[Session]) -> None:
    ada = join(api, tenant.client, "ada@example.com")
    with session_scope(sessions) as session:
        user = accounts.find_user(session, email="ada@example.com")
        assert user is not None
        token = accounts.create_password_link(session, user=user)
    client = browser(api)
    assert client.get("/v1/password-reset", params={"token": token}).json()["email"] == "ada@example.com"
    weak = client.post("/v1/password-reset", json={"token": token, "password": "qwertyuiop"})
    assert weak.status_code == 422 and weak.json()["detail"][0]["type"] == "password.common"
    done = client.post("/v1/password-reset", json={"token": token, "password": "lantern-orbit-52"})
    assert done.status_code == 201 and done.json()["email"] == "ada@example.com"
    again = client.post("/v1/password-reset", json={"token": token, "password": "lantern-orbit-53"})
    assert again.status_code == 404
    old = browser(api).post("/v1/session", json={"email": "ada@example.com", "password": PASSWORD})
    assert old.status_code == 401
    assert sign_in(api, "ada@example.com", "lantern-orbit-52").session["user_id"] == ada.user_id


def test_invitations_are_withdrawn_and_checked(api: TestClient, tenant: Tenant) -> None:
    made = invite(tenant.client, "zed@example.com")
    assert tenant.client.delete(f"/v1/invitations/{made['id']}").status_code == 200
    assert _info(api, made["url"]) == 404
    bad = tenant.client.post("/v1/invitations", json={"email": "not-an-email", "role": "builder"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "email"]
    join(api, tenant.client, "ada@example.com")
    twice = tenant.client.post("/v1/invitations", json={"email": "ada@example.com", "role": "builder"})
    assert twice.status_code == 409 and "already a member" in twice.json()["detail"][0]["msg"]
    first, second = invite(tenant.client, "kim@example.com"), invite(tenant.client, "kim@example.com")
    assert _info(api, first["url"]) == 404
    assert accept(api, second["url"]).session["email"] == "kim@example.com"


def _info(api: TestClient, url: str) -> int:
    return browser(api).get("/v1/invitations/accept", params={"token": token_of(url)}).status_code
