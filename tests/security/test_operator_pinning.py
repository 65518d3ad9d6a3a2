"""Pinning a model (preloaded by every inference worker, never evicted) is the operator's setting:
an organization's admin cannot pin, workers preload only the operator's pinned models, and
deployments pinned before this rule are unpinned by the migration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from migrations.run import upgrade
from models.base import JSONType, UTCDateTime, utcnow
from models.db import make_engine
from models.deployments import pinned_specs
from tests.conftest import POSTGRES_URL, Tenant, create_postgres_database, drop_postgres_database

SPEC = {"name": "mistral-7b", "source": "hf://mistralai/Mistral-7B-Instruct-v0.3", "device": "cuda"}


def test_an_organization_cannot_pin_a_deployment(tenant: Tenant) -> None:
    refused = tenant.client.post("/v1/models", json={**SPEC, "pinned": True})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "pinned"]
    assert "operator's setting (MANTLE_MODEL_DEPLOYMENTS)" in refused.json()["detail"][0]["msg"]
    assert tenant.client.post("/v1/models", json=SPEC).status_code == 201
    assert tenant.client.patch("/v1/models/mistral-7b", json={"pinned": True}).status_code == 422
    assert tenant.client.get("/v1/models/mistral-7b").json()["pinned"] is False


def test_workers_find_no_organizations_model_to_preload(tenant: Tenant, other_tenant: Tenant,
                                                        sessions: sessionmaker[Session]) -> None:
    for client in (tenant.client, other_tenant.client):
        assert client.post("/v1/models", json={**SPEC, "pinned": True}).status_code == 422
        assert client.post("/v1/models", json=SPEC).status_code == 201
        assert client.patch(f"/v1/models/{SPEC['name']}", json={"pinned": True}).status_code == 422
    with sessions() as session:
        assert pinned_specs(session) == []  # what an inference worker preloads besides the operator's


@pytest.fixture(params=["sqlite", "postgresql"])
def database_before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, migrated to just before pinning became the operator's."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = create_postgres_database(request.getfixturevalue("postgres_admin_url"))
    upgrade(url, "0010")
    yield url
    if request.param != "sqlite":
        drop_postgres_database(POSTGRES_URL, url)


def test_the_migration_unpins_organizations_deployments(database_before: str) -> None:
    # The tables as revision 0010 has them (the models may have columns added since).
    orgs = sa.table("organizations", sa.column("id", sa.Uuid()), sa.column("name", sa.String()),
                    sa.column("created_at", UTCDateTime()))
    rows = sa.table("model_deployments", sa.column("id", sa.Uuid()), sa.column("org_id", sa.Uuid()),
                    sa.column("name", sa.String()), sa.column("spec", JSONType),
                    sa.column("created_at", UTCDateTime()), sa.column("updated_at", UTCDateTime()))
    engine = make_engine(database_before)
    org_id, now = uuid.uuid4(), utcnow()
    with engine.begin() as conn:
        conn.execute(sa.insert(orgs).values(id=org_id, name="old", created_at=now))
        for name, pinned in (("pinned-before", True), ("never-pinned", False)):
            spec = {**SPEC, "name": name, "pinned": pinned}
            conn.execute(sa.insert(rows).values(id=uuid.uuid4(), org_id=org_id, name=name, spec=spec,
                                                created_at=now, updated_at=now))
    upgrade(database_before)
    with engine.connect() as conn:
        specs = {r.name: r.spec for r in conn.execute(sa.select(rows.c.name, rows.c.spec))}
    engine.dispose()
    assert {name: spec["pinned"] for name, spec in specs.items()} == {"pinned-before": False,
                                                                     "never-pinned": False}
    assert specs["pinned-before"]["source"] == SPEC["source"]
