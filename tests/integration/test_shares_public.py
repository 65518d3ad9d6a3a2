"""The public side of a share link: the page, its JSON twin, starting runs, and what a visitor may see."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.runs import NodeRun, Run, RunEvent
from models.shares import Share
from tests.conftest import Tenant
from tests.factories import greeter_graph
from tests.webapps import page_config, publish, share, webapp_graph


def test_page_shows_the_form_with_security_headers(api: TestClient, tenant: Tenant) -> None:
    created = share(tenant.client, publish(tenant.client, webapp_graph()))
    page = api.get(f"/s/{created['slug']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Greeter &lt;b&gt;web&lt;/b&gt;" in html and "<b>web</b>" not in html  # the name is escaped
    assert 'name="name"' in html and 'maxlength="40"' in html and "As you like to be called" in html
    assert "<textarea" in html and 'type="number"' in html and '<option value="warm" selected>' in html
    assert 'type="checkbox"' in html and "Greet me" in html
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    cookie = page.headers["set-cookie"]
    assert "mantle_visitor=" in cookie and "httponly" in cookie.lower()
    assert "<script>" not in html.replace('<script type="application/json"', "")  # no inline script

    script = api.get("/s/assets/webapp.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "textContent" in script.text and "innerHTML" not in script.text


def test_embed_variant_may_be_framed_by_the_listed_sites(api: TestClient, tenant: Tenant) -> None:
    app_id = publish(tenant.client, webapp_graph())
    default = share(tenant.client, app_id)
    assert default["embed_origins"] == []
    for path in (f"/s/{default['slug']}", f"/s/{default['slug']}?embed=1"):  # no site may frame it
        framed = api.get(path)
        assert "frame-ancestors 'none'" in framed.headers["content-security-policy"]
        assert framed.headers["x-frame-options"] == "DENY"
    anywhere = share(tenant.client, app_id, embed_origins=["*"])  # the owner's explicit choice
    embedded = api.get(f"/s/{anywhere['slug']}", params={"embed": 1})
    assert "frame-ancestors *" in embedded.headers["content-security-policy"]
    assert "x-frame-options" not in embedded.headers and 'class="embed"' in embedded.text
    listed = share(tenant.client, app_id, embed_origins=["https://blog.example.com"])
    policy = api.get(f"/s/{listed['slug']}?embed=1").headers["content-security-policy"]
    assert "frame-ancestors https://blog.example.com" in policy
    nowhere = share(tenant.client, app_id, embed_origins=[])
    refused = api.get(f"/s/{nowhere['slug']}?embed=1")
    assert "frame-ancestors 'none'" in refused.headers["content-security-policy"]


def test_json_twin_runs_the_app_and_binds_the_run_to_its_link(api: TestClient, tenant: Tenant) -> None:
    app_id = publish(tenant.client, webapp_graph())
    slug = share(tenant.client, app_id)["slug"]
    info = api.get(f"/s/{slug}/app.json").json()
    assert info["name"] == "Greeter <b>web</b>" and info["submit_label"] == "Greet me"
    assert [f["kind"] for f in info["fields"]] == ["text", "long_text", "number", "choice", "checkbox"]
    assert info["outputs"] == [{"name": "greeting", "label": "Greeting"}]

    started = api.post(f"/s/{slug}/runs", json={"inputs": {"name": "Ada", "age": "36"}})
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "queued" and run["progress"] == {"done": 0, "total": 3}
    assert set(run) == {"run_id", "status", "waiting_for", "progress", "outputs", "error", "token",
                        "status_url", "events_url"}
    trace = tenant.client.get(f"/v1/runs/{run['run_id']}").json()
    assert trace["trigger"] == "webapp" and trace["inputs"]["age"] == 36 and trace["inputs"]["tone"] == "warm"

    assert api.get(run["status_url"]).json()["status"] == "queued"
    assert api.get(f"/s/{slug}/runs/{run['run_id']}").status_code == 404  # no token
    other_slug = share(tenant.client, app_id)["slug"]
    assert api.get(f"/s/{other_slug}/runs/{run['run_id']}?token={run['token']}").status_code == 404
    assert api.get(f"/s/{slug}/runs/{uuid.uuid4()}?token={run['token']}").status_code == 404


def test_an_api_trigger_app_gets_a_form_and_the_builder_api_runs_web_forms(api: TestClient,
                                                                          tenant: Tenant) -> None:
    greeter = publish(tenant.client, greeter_graph(), name="Greeter")
    slug = share(tenant.client, greeter)["slug"]
    assert 'id="f-name"' in api.get(f"/s/{slug}").text
    assert api.post(f"/s/{slug}/runs", json={"inputs": {"name": "Ada"}}).status_code == 202

    web = publish(tenant.client, webapp_graph())
    started = tenant.client.post(f"/v1/apps/{web}/runs", json={"inputs": {"name": "Ada", "age": "7"}})
    # Through the API, a pure app's run ends as it starts (MANTLE_DIRECT_RUN_S): 200, ended.
    assert started.status_code == 200 and started.json()["inputs"]["age"] == 7
    assert started.json()["status"] == "succeeded"
    refused = tenant.client.post(f"/v1/apps/{web}/runs", json={"inputs": {"age": 7}})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "inputs", "name"]


def test_inputs_are_checked_on_the_server(api: TestClient, tenant: Tenant) -> None:
    slug = share(tenant.client, publish(tenant.client, webapp_graph()), visitor_per_minute=1)["slug"]
    bad = api.post(f"/s/{slug}/runs", json={"inputs": {"name": "x" * 41, "age": 3.5, "tone": "rude",
                                                         "loud": "maybe", "admin": True}})
    assert bad.status_code == 422
    problems = {tuple(d["loc"]): d["msg"] for d in bad.json()["detail"]}
    assert problems == {
        ("body", "inputs", "name"): "must be at most 40 characters",
        ("body", "inputs", "age"): "must be a whole number",
        ("body", "inputs", "tone"): "must be one of: warm, formal",
        ("body", "inputs", "loud"): "must be true or false",
        ("body", "inputs", "admin"): "Extra inputs are not permitted",
    }
    missing = api.post(f"/s/{slug}/runs", json={"inputs": {"name": "   "}})
    assert missing.json()["detail"][0]["msg"] == "is required"
    plain = api.post(f"/s/{slug}/runs", content=json.dumps({"inputs": {"name": "Ada"}}),
                     headers={"content-type": "text/plain"})
    assert plain.status_code == 422  # a cross-site "simple" post carries no JSON
    # Refused inputs spent nothing: the one run a minute is still there.
    assert api.post(f"/s/{slug}/runs", json={"inputs": {"name": "Ada"}}).status_code == 202


def test_cross_site_posts_and_stale_pages_are_refused(api: TestClient, tenant: Tenant) -> None:
    app_id = publish(tenant.client, webapp_graph())
    slug = share(tenant.client, app_id)["slug"]
    body = {"inputs": {"name": "Ada"}}
    evil = api.post(f"/s/{slug}/runs", json=body, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and evil.json()["detail"][0]["loc"] == ["header", "Origin"]
    assert api.post(f"/s/{slug}/runs", json=body, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    same = api.post(f"/s/{slug}/runs", json=body, headers={"Origin": "http://testserver"})
    assert same.status_code == 202
    other_token = page_config(api.get(f"/s/{share(tenant.client, app_id)['slug']}").text)["page_token"]
    stale = api.post(f"/s/{slug}/runs", json=body, headers={"X-Mantle-Page": other_token})
    assert stale.status_code == 403 and stale.json()["detail"][0]["type"] == "page_expired"


def test_revoked_and_expired_links(api: TestClient, tenant: Tenant, sessions: sessionmaker[Session]) -> None:
    app_id = publish(tenant.client, webapp_graph())
    created = share(tenant.client, app_id)
    slug = created["slug"]
    run = api.post(f"/s/{slug}/runs", json={"inputs": {"name": "Ada"}}).json()
    tenant.client.post(f"/v1/apps/{app_id}/shares/{created['id']}/revoke")
    page = api.get(f"/s/{slug}")
    assert page.status_code == 404 and "no longer shared" in page.text and "Greeter" not in page.text
    assert api.post(f"/s/{slug}/runs", json={"inputs": {"name": "Ada"}}).status_code == 404
    assert api.get(run["status_url"]).status_code == 404
    assert api.get(f"/s/{slug}/app.json").status_code == 404

    expiring = share(tenant.client, app_id)
    with sessions() as s:
        s.execute(update(Share).where(Share.slug == expiring["slug"])
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
        s.commit()
    assert api.get(f"/s/{expiring['slug']}").status_code == 410
    gone = api.post(f"/s/{expiring['slug']}/runs", json={"inputs": {"name": "Ada"}})
    assert gone.status_code == 410 and gone.json()["detail"][0]["type"] == "gone"
    assert api.get("/s/not-a-real-link-at-all").status_code == 404
    assert api.get("/s/<script>").status_code == 404


def test_a_visitor_sees_outcomes_never_the_trace(api: TestClient, tenant: Tenant,
                                                 sessions: sessionmaker[Session]) -> None:
    app_id = publish(tenant.client, webapp_graph())
    slug = share(tenant.client, app_id)["slug"]
    runs = [api.post(f"/s/{slug}/runs", json={"inputs": {"name": "Ada"}}).json() for _ in range(4)]
    secret = "node 'greet' (text.template) failed: KeyError in /srv/app.py line 12"
    with sessions() as s:
        _finish(s, runs[0]["run_id"], "blocked", node_error="We can't help with requests like this one.",
                error={"type": "blocked", "node_id": "greet", "message": secret})
        _finish(s, runs[1]["run_id"], "failed", error={"type": "node_failed", "node_id": "greet",
                                                         "message": secret}, node_error=secret)
        _finish(s, runs[2]["run_id"], "waiting", waiting_for={"kind": "review"})
        _finish(s, runs[3]["run_id"], "succeeded", outputs={"greeting": "<script>alert(1)</script>"})
        s.commit()
    blocked, failed, waiting, done = (api.get(r["status_url"]).json() for r in runs)
    assert blocked["error"] == {"type": "blocked", "message": "We can't help with requests like this one."}
    assert failed["error"]["type"] == "failed" and "KeyError" not in json.dumps(failed)
    assert waiting["status"] == "waiting" and waiting["waiting_for"] == "review"
    assert done["outputs"] == {"greeting": "<script>alert(1)</script>"} and done["progress"]["done"] == 1

    with api.stream("GET", runs[3]["events_url"]) as stream:
        text = "".join(stream.iter_text())
    assert "event: finished" in text and "&lt;" not in text and "alert(1)" in text
    assert "node_id" not in text and "inputs" not in text


def _finish(session: Session, run_id: str, status: str, *, error: dict[str, str] | None = None,
            node_error: str | None = None, waiting_for: dict[str, str] | None = None,
            outputs: dict[str, str] | None = None) -> None:
    """Put a run in a final (or waiting) state as the engine would, with its one node run and event."""
    run = session.get(Run, uuid.UUID(run_id))
    assert run is not None
    run.status, run.error, run.outputs = status, error, outputs
    node_status = {"blocked": "failed", "failed": "failed", "waiting": "waiting"}.get(status, "succeeded")
    session.add(NodeRun(run_id=run.id, node_id="greet", block_type="text.template", status=node_status,
                        error=node_error, waiting_for=waiting_for, attempts=1))
    if status != "waiting":
        session.add(RunEvent(run_id=run.id, type="run_finished", data={"status": status}))


def test_model_text_reaches_the_visitor_as_it_is_produced(api: TestClient, tenant: Tenant,
                                                          sessions: sessionmaker[Session]) -> None:
    from types import SimpleNamespace

    from api.public.json_api import _feed

    app_id = publish(tenant.client, webapp_graph())
    slug = share(tenant.client, app_id)["slug"]
    run_id = api.post(f"/s/{slug}/runs", json={"inputs": {"name": "Ada"}}).json()["run_id"]
    with sessions() as s:
        run = s.get(Run, uuid.UUID(run_id))
        assert run is not None
        run.status = "waiting"
        s.add_all([RunEvent(run_id=run.id, type="node_progress", node_id="greet", data={"delta": d})
                   for d in ("Dear <b>Ada</b>, ", "thank you")])
        s.commit()
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(read_sessions=sessions)))
    sent: dict[str, object] = {}
    batch = _feed(request, uuid.UUID(run_id), 1, sent, 0)  # type: ignore[arg-type]
    partial = [m.data for m in batch.messages if m.event == "partial"]
    assert partial == [{"delta": "Dear <b>Ada</b>, thank you"}]  # the page inserts it as text
    assert not batch.ended
    again = _feed(request, uuid.UUID(run_id), 1, sent, batch.cursor)  # type: ignore[arg-type]
    assert again.messages == []  # nothing is sent twice
