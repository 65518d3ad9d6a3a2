"""An app's schedule: read it (published and draft, with the next run), set it in the draft, stop it.

The schedule is the `trigger.schedule` node's config, so it lives in the graph like any other
setting: `PUT` writes it into the draft's trigger and it takes effect when the draft is
published. `DELETE` stops the published schedule at once, until the next publish (publishing a
version starts its schedule, as the scheduler reads each new version). The times come from the
scheduler's own row (`models/schedules.py`) once it has read the version, and are computed the
way it computes them before then.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import IntegrityError

from api.deps import Builder, RegistryDep, SessionDep
from api.schemas import Request as RequestBody
from blocks.registry import Registry, UnknownBlockType
from blocks.trigger_schedule import ScheduleConfig, ScheduleTriggerBlock, next_tick
from core.errors import Conflict, InvalidInputs
from models import apps as app_store
from models import audit
from models.apps import App
from models.base import utcnow
from models.schedules import AppSchedule, for_app
from worker.submit import Submitter

router = APIRouter(tags=["schedules"])
SCHEDULE = ScheduleTriggerBlock.type


class ScheduleSet(RequestBody):
    """The schedule to write into the draft's `trigger.schedule` node."""

    cron: str = Field(max_length=200, examples=["0 9 * * 1-5"],
                      description="minute hour day-of-month month day-of-week, or @hourly, @daily, …")
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Paris"],
                          description="IANA time zone the expression is read in.")


class PublishedSchedule(BaseModel):
    """The schedule of the latest published version, and what the scheduler did with it."""

    version: int
    cron: str
    timezone: str
    active: bool = Field(description="False once stopped (DELETE); the next publish starts it again.")
    next_at: datetime | None = Field(description="The next run (UTC); null while stopped.")
    last_tick_at: datetime | None
    last_run_id: uuid.UUID | None


class DraftSchedule(BaseModel):
    """The schedule in the draft's trigger: what the next publish will run on."""

    node_id: str
    cron: str
    timezone: str
    next_at: datetime | None = Field(description="When it would run next if published now; null if invalid.")


class ScheduleRead(BaseModel):
    """An app's schedule, published and in the draft."""

    published: PublishedSchedule | None = Field(description="Null unless the latest version starts with "
                                                            "trigger.schedule.")
    draft: DraftSchedule | None = Field(description="Null unless the draft has a trigger.schedule node.")
    draft_trigger: str | None = Field(description="The block type of the draft's trigger, if it has one.")


def _triggers(draft: dict[str, Any], registry: Registry) -> list[dict[str, Any]]:
    found = []
    for node in draft.get("nodes", []):
        try:
            if registry.get(str(node.get("type"))).trigger:
                found.append(node)
        except UnknownBlockType:
            continue
    return found


def _draft_schedule(app: App, registry: Registry) -> tuple[DraftSchedule | None, str | None]:
    triggers = _triggers(app.draft, registry)
    node = next((n for n in triggers if n.get("type") == SCHEDULE), None)
    if node is None:
        return None, str(triggers[0]["type"]) if triggers else None
    config = node.get("config") or {}
    cron, timezone = str(config.get("cron", "0 * * * *")), str(config.get("timezone", "UTC"))
    try:
        next_at: datetime | None = next_tick(cron, timezone, utcnow())
    except Exception:  # an invalid draft: validation names the problem, here there is no next run
        next_at = None
    return DraftSchedule(node_id=str(node["id"]), cron=cron, timezone=timezone, next_at=next_at), SCHEDULE


def _published_config(request: Request, session: SessionDep, app: App) -> ScheduleConfig | None:
    """The latest version's schedule, read from its analysis as the scheduler reads the graph."""
    if app.latest_version == 0:
        return None
    version = app_store.get_version(session, app=app)
    submitter: Submitter = request.app.state.submitter
    analysis = submitter.analyses.get(version.id, lambda: version.graph)
    block = analysis.blocks.get(analysis.trigger or "")
    return block.config if isinstance(block, ScheduleTriggerBlock) else None


def _published(request: Request, session: SessionDep, app: App) -> PublishedSchedule | None:
    config = _published_config(request, session, app)
    if config is None:
        return None
    row = for_app(session, org_id=app.org_id, app_id=app.id)
    last = {"last_tick_at": row.last_tick_at, "last_run_id": row.last_run_id} if row else {
        "last_tick_at": None, "last_run_id": None}
    if row is not None and row.version_number == app.latest_version:
        return PublishedSchedule(version=app.latest_version, cron=config.cron, timezone=config.timezone,
                                 active=row.cron is not None, next_at=row.next_at, **last)
    # Not read by the scheduler yet: it will set the next tick after now, as computed here.
    return PublishedSchedule(version=app.latest_version, cron=config.cron, timezone=config.timezone,
                             active=True, next_at=next_tick(config.cron, config.timezone, utcnow()), **last)


def _read(request: Request, session: SessionDep, app: App) -> ScheduleRead:
    draft, trigger = _draft_schedule(app, request.app.state.registry)
    return ScheduleRead(published=_published(request, session, app), draft=draft, draft_trigger=trigger)


def _checked(body: ScheduleSet) -> ScheduleConfig:
    """The block's own config model checks the schedule (one rule); errors point at the body's fields."""
    try:
        return ScheduleConfig.model_validate(body.model_dump())
    except ValidationError as exc:
        raise InvalidInputs([{"loc": ["body", *(e["loc"] or ("cron",))], "type": "invalid",
                              "msg": str(e["msg"]).removeprefix("Value error, ")}
                             for e in exc.errors()]) from None


@router.get("/apps/{app_id}/schedule", response_model=ScheduleRead)
def get_schedule(app_id: uuid.UUID, request: Request, principal: Builder,
                 session: SessionDep) -> ScheduleRead:
    """The app's schedule: the published one with its next and last run, and the draft's."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    return _read(request, session, app)


@router.put("/apps/{app_id}/schedule", response_model=ScheduleRead)
def set_schedule(app_id: uuid.UUID, body: ScheduleSet, request: Request, principal: Builder,
                 session: SessionDep, registry: RegistryDep) -> ScheduleRead:
    """Write the schedule into the draft's trigger (added if the draft has no trigger); publish to apply.

    409 when the draft starts with another trigger: replacing it is an edit of the graph.
    """
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    config = _checked(body)
    draft = dict(app.draft)
    nodes = [dict(n) for n in draft.get("nodes", [])]
    triggers = _triggers({"nodes": nodes}, registry)
    node = next((n for n in triggers if n.get("type") == SCHEDULE), None)
    if node is None and triggers:
        raise Conflict(f"the draft starts with {triggers[0]['type']}; replace it with {SCHEDULE} in the "
                       "editor to run the app on a schedule", loc=["body"])
    if node is None:
        taken = {str(n.get("id")) for n in nodes}
        node_id, k = "schedule", 1
        while node_id in taken:
            k += 1
            node_id = f"schedule_{k}"
        node = {"id": node_id, "type": SCHEDULE, "position": {"x": 0, "y": 0}}
        nodes.append(node)
    node["config"] = config.model_dump()
    draft["nodes"] = nodes
    app_store.save_draft(session, app=app, draft=draft)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.schedule.set",
                 target_type="app", target_id=app.id,
                 details={"cron": config.cron, "timezone": config.timezone, "revision": app.draft_revision})
    return _read(request, session, app)


@router.delete("/apps/{app_id}/schedule", response_model=ScheduleRead)
def stop_schedule(app_id: uuid.UUID, request: Request, principal: Builder,
                  session: SessionDep) -> ScheduleRead:
    """Stop the published schedule now (no more runs until a version is published again)."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    if app.latest_version == 0:
        raise Conflict("the app has no published version, so nothing is scheduled", loc=["app_id"])
    if _published_config(request, session, app) is None:
        raise Conflict(f"the published version does not start with {SCHEDULE}", loc=["app_id"])
    try:
        with session.begin_nested():  # the scheduler may record the app at this moment
            _stop(session, app)
    except IntegrityError:
        _stop(session, app)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.schedule.stop",
                 target_type="app", target_id=app.id, details={"version": app.latest_version})
    return _read(request, session, app)


def _stop(session: SessionDep, app: App) -> None:
    # The row is the scheduler's own lock (see models/schedules.py): a row of this version with no
    # cron is one it neither fires nor reads again.
    row = session.get(AppSchedule, app.id, with_for_update=True)
    if row is None:
        row = AppSchedule(app_id=app.id, org_id=app.org_id, version_number=app.latest_version)
        session.add(row)
    row.version_number = app.latest_version
    row.cron = row.timezone = row.next_at = None
    session.flush()
