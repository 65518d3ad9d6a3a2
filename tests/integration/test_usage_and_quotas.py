"""Usage per organization (`GET /v1/usage`) and quotas (`/v1/org/quota`, the atomic counters), on
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from core.settings import get_settings
from models import quotas
from models.orgs import Organization, create_org
from models.usage import UsageSource, record_usage
from tests.conftest import Tenant

DAY1 = datetime(2030, 1, 30, 12, 0, tzinfo=UTC)
DAY2 = datetime(2030, 1, 31, 9, 30, tzinfo=UTC)


def add(session: Session, org_id: uuid.UUID, *, app_id: uuid.UUID | None, model: str, at: datetime,
        tokens: tuple[int, int], cost: float | None = None, latency: float = 1.0) -> None:
    record_usage(session, org_id=org_id, source=UsageSource.run if app_id else UsageSource.openai,
                 deployment=model, prompt_tokens=tokens[0], completion_tokens=tokens[1], latency_s=latency,
                 cost=cost, app_id=app_id, at=at)


def test_usage_is_summed_filtered_and_grouped_for_the_callers_organization_only(
        tenant: Tenant, other_tenant: Tenant, sessions: sessionmaker[Session]) -> None:
    app_a, app_b = uuid.uuid4(), uuid.uuid4()
    with sessions() as session:
        org = tenant.org_id
        add(session, org, app_id=app_a, model="small", at=DAY1, tokens=(10, 5), cost=0.5, latency=1.0)
        add(session, org, app_id=app_a, model="small", at=DAY2, tokens=(20, 10), cost=1.0, latency=3.0)
        add(session, tenant.org_id, app_id=app_b, model="big", at=DAY2, tokens=(100, 50))
        add(session, tenant.org_id, app_id=None, model="big", at=DAY2, tokens=(1, 2))  # the OpenAI API's
        add(session, other_tenant.org_id, app_id=app_a, model="small", at=DAY2, tokens=(999, 999))
        session.commit()
    span = {"from": "2030-01-01T00:00:00Z", "to": "2030-02-01T00:00:00Z"}

    whole = tenant.client.get("/v1/usage", params=span)
    assert whole.status_code == 200, whole.text
    assert whole.json()["totals"] == {"requests": 4, "prompt_tokens": 131, "completion_tokens": 67,
                                      "total_tokens": 198, "cost": 1.5, "mean_latency_s": 1.5}
    assert whole.json()["groups"] == []

    by_day = tenant.client.get("/v1/usage", params={**span, "group_by": "day"}).json()["groups"]
    assert [(g["key"], g["requests"], g["total_tokens"]) for g in by_day] == [
        ("2030-01-30", 1, 15), ("2030-01-31", 3, 183)]
    apps = tenant.client.get("/v1/usage", params={**span, "group_by": "app"}).json()["groups"]
    by_app = {g["key"]: g for g in apps}
    assert set(by_app) == {str(app_a), str(app_b), None}
    assert by_app[str(app_a)]["prompt_tokens"] == 30 and by_app[str(app_a)]["cost"] == 1.5
    assert by_app[str(app_b)]["cost"] is None  # no prices, no cost
    by_model = tenant.client.get("/v1/usage", params={**span, "group_by": "model"}).json()["groups"]
    assert [(g["key"], g["requests"]) for g in by_model] == [("big", 2), ("small", 2)]

    only_a = tenant.client.get("/v1/usage", params={**span, "app_id": str(app_a), "model": "small"}).json()
    assert only_a["totals"]["requests"] == 2 and only_a["totals"]["completion_tokens"] == 15
    one_day = tenant.client.get("/v1/usage", params={"from": "2030-01-31T00:00:00Z", "to": span["to"]})
    assert one_day.json()["totals"]["requests"] == 3

    theirs = other_tenant.client.get("/v1/usage", params={**span, "group_by": "app"}).json()
    assert theirs["totals"]["total_tokens"] == 1998 and [g["key"] for g in theirs["groups"]] == [str(app_a)]


def test_bad_usage_queries_are_refused_with_the_parameter_named(tenant: Tenant) -> None:
    backwards = tenant.client.get("/v1/usage", params={"from": "2030-02-01T00:00:00Z",
                                                       "to": "2030-01-01T00:00:00Z"})
    assert backwards.status_code == 422 and backwards.json()["detail"][0]["loc"] == ["query", "from"]
    naive = tenant.client.get("/v1/usage", params={"from": "2030-01-01T00:00:00"})
    assert naive.status_code == 422 and "time zone" in naive.json()["detail"][0]["msg"]
    unknown = tenant.client.get("/v1/usage", params={"group_by": "week"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["query", "group_by"]


def test_an_admin_sets_the_quota_and_builders_only_read_it(tenant: Tenant, sessions: sessionmaker[Session]
                                                           ) -> None:
    with sessions() as session:
        add(session, tenant.org_id, app_id=uuid.uuid4(), model="small", at=datetime.now(UTC), tokens=(7, 3))
        session.commit()
    assert tenant.client.get("/v1/org/quota").json()["tokens_per_day"] is None
    answer = tenant.client.put("/v1/org/quota", json={"tokens_per_day": 1000, "requests_per_minute": 5,
                                                      "on_exceed": "wait"})
    assert answer.status_code == 200, answer.text
    # Today's count starts from what the organization's calls already used today.
    assert answer.json() == {"tokens_per_day": 1000, "requests_per_minute": 5, "on_exceed": "wait",
                             "tokens_today": 10, "requests_this_minute": 0}
    made = tenant.client.post("/v1/keys", json={"name": "bob", "role": "builder"}).json()["key"]
    builder = {"Authorization": f"Bearer {made}"}
    assert tenant.client.get("/v1/org/quota", headers=builder).json()["requests_per_minute"] == 5
    refused = tenant.client.put("/v1/org/quota", headers=builder, json={"requests_per_minute": 500})
    assert refused.status_code == 403
    bad = tenant.client.put("/v1/org/quota", json={"requests_per_minute": -1, "on_exceed": "shrug"})
    assert bad.status_code == 422 and {tuple(e["loc"]) for e in bad.json()["detail"]} == {
        ("body", "requests_per_minute"), ("body", "on_exceed")}
    assert any(e["action"] == "quota.update" for e in tenant.client.get("/v1/audit").json()["items"])


@pytest.fixture
def committed(engine: Engine) -> Iterator[tuple[sessionmaker[Session], uuid.UUID]]:
    """Sessions that really commit (concurrent transactions), and an organization of its own."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        org = create_org(session, name=f"quota-{uuid.uuid4().hex[:8]}")
        session.commit()
        org_id = org.id
    yield factory, org_id
    with factory() as session:
        session.delete(session.get_one(Organization, org_id))
        session.commit()


def race(factory: sessionmaker[Session], org_id: uuid.UUID, callers: int) -> list[bool]:
    """`callers` transactions asking for one request's admission at the same moment."""
    barrier = threading.Barrier(callers)
    admitted: list[bool] = []

    def ask() -> None:
        with factory() as session:
            barrier.wait()
            refusal = quotas.admit(session, org_id=org_id)
            session.commit()
        admitted.append(refusal is None)

    threads = [threading.Thread(target=ask) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return admitted


def test_concurrent_calls_cannot_both_take_the_last_request_of_the_minute(
        committed: tuple[sessionmaker[Session], uuid.UUID]) -> None:
    factory, org_id = committed
    with factory() as session:
        quotas.set_quota(session, org_id=org_id, tokens_per_day=None, requests_per_minute=3,
                         on_exceed=quotas.OnExceed.fail)
        assert quotas.admit(session, org_id=org_id) is None and quotas.admit(session, org_id=org_id) is None
        session.commit()
    assert sorted(race(factory, org_id, 6)) == [False] * 5 + [True]
    with factory() as session:
        refusal = quotas.admit(session, org_id=org_id)
        assert refusal is not None and "3 model requests per minute" in refusal.message
        assert 1 <= refusal.retry_after_s <= 60 and quotas.used(session, org_id=org_id)[1] == 3


def test_concurrent_calls_cannot_both_take_the_last_token_of_the_day(
        committed: tuple[sessionmaker[Session], uuid.UUID]) -> None:
    factory, org_id = committed
    with factory() as session:
        quotas.set_quota(session, org_id=org_id, tokens_per_day=100, requests_per_minute=1000,
                         on_exceed=quotas.OnExceed.fail)
        assert quotas.admit(session, org_id=org_id) is None
        quotas.charge_tokens(session, org_id=org_id, tokens=99)  # the call used 99: one token is left
        session.commit()
    assert sorted(race(factory, org_id, 6)) == [False] * 5 + [True]
    with factory() as session:
        tokens, requests = quotas.used(session, org_id=org_id)
        # Refused calls gave back the request they had taken: only the two admitted ones count.
        assert tokens == 100 and requests == 2
        refusal = quotas.admit(session, org_id=org_id)
        assert refusal is not None and "100 model tokens per day" in refusal.message
        tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        assert quotas.admit(session, org_id=org_id, now=tomorrow) is None  # a new day, a new count


def test_the_operator_sets_a_quota_from_the_command_line(
        committed: tuple[sessionmaker[Session], uuid.UUID], database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    factory, org_id = committed
    with factory() as session:
        name = session.get_one(Organization, org_id).name
    monkeypatch.setenv("MANTLE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        made = CliRunner().invoke(main, ["orgs", "quota", name, "--requests-per-minute", "2",
                                         "--on-exceed", "wait"])
        unknown = CliRunner().invoke(main, ["orgs", "quota", "no-such-org", "--tokens-per-day", "5"])
    finally:
        get_settings.cache_clear()
    assert made.exit_code == 0, made.output
    assert "unlimited tokens per day, 2 requests per minute" in made.output
    with factory() as session:
        quota = quotas.get_quota(session, org_id=org_id)
        assert quota is not None and (quota.requests_per_minute, quota.tokens_per_day, quota.on_exceed) == (
            2, None, "wait")
    assert unknown.exit_code != 0 and "no-such-org" in unknown.output
