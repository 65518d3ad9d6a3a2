"""No deployment signs with a key anyone can read: without MANTLE_SECRET_KEY (or with the shipped
placeholder) a random key is made in the data folder on first start, the same for every process
sharing it; a run token forged with the placeholder opens nothing."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.public.tokens import Tokens
from core.crypto import cipher_for, decrypt, encrypt
from core.settings import SECRET_KEY_FILE, Settings
from tests.conftest import Tenant
from tests.webapps import publish, share, webapp_graph

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The API's settings as a fresh local install has them: no secret key set."""
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://", twilio_verify_numbers=False)


def test_an_unset_or_placeholder_key_is_a_random_one_kept_in_the_data_folder(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "a")
    again = Settings(data_dir=tmp_path / "a", secret_key="change-me")
    elsewhere = Settings(data_dir=tmp_path / "b", secret_key="")
    key_file = tmp_path / "a" / SECRET_KEY_FILE
    assert first.secret_key == again.secret_key == key_file.read_text().strip()
    assert len(first.secret_key) >= 32 and first.secret_key not in ("change-me", "")
    assert elsewhere.secret_key != first.secret_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # What the placeholder encrypted before the key existed stays readable; new data uses the new key.
    installed_before = Settings(data_dir=tmp_path / "c", secret_key="x" * 32).model_copy(
        update={"secret_key": "change-me"})  # an install whose key was the placeholder itself
    stored = encrypt(cipher_for(installed_before), "token")
    assert decrypt(cipher_for(again), stored) == "token"
    assert Settings(data_dir=tmp_path / "a", secret_key="a real secret of my own").secret_key \
        == "a real secret of my own"


def test_production_refuses_an_unset_or_placeholder_key(tmp_path: Path) -> None:
    for placeholder in ("", "change-me", "secret"):
        with pytest.raises(ValidationError, match="MANTLE_SECRET_KEY must be set"):
            Settings(env="production", data_dir=tmp_path, secret_key=placeholder)
    assert not (tmp_path / SECRET_KEY_FILE).exists()


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from core.settings import Settings; "
            "print(Settings(data_dir=Path(sys.argv[1]), secret_key='').secret_key)")
    starts = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "data")], cwd=REPO,
                               stdout=subprocess.PIPE, text=True, env={"PATH": "", "PYTHONPATH": str(REPO)})
              for _ in range(6)]
    keys = {process.communicate(timeout=60)[0].strip() for process in starts}
    assert len(keys) == 1 and "" not in keys
    assert keys == {(tmp_path / "data" / SECRET_KEY_FILE).read_text().strip()}
    assert [p.name for p in (tmp_path / "data").iterdir()] == [SECRET_KEY_FILE]  # no drafts left behind


def test_a_run_token_forged_with_the_placeholder_opens_nothing(api: TestClient, tenant: Tenant) -> None:
    slug = share(tenant.client, publish(tenant.client, webapp_graph()))["slug"]
    started = api.post(f"/s/{slug}/runs", json={"inputs": {"name": "Ada"}})
    assert started.status_code == 202, started.text
    run_id, genuine = started.json()["run_id"], started.json()["token"]
    assert api.get(f"/s/{slug}/runs/{run_id}", params={"token": genuine}).status_code == 200
    share_id = Tokens(api.app.state.settings.secret_key).run.unsign(genuine)["s"]  # type: ignore[attr-defined,index]
    for placeholder in ("change-me", "changeme", "secret", ""):
        forged = Tokens(placeholder).run.sign({"s": share_id, "r": run_id})
        assert api.get(f"/s/{slug}/runs/{run_id}", params={"token": forged}).status_code == 404
