"""Model deployments: those in settings (read-only here) and an organization's own (admin keys).

An organization's deployment is loaded on demand and evicted when room is needed; only the
operator pins (preloads, never evicts) a model, in settings, since it takes every worker's memory.

`llm.prompt` names one of them; an app naming anything else has a validation problem. Whether a
deployment's weights are already on this machine is reported, never loaded: the API process
holds no model.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field, ValidationError

from api.deps import Admin, Builder, SessionDep, SettingsDep
from api.schemas import Request as RequestBody
from core.errors import Conflict, InvalidInputs
from core.settings import Settings
from inference.deployments import (
    Backend,
    Deployment,
    DType,
    check_api_source,
    configured,
    parse,
    parse_organization,
)
from models import audit
from models import deployments as store
from worker.inference.sources import PathRefused, is_ready, local_folder

router = APIRouter(tags=["models"])


class ModelRead(Deployment):
    """A deployment, where it is defined, and whether its weights are on this machine."""

    id: uuid.UUID | None = Field(default=None, description="Set for an organization's own deployment.")
    origin: Literal["settings", "organization"]
    available: bool = Field(description="The weights are local (GGUF sources convert on first use; a "
                                        "provider has none).")
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ModelList(BaseModel):
    """Every deployment the organization may use."""

    items: list[ModelRead]


class ModelUpdate(RequestBody):
    """Fields to change (the name stays)."""

    source: str | None = None
    revision: str | None = None
    backend: Backend | None = None
    dtype: DType | None = None
    device: str | None = None
    max_batch_size: int | None = None
    max_wait_ms: float | None = None
    max_context: int | None = None
    pinned: bool | None = None
    queue: str | None = None
    join_running: bool | None = None
    base_url: str | None = None
    provider_model: str | None = None
    credential: str | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    input_price: float | None = None
    output_price: float | None = None


def _read(deployment: Deployment, settings: Settings, row: store.ModelDeployment | None = None) -> ModelRead:
    weightless = deployment.kind in ("package", "provider")  # a provider holds no weights here
    try:
        folder = local_folder(deployment, settings) if not weightless else None
    except PathRefused:  # says nothing of what lies outside the models directory
        folder = None
    available = weightless or deployment.kind == "gguf" or (folder is not None and is_ready(folder))
    return ModelRead(**deployment.model_dump(), id=row.id if row else None,
                     origin="organization" if row else "settings", available=available,
                     created_at=row.created_at if row else None, updated_at=row.updated_at if row else None)


def _checked(spec: dict[str, Any]) -> Deployment:
    """The deployment `spec` describes, or a 422 naming each problem."""
    try:
        deployment = parse(spec)
    except ValidationError as exc:
        raise InvalidInputs([{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                             for e in exc.errors(include_url=False, include_input=False)]) from None
    problem = check_api_source(deployment)
    if problem:
        raise InvalidInputs([{"loc": ["body", "source"], "msg": problem, "type": "value_error"}])
    if deployment.pinned:  # a pinned model stays loaded in every inference worker, for everyone
        raise InvalidInputs([{"loc": ["body", "pinned"], "type": "operator_setting",
                              "msg": "pinning is the operator's setting (MANTLE_MODEL_DEPLOYMENTS): a pinned "
                                     "model is preloaded by every inference worker and never evicted"}])
    return deployment


def _not_settings(name: str, settings: Settings) -> None:
    if name in configured(settings):
        raise Conflict(f"{name!r} is defined in the server's settings; choose another name or change it "
                       "there", loc=["name"])


@router.get("/models", response_model=ModelList)
def list_models(principal: Builder, session: SessionDep, settings: SettingsDep) -> ModelList:
    """Deployments from settings, then the organization's own."""
    items = [_read(d, settings) for d in configured(settings).values()]
    for row in store.list_deployments(session, org_id=principal.org_id):
        with contextlib.suppress(ValueError):  # stored before a rule refused it: GET says why
            items.append(_read(parse_organization(row.spec), settings, row))
    return ModelList(items=items)


@router.get("/models/{name}", response_model=ModelRead)
def get_model(name: str, principal: Builder, session: SessionDep, settings: SettingsDep) -> ModelRead:
    """One deployment by name."""
    found = configured(settings).get(name)
    if found is not None:
        return _read(found, settings)
    row = store.get_deployment(session, org_id=principal.org_id, name=name)
    try:
        return _read(parse_organization(row.spec), settings, row)
    except ValueError as exc:
        raise Conflict(f"the stored deployment {name!r} is refused ({exc}); change or delete it",
                       loc=["path", "name"]) from None


@router.post("/models", response_model=ModelRead, status_code=status.HTTP_201_CREATED)
def create_model(body: Deployment, principal: Admin, session: SessionDep, settings: SettingsDep) -> ModelRead:
    """Define a deployment for the organization: a hub id, or a folder under the models directory."""
    deployment = _checked(body.model_dump())
    _not_settings(deployment.name, settings)
    spec = deployment.model_dump(mode="json")
    row = store.create_deployment(session, org_id=principal.org_id, spec=spec)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="model.create",
                 target_type="model_deployment", target_id=row.id, details=spec)
    return _read(deployment, settings, row)


@router.patch("/models/{name}", response_model=ModelRead)
def update_model(name: str, body: ModelUpdate, principal: Admin, session: SessionDep,
                 settings: SettingsDep) -> ModelRead:
    """Change an organization's deployment (running workers pick it up for their next load)."""
    _not_settings(name, settings)
    row = store.get_deployment(session, org_id=principal.org_id, name=name)
    deployment = _checked({**row.spec, **body.model_dump(exclude_unset=True)})
    row.spec = deployment.model_dump(mode="json")
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="model.update",
                 target_type="model_deployment", target_id=row.id,
                 details=body.model_dump(exclude_unset=True))
    session.flush()
    return _read(deployment, settings, row)


@router.delete("/models/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model(name: str, principal: Admin, session: SessionDep, settings: SettingsDep) -> Response:
    """Forget an organization's deployment (apps naming it fail validation from then on)."""
    _not_settings(name, settings)
    row = store.get_deployment(session, org_id=principal.org_id, name=name)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="model.delete",
                 target_type="model_deployment", target_id=row.id, details={"name": name})
    session.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
