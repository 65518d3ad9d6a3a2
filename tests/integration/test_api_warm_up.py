"""An API server warms up before it serves (api/warm.py): a broker that is down at that moment
does not keep it from starting, and `/readyz` names what is down, as it would without warm-up."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from core.settings import Settings
from tests.conftest import free_port


def test_a_server_api_starts_with_its_broker_down_and_readyz_names_it(
        settings: Settings, sessions: sessionmaker[Session]) -> None:
    down = settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(down, sessions=sessions, warm=True)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert [item["loc"] for item in ready.json()["detail"]] == [["broker"]], ready.json()
