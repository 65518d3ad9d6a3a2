"""The draft graph, validation, publishing and versions of an app."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Header, status
from fastapi.responses import JSONResponse

from api.deps import Builder, LimitsDep, PageDep, RegistryDep, SessionDep
from api.routes.blocks import report, report_data
from api.schemas import (
    DraftRead,
    PageOf,
    PublishRequest,
    ValidationReport,
    VersionInPath,
    VersionRead,
    VersionSummary,
)
from builder.graph import Graph
from core.errors import GraphInvalid, InvalidRequest
from models import apps as app_store
from models import audit
from models import policies as policy_store
from models.apps import App
from worker.composition import pinned_graph

router = APIRouter(tags=["drafts and versions"])


def _draft(app: App, registry: RegistryDep, limits: LimitsDep, graph: Graph | None = None) -> JSONResponse:
    """The draft, its revision (also as the ETag) and its problems and ports, sent as built: the
    body is plain data already shaped as DraftRead, so it skips a second pydantic pass over a
    graph that may have hundreds of nodes (the builder saves it every few seconds)."""
    body = report_data(graph if graph is not None else Graph.model_validate(app.draft), registry,
                       replace(limits, app=(app.id, app.name)))
    body.update(graph=app.draft, revision=app.draft_revision)
    return JSONResponse(body, headers={"ETag": f'"{app.draft_revision}"'})


def _revision(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise InvalidRequest("If-Match must be a draft revision such as \"3\"",
                             loc=["header", "If-Match"]) from None


@router.get("/apps/{app_id}/draft", response_model=DraftRead)
def get_draft(app_id: uuid.UUID, principal: Builder, session: SessionDep, registry: RegistryDep,
              limits: LimitsDep) -> JSONResponse:
    """The draft graph with its revision, problems and each node's ports."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    return _draft(app, registry, limits)


@router.put("/apps/{app_id}/draft", response_model=DraftRead)
def put_draft(
    app_id: uuid.UUID, graph: Graph, principal: Builder, session: SessionDep, registry: RegistryDep,
    limits: LimitsDep,
    if_match: Annotated[str | None, Header(description="Refuse to save over another revision.")] = None,
) -> JSONResponse:
    """Save the draft; an invalid graph is saved too, and its problems are returned."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    app_store.save_draft(session, app=app, draft=graph.dump(), expected_revision=_revision(if_match))
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.draft.save",
                 target_type="app", target_id=app.id, details={"revision": app.draft_revision})
    return _draft(app, registry, limits, graph)


@router.post("/apps/{app_id}/validate", response_model=ValidationReport)
def validate_draft(app_id: uuid.UUID, principal: Builder, session: SessionDep,
                   registry: RegistryDep, limits: LimitsDep) -> ValidationReport:
    """Every problem of the saved draft at once."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    return report(Graph.model_validate(app.draft), registry, replace(limits, app=(app.id, app.name)))


@router.post("/apps/{app_id}/publish", response_model=VersionRead, status_code=status.HTTP_201_CREATED)
def publish(app_id: uuid.UUID, principal: Builder, session: SessionDep, registry: RegistryDep,
            limits: LimitsDep, body: PublishRequest | None = None) -> VersionRead:
    """Freeze the draft as the next numbered version, if it validates (422 with its problems if not)."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    limits = replace(limits, app=(app.id, app.name))
    result = report(Graph.model_validate(app.draft), registry, limits)
    if not result.valid:
        raise GraphInvalid([p.model_dump() for p in result.problems])
    # The version keeps the ports each app.call found its callee with (see blocks/app_call.py).
    graph = pinned_graph(app.draft, registry, limits)
    version = app_store.publish(session, app=app, graph=graph, note=(body.note if body else ""),
                                actor=principal.actor)
    policy_store.pin(session, version=version)  # the version keeps the policy versions of today
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.publish",
                 target_type="app", target_id=app.id,
                 details={"version": version.number, "draft_revision": app.draft_revision})
    return VersionRead.model_validate(version)


@router.get("/apps/{app_id}/versions", response_model=PageOf[VersionSummary])
def list_versions(app_id: uuid.UUID, principal: Builder, session: SessionDep, page: PageDep
                  ) -> PageOf[VersionSummary]:
    """The app's published versions, newest first."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    items, total = app_store.list_versions(session, app=app, limit=page.limit, offset=page.offset)
    return PageOf[VersionSummary](items=[VersionSummary.model_validate(v) for v in items],
                                  total=total, limit=page.limit, offset=page.offset)


@router.get("/apps/{app_id}/versions/{number}", response_model=VersionRead)
def get_version(app_id: uuid.UUID, number: VersionInPath, principal: Builder, session: SessionDep
                ) -> VersionRead:
    """One published version with its frozen graph."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    return VersionRead.model_validate(app_store.get_version(session, app=app, number=number))


@router.post("/apps/{app_id}/versions/{number}/restore", response_model=DraftRead)
def restore_version(app_id: uuid.UUID, number: VersionInPath, principal: Builder, session: SessionDep,
                    registry: RegistryDep, limits: LimitsDep) -> JSONResponse:
    """Copy a published version into the draft (the versions themselves never change)."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    version = app_store.get_version(session, app=app, number=number)
    app_store.save_draft(session, app=app, draft=version.graph)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.draft.restore",
                 target_type="app", target_id=app.id,
                 details={"version": number, "revision": app.draft_revision})
    return _draft(app, registry, limits)
