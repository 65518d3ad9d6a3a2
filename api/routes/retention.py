"""Run retention: how long the organization keeps runs (admins), and an app's own setting (builders).

`keep_days` and/or `keep_runs`; unset (null) means no limit of that kind, both unset keeps forever
(the default). An app's setting replaces its organization's (`DELETE` makes it follow the
organization again). The scheduler prunes in the background (worker/retention.py); a pruned run
then answers 410 with when and by which policy. What is pruned and what is kept is described in
models/retention.py and the README's "Retention".
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import Admin, Builder, SessionDep
from api.schemas import Request as RequestBody
from models import apps as app_store
from models import audit
from models import retention as store

router = APIRouter(tags=["retention"])


class RetentionUpdate(RequestBody):
    """What to keep; a run goes when either limit says so (both null: keep forever)."""

    keep_days: int | None = Field(default=None, ge=1, le=store.MAX_KEEP_DAYS, description=(
        "Keep runs that ended within this many days; older ones are deleted. Null: no age limit."))
    keep_runs: int | None = Field(default=None, ge=1, le=store.MAX_KEEP_RUNS, description=(
        "Keep each app's last this many runs; older ones are deleted. Null: no count limit."))

    def policy(self) -> store.Policy:
        """The stored form."""
        return store.Policy(self.keep_days, self.keep_runs)


class OrgRetentionRead(BaseModel):
    """The organization's retention policy."""

    keep_days: int | None
    keep_runs: int | None
    description: str = Field(description="The policy in words (`keep 30 days`, `keep forever`).")


class AppRetentionRead(OrgRetentionRead):
    """The policy an app's runs follow, and whose it is."""

    app_id: uuid.UUID
    source: Literal["app", "organization"] = Field(description=(
        "`app`: the app's own setting; `organization`: it follows the organization's."))


def _org_read(policy: store.Policy | None) -> OrgRetentionRead:
    policy = policy or store.Policy()
    return OrgRetentionRead(keep_days=policy.keep_days, keep_runs=policy.keep_runs,
                            description=policy.describe())


def _app_read(session: SessionDep, org_id: uuid.UUID, app_id: uuid.UUID) -> AppRetentionRead:
    own = store.get_app_policy(session, org_id=org_id, app_id=app_id)
    policy = store.effective_policy(store.get_org_policy(session, org_id=org_id), own)
    return AppRetentionRead(app_id=app_id, keep_days=policy.keep_days, keep_runs=policy.keep_runs,
                            description=policy.describe(), source="organization" if own is None else "app")


@router.get("/org/retention", response_model=OrgRetentionRead)
def get_org_retention(principal: Admin, session: SessionDep) -> OrgRetentionRead:
    """How long the organization keeps its runs (admins)."""
    return _org_read(store.get_org_policy(session, org_id=principal.org_id))


@router.put("/org/retention", response_model=OrgRetentionRead)
def put_org_retention(body: RetentionUpdate, principal: Admin, session: SessionDep) -> OrgRetentionRead:
    """Set how long the organization keeps its runs (admins); apps with their own setting keep theirs."""
    policy = store.set_org_policy(session, org_id=principal.org_id, policy=body.policy())
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="retention.update",
                 target_type="organization", target_id=principal.org_id, details=body.model_dump(mode="json"))
    return _org_read(policy)


@router.get("/apps/{app_id}/retention", response_model=AppRetentionRead)
def get_app_retention(app_id: uuid.UUID, principal: Builder, session: SessionDep) -> AppRetentionRead:
    """The policy the app's runs follow: its own, or its organization's."""
    app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    return _app_read(session, principal.org_id, app_id)


@router.put("/apps/{app_id}/retention", response_model=AppRetentionRead)
def put_app_retention(app_id: uuid.UUID, body: RetentionUpdate, principal: Builder,
                      session: SessionDep) -> AppRetentionRead:
    """Give the app its own policy, replacing the organization's for its runs (both null: keep forever)."""
    app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    store.set_app_policy(session, org_id=principal.org_id, app_id=app_id, policy=body.policy())
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="retention.update",
                 target_type="app", target_id=app_id, details=body.model_dump(mode="json"))
    return _app_read(session, principal.org_id, app_id)


@router.delete("/apps/{app_id}/retention", response_model=AppRetentionRead, status_code=status.HTTP_200_OK)
def delete_app_retention(app_id: uuid.UUID, principal: Builder, session: SessionDep) -> AppRetentionRead:
    """Drop the app's own policy: its runs follow the organization's again."""
    app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    store.set_app_policy(session, org_id=principal.org_id, app_id=app_id, policy=None)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="retention.reset",
                 target_type="app", target_id=app_id, details={})
    return _app_read(session, principal.org_id, app_id)
