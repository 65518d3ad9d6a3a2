"""`mantle users create` and `mantle users reset-password`: the first admin and recovery, by link."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from api.main import create_app
from cli.main import main
from core.settings import Settings, get_settings
from models.db import session_scope
from models.orgs import create_org
from tests.people import PASSWORD, browser, token_of


@pytest.fixture
def mantle(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The command line, on the session's migrated database (its writes are committed)."""
    monkeypatch.setenv("MANTLE_DATABASE_URL", database_url)
    monkeypatch.setenv("MANTLE_PUBLIC_BASE_URL", "https://mantle.example")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def org_name(engine: Engine) -> str:
    """A new organization's name (the database is shared by the session's tests: names differ)."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    with session_scope(sessionmaker(bind=engine)) as session:
        create_org(session, name=name)
    return name


def served(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    """The API on the same database."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("api"), database_url="sqlite://", secret_key="t")
    return TestClient(create_app(settings, sessions=sessionmaker(bind=engine, expire_on_commit=False)),
                      raise_server_exceptions=False)


def run(mantle: CliRunner, *args: str, given: str | None = None) -> Result:
    """`mantle ARGS`, with `given` typed at its prompts."""
    return mantle.invoke(main, list(args), input=given)


def test_a_created_account_chooses_its_password_through_the_printed_link(
        mantle: CliRunner, org_name: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> None:
    email = f"root-{uuid.uuid4().hex[:6]}@example.com"
    made = run(mantle, "users", "create", email, "--org", org_name, "--role", "admin")
    assert made.exit_code == 0, made.output
    link = made.stdout.strip().splitlines()[-1]
    assert link.startswith("https://mantle.example/builder/reset-password?token=")
    api = served(engine, tmp_path_factory)
    client = browser(api)
    assert client.get(urlsplit(link).path.replace("/builder/reset-password", "/v1/password-reset"),
                      params={"token": token_of(link)}).json()["email"] == email
    done = client.post("/v1/password-reset", json={"token": token_of(link), "password": PASSWORD})
    assert done.status_code == 201 and done.json()["role"] == "admin" and done.json()["org_name"] == org_name
    signed = browser(api).post("/v1/session", json={"email": email, "password": PASSWORD})
    assert signed.status_code == 201
    again = run(mantle, "users", "create", email, "--org", org_name)
    assert again.exit_code != 0 and "already a member" in again.output


def test_a_typed_password_follows_the_rules(mantle: CliRunner, org_name: str, engine: Engine,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    email = f"typed-{uuid.uuid4().hex[:6]}@example.com"
    weak = run(mantle, "users", "create", email, "--org", org_name, "--password",
               given="password123\npassword123\n")
    assert weak.exit_code != 0 and "commonly used" in weak.output
    good = run(mantle, "users", "create", email, "--org", org_name, "--role", "reviewer", "--password",
               given=f"{PASSWORD}\n{PASSWORD}\n")
    assert good.exit_code == 0, good.output
    assert "token=" not in good.stdout
    api = served(engine, tmp_path_factory)
    answer = browser(api).post("/v1/session", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201 and answer.json()["role"] == "reviewer"


def test_reset_password_prints_a_one_time_link(mantle: CliRunner, org_name: str, engine: Engine,
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    email = f"lost-{uuid.uuid4().hex[:6]}@example.com"
    assert run(mantle, "users", "create", email, "--org", org_name, "--password",
               given=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    reset = run(mantle, "users", "reset-password", email.upper())
    assert reset.exit_code == 0, reset.output
    token = token_of(reset.stdout.strip().splitlines()[-1])
    api = served(engine, tmp_path_factory)
    client = browser(api)
    for password, status in (("new-lantern-77", 201), ("new-lantern-78", 404)):
        answer = client.post("/v1/password-reset", json={"token": token, "password": password})
        assert answer.status_code == status
    signed = browser(api).post("/v1/session", json={"email": email, "password": "new-lantern-77"})
    assert signed.status_code == 201
    unknown = run(mantle, "users", "reset-password", "nobody@example.com")
    assert unknown.exit_code != 0 and "no account" in unknown.output
