"""Apps: create, list, read, update, delete; export and import."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.deps import Builder, CurrentKey, LimitsDep, Page, PageDep, RegistryDep, SessionDep
from api.routes.blocks import report
from api.schemas import AppCreate, AppRead, AppSummary, AppUpdate, ExportDocument, PageOf
from builder.graph import Graph
from core.errors import GraphInvalid
from models import apps as app_store
from models import audit

router = APIRouter(tags=["apps"])


@router.get("/apps", response_model=PageOf[AppSummary])
async def list_apps(
    request: Request, principal: CurrentKey, page: PageDep,
    q: Annotated[str | None, Query(max_length=200, description="Filter by name.")] = None,
) -> PageOf[AppSummary]:
    """The organization's apps, most recently changed first."""
    # A hot route: its session lives in one trip through the threadpool, not one per dependency,
    # and reads through the read-only sessions (one round trip on PostgreSQL, see `session_factory`).
    return await run_in_threadpool(_list_apps, request.app.state.read_sessions, principal.org_id, page, q)


def _list_apps(sessions: sessionmaker[Session], org_id: uuid.UUID, page: Page, q: str | None
               ) -> PageOf[AppSummary]:
    with sessions() as session:
        items, total = app_store.list_apps(session, org_id=org_id, limit=page.limit, offset=page.offset, q=q)
        return PageOf[AppSummary](items=[AppSummary.model_validate(a) for a in items], total=total,
                                  limit=page.limit, offset=page.offset)


@router.post("/apps", response_model=AppRead, status_code=status.HTTP_201_CREATED)
def create_app(body: AppCreate, principal: Builder, session: SessionDep) -> AppRead:
    """Create an app; its draft may be given now or saved later."""
    draft = (body.graph or Graph()).dump()
    app = app_store.create_app(session, org_id=principal.org_id, name=body.name,
                               description=body.description, draft=draft)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.create",
                 target_type="app", target_id=app.id, details={"name": app.name})
    return AppRead.model_validate(app)


@router.get("/apps/{app_id}", response_model=AppRead)
def get_app(app_id: uuid.UUID, principal: Builder, session: SessionDep) -> AppRead:
    """One app with its draft and versions."""
    return AppRead.model_validate(app_store.get_app(session, org_id=principal.org_id, app_id=app_id))


@router.patch("/apps/{app_id}", response_model=AppRead)
def update_app(app_id: uuid.UUID, body: AppUpdate, principal: Builder, session: SessionDep) -> AppRead:
    """Change an app's name or description, or offer it as an MCP tool (`tool`, `tool_name`,
    `tool_description`); 409 when another app of the organization has that tool name."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    before = {k: getattr(app, k) for k in changes}
    for key in ("name", "description"):
        if key in changes:
            setattr(app, key, changes[key])
    app_store.set_tool(session, app=app, tool=body.tool, name=body.tool_name,
                       description=body.tool_description)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.update",
                 target_type="app", target_id=app.id, details={"before": before, "after": changes})
    session.flush()
    return AppRead.model_validate(app)


@router.delete("/apps/{app_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_app(app_id: uuid.UUID, principal: Builder, session: SessionDep) -> Response:
    """Delete an app and its versions (the audit log keeps the record)."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.delete",
                 target_type="app", target_id=app.id,
                 details={"name": app.name, "versions": app.latest_version})
    session.delete(app)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# exclude_unset: the graphs come out as saved, without defaults, so an import gives equal graphs.
@router.get("/apps/{app_id}/export", response_model=ExportDocument, response_model_exclude_unset=True)
def export_app(app_id: uuid.UUID, principal: Builder, session: SessionDep) -> ExportDocument:
    """The app as one JSON document: draft and every published version."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    return ExportDocument.model_validate({
        "format": "mantle.app", "format_version": 1,
        "name": app.name, "description": app.description, "draft": app.draft,
        "versions": [{"number": v.number, "note": v.note, "graph": v.graph} for v in app.versions],
    })


@router.post("/apps/import", response_model=AppRead, status_code=status.HTTP_201_CREATED)
def import_app(body: ExportDocument, principal: Builder, session: SessionDep,
               registry: RegistryDep, limits: LimitsDep) -> AppRead:
    """Create an app from an export; every version must validate (the draft may not)."""
    problems = []
    for version in sorted(body.versions, key=lambda v: v.number):
        found = report(version.graph, registry, limits).problems
        problems += [{**p.model_dump(), "message": f"version {version.number}: {p.message}"}
                     for p in found]
    if problems:
        raise GraphInvalid(problems)
    app = app_store.create_app(session, org_id=principal.org_id, name=body.name,
                               description=body.description, draft=body.draft.dump())
    for version in sorted(body.versions, key=lambda v: v.number):
        app_store.publish(session, app=app, graph=version.graph.dump(), note=version.note,
                          actor=principal.actor)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.import",
                 target_type="app", target_id=app.id, details={"versions": len(body.versions)})
    session.refresh(app)
    return AppRead.model_validate(app)
