"""`/v1/models`: the deployments an organization may use, its own defined by admins; and apps naming
a model nobody deployed fail validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from models.orgs import Role
from tests.conftest import Tenant, make_tenant


def prompt_graph(model: str) -> dict[str, Any]:
    return {
        "nodes": [{"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "q"}]}},
                  {"id": "gen", "type": "llm.prompt", "config": {"model": model, "template": "{{ q }}"}},
                  {"id": "out", "type": "output"}],
        "edges": [{"source": "in", "source_port": "q", "target": "gen", "target_port": "q"},
                  {"source": "gen", "source_port": "text", "target": "out", "target_port": "text"}],
    }


def test_the_shipped_deployments_are_listed(tenant: Tenant) -> None:
    listed = tenant.client.get("/v1/models")
    assert listed.status_code == 200, listed.text
    items = {m["name"]: m for m in listed.json()["items"]}
    assert items["smollm2-135m-instruct"]["backend"] == "hf" and items["smollm2-135m-instruct"]["pinned"]
    gptj = items["gpt-j-6b"]
    assert [gptj[k] for k in ("backend", "dtype", "device", "origin")] == ["deepspeed", "float16", "cuda",
                                                                            "settings"]
    assert tenant.client.get("/v1/models/gpt-j-6b").json()["source"] == "hf://EleutherAI/gpt-j-6b"


def test_admins_define_update_and_delete_their_own_deployments(
        tenant: Tenant, other_tenant: Tenant, sessions: sessionmaker[Session]) -> None:
    spec = {"name": "mistral-7b", "source": "hf://mistralai/Mistral-7B-Instruct-v0.3", "dtype": "bfloat16",
            "device": "cuda", "max_batch_size": 24}
    created = tenant.client.post("/v1/models", json=spec)
    assert created.status_code == 201, created.text
    assert created.json()["origin"] == "organization" and created.json()["available"] is False
    assert "mistral-7b" in [m["name"] for m in tenant.client.get("/v1/models").json()["items"]]
    assert tenant.client.post("/v1/models", json=spec).status_code == 409
    changed = tenant.client.patch("/v1/models/mistral-7b", json={"max_wait_ms": 2})
    assert changed.status_code == 200 and changed.json()["max_wait_ms"] == 2
    assert changed.json()["max_batch_size"] == 24 and changed.json()["pinned"] is False

    assert other_tenant.client.get("/v1/models/mistral-7b").status_code == 404
    builder = make_tenant(sessions, tenant.client, "acme-builders", role=Role.builder)
    assert builder.client.post("/v1/models", json={**spec, "name": "x"}).status_code == 403
    log = tenant.client.get("/v1/audit", params={"target_id": created.json()["id"]}).json()["items"]
    assert {"model.create", "model.update"} <= {entry["action"] for entry in log}
    assert tenant.client.delete("/v1/models/mistral-7b").status_code == 204
    assert tenant.client.get("/v1/models/mistral-7b").status_code == 404


def test_bad_deployments_are_refused_with_the_problem_named(tenant: Tenant) -> None:
    cases = [
        ({"name": "a", "source": "/etc/models"}, "source"),
        ({"name": "a", "source": "../elsewhere"}, "source"),
        ({"name": "a", "source": "x", "backend": "vllm"}, "backend"),
        ({"name": "Bad Name", "source": "x"}, "name"),
        ({"name": "a", "source": "x", "max_batch_size": 0}, "max_batch_size"),
    ]
    for body, field in cases:
        response = tenant.client.post("/v1/models", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in str(response.json()["detail"][0]["loc"]), response.json()
    taken = tenant.client.post("/v1/models", json={"name": "gpt-j-6b", "source": "x"})
    assert taken.status_code == 409 and "settings" in taken.json()["detail"][0]["msg"]
    assert tenant.client.patch("/v1/models/gpt-j-6b", json={"pinned": True}).status_code == 409


def test_an_app_naming_an_unknown_model_cannot_be_published(tenant: Tenant) -> None:
    created = tenant.client.post("/v1/apps", json={"name": "asks", "graph": prompt_graph("my-llm")})
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    problems = tenant.client.post(f"/v1/apps/{app_id}/validate").json()["problems"]
    assert [(p["node_id"], p["code"]) for p in problems] == [("gen", "invalid_config")]
    assert "unknown model deployment 'my-llm'" in problems[0]["message"]
    assert tenant.client.post(f"/v1/apps/{app_id}/publish").status_code == 422

    assert tenant.client.post("/v1/models", json={"name": "my-llm", "source": "my-llm"}).status_code == 201
    assert tenant.client.post(f"/v1/apps/{app_id}/validate").json()["problems"] == []
    assert tenant.client.post(f"/v1/apps/{app_id}/publish").status_code == 201


def test_the_api_and_run_workers_never_import_a_model_runtime() -> None:
    code = ("import sys, api.main, worker.tasks, worker.inference.tasks; api.main.create_app(); "
            "print(sorted(m for m in ('torch', 'transformers', 'deepspeed') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           cwd=Path(__file__).resolve().parents[2],
                           env={**os.environ, "MANTLE_DATABASE_URL": "sqlite://"})
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"
