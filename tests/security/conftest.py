"""Fixtures of the security suite: two organizations, each owning one object of every kind."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from tests.conftest import Tenant
from tests.security.world import Owned, build
from worker.engine import RunEngine


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with runs started without waiting left queued even for pure apps
    (`MANTLE_DIRECT_RUN_S=0`): each organization owns a queued run, whose cancelling, retrying
    and reading the other organization must not reach."""
    return settings.model_copy(update={"direct_run_s": 0})


@pytest.fixture
def runs(sessions: sessionmaker[Session], settings: Settings, api: TestClient) -> RunEngine:
    """The run engine on the test's database (the test advances runs itself)."""
    return RunEngine(sessions, api.app.state.registry, settings, enqueue=lambda run_id, eta: None)


@pytest.fixture
def world(tenant: Tenant, other_tenant: Tenant, runs: RunEngine) -> tuple[Owned, Owned]:
    """(victim, attacker): two organizations owning one of everything each."""
    return (build(tenant, runs, label="victim"),
            build(other_tenant, runs, number="+15550002222", label="attacker", twilio_token="b" * 32))
