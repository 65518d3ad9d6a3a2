"""Organization policies: CRUD with a new version on every update, a test bench, and app attachment.

An attached policy applies to every `llm.prompt` input and output of the app's runs (see
`governance.graph`); publishing pins the attached policies' versions on the app version.
`POST /v1/policies/{id}/test` evaluates a text here in the API process: it loads Presidio's
pattern recognizers and the small profanity model on first use, never any model weights.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from api.deps import Builder, PageDep, SessionDep
from api.schemas import PageOf, Read, VersionInPath, VersionNumber
from api.schemas import Request as RequestBody
from governance.rules import PolicyRules
from models import apps as app_store
from models import audit
from models import policies as store

router = APIRouter(tags=["policies"])
NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,99}$"


class PolicyCreate(RequestBody):
    """A new policy: a unique name and its rules (see the `governance.policy` block's config)."""

    name: str = Field(pattern=NAME, examples=["No PII to models"])
    description: str = Field(default="", max_length=5000)
    rules: PolicyRules = Field(examples=[{"pii": {"action": "redact"}, "injection": {"action": "block"}}])


class PolicyUpdate(RequestBody):
    """What to change; every update, even of the description alone, makes a new version."""

    name: str | None = Field(default=None, pattern=NAME)
    description: str | None = Field(default=None, max_length=5000)
    rules: PolicyRules | None = None


class PolicyRead(Read):
    """A policy with the rules of its latest version."""

    id: uuid.UUID
    name: str
    description: str
    version: int
    rules: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class PolicyVersionRead(Read):
    """One version of a policy's rules."""

    number: int
    rules: dict[str, Any]
    created_at: datetime
    created_by: str


class PolicyTest(RequestBody):
    """A text to evaluate, against the latest version unless `version` says otherwise."""

    text: str = Field(max_length=100_000)
    version: VersionNumber | None = None


class RuleOutcome(BaseModel):
    """What one configured rule concluded."""

    rule: str
    action: str
    fired: bool
    score: float


class PolicyTestResult(BaseModel):
    """The decision on the text: verdict, the text as it would pass on, and every finding."""

    policy_version: int
    verdict: str
    text: str | None = Field(description="The text after redactions; null when blocked.")
    findings: list[dict[str, Any]]
    rules: list[RuleOutcome]
    elapsed_ms: float


class AttachRequest(RequestBody):
    """The policies to attach to the app, in the order they apply (an empty list detaches all)."""

    policy_ids: list[uuid.UUID] = Field(max_length=20)


class AttachedPolicy(BaseModel):
    """A policy as an app applies it: attached now (latest version) or pinned on a published version."""

    policy_id: uuid.UUID | None
    name: str
    version: int


class AttachedList(BaseModel):
    """The policies of an app or of one of its versions, in order."""

    items: list[AttachedPolicy]


def _read(session: SessionDep, policy: store.Policy) -> PolicyRead:
    latest = store.get_version(session, policy=policy)
    return PolicyRead(id=policy.id, name=policy.name, description=policy.description,
                      version=policy.latest_version, rules=latest.rules, created_at=policy.created_at,
                      updated_at=policy.updated_at)


@router.post("/policies", response_model=PolicyRead, status_code=status.HTTP_201_CREATED)
def create_policy(body: PolicyCreate, principal: Builder, session: SessionDep) -> PolicyRead:
    """Create a policy at version 1; 409 if the name is taken, 422 naming a bad rule."""
    policy = store.create_policy(session, org_id=principal.org_id, name=body.name,
                                 description=body.description, rules=body.rules.model_dump(mode="json"),
                                 actor=principal.actor)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="policy.create",
                 target_type="policy", target_id=policy.id, details={"name": policy.name, "version": 1})
    return _read(session, policy)


@router.get("/policies", response_model=PageOf[PolicyRead])
def list_policies(principal: Builder, session: SessionDep, page: PageDep) -> PageOf[PolicyRead]:
    """The organization's policies, by name."""
    items, total = store.list_policies(session, org_id=principal.org_id, limit=page.limit, offset=page.offset)
    return PageOf[PolicyRead](items=[_read(session, p) for p in items], total=total, limit=page.limit,
                              offset=page.offset)


@router.get("/policies/{policy_id}", response_model=PolicyRead)
def get_policy(policy_id: uuid.UUID, principal: Builder, session: SessionDep) -> PolicyRead:
    """One policy with its latest rules."""
    return _read(session, store.get_policy(session, org_id=principal.org_id, policy_id=policy_id))


@router.patch("/policies/{policy_id}", response_model=PolicyRead)
def update_policy(policy_id: uuid.UUID, body: PolicyUpdate, principal: Builder, session: SessionDep
                  ) -> PolicyRead:
    """Change a policy: its next version. Apps pick it up in draft runs and at their next publish."""
    policy = store.get_policy(session, org_id=principal.org_id, policy_id=policy_id, lock=True)
    version = store.update_policy(session, policy=policy, name=body.name, description=body.description,
                                  rules=body.rules.model_dump(mode="json") if body.rules else None,
                                  actor=principal.actor)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="policy.update",
                 target_type="policy", target_id=policy.id, details={"version": version.number})
    return _read(session, policy)


@router.delete("/policies/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(policy_id: uuid.UUID, principal: Builder, session: SessionDep) -> Response:
    """Delete a policy that no app has attached (409 otherwise); published versions keep their copy."""
    policy = store.get_policy(session, org_id=principal.org_id, policy_id=policy_id, lock=True)
    store.delete_policy(session, policy=policy)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="policy.delete",
                 target_type="policy", target_id=policy_id, details={"name": policy.name})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/policies/{policy_id}/versions", response_model=list[PolicyVersionRead])
def list_versions(policy_id: uuid.UUID, principal: Builder, session: SessionDep
                  ) -> list[PolicyVersionRead]:
    """Every version of the policy, newest first."""
    policy = store.get_policy(session, org_id=principal.org_id, policy_id=policy_id)
    return [PolicyVersionRead.model_validate(v) for v in store.list_versions(session, policy=policy)]


@router.get("/policies/{policy_id}/versions/{number}", response_model=PolicyVersionRead)
def get_version(policy_id: uuid.UUID, number: VersionInPath, principal: Builder, session: SessionDep
                ) -> PolicyVersionRead:
    """One version of the policy."""
    policy = store.get_policy(session, org_id=principal.org_id, policy_id=policy_id)
    return PolicyVersionRead.model_validate(store.get_version(session, policy=policy, number=number))


@router.post("/policies/{policy_id}/test", response_model=PolicyTestResult)
def test_policy(policy_id: uuid.UUID, body: PolicyTest, principal: Builder, session: SessionDep
                ) -> PolicyTestResult:
    """Evaluate a text with the policy and return the decision, as a run would make it."""
    from governance.evaluate import evaluate  # loads the rules' models on first use only

    policy = store.get_policy(session, org_id=principal.org_id, policy_id=policy_id)
    version = store.get_version(session, policy=policy, number=body.version)
    rules = PolicyRules.model_validate(version.rules)
    started = time.perf_counter()
    decision = evaluate(rules, body.text)
    elapsed = (time.perf_counter() - started) * 1000
    return PolicyTestResult(
        policy_version=version.number, verdict=decision.verdict,
        text=None if decision.verdict == "block" else decision.text, findings=decision.findings,
        rules=[RuleOutcome(rule=r.rule, action=r.action, fired=r.fired, score=round(r.score, 4))
               for r in decision.results],
        elapsed_ms=round(elapsed, 3))


@router.get("/apps/{app_id}/policies", response_model=AttachedList)
def app_policies(app_id: uuid.UUID, principal: Builder, session: SessionDep) -> AttachedList:
    """The policies attached to the app now (what draft runs and the next publish apply)."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    return AttachedList(items=[AttachedPolicy(policy_id=p.id, name=p.name, version=p.latest_version)
                               for p in store.attached(session, app_id=app.id)])


@router.put("/apps/{app_id}/policies", response_model=AttachedList)
def attach_policies(app_id: uuid.UUID, body: AttachRequest, principal: Builder, session: SessionDep
                    ) -> AttachedList:
    """Attach these policies (the organization's own) to the app, replacing what was attached."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id, lock=True)
    policies = store.attach(session, app=app, policy_ids=body.policy_ids)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="app.policies",
                 target_type="app", target_id=app.id, details={"policies": [str(p.id) for p in policies]})
    return AttachedList(items=[AttachedPolicy(policy_id=p.id, name=p.name, version=p.latest_version)
                               for p in policies])


@router.get("/apps/{app_id}/versions/{number}/policies", response_model=AttachedList)
def version_policies(app_id: uuid.UUID, number: VersionInPath, principal: Builder, session: SessionDep
                     ) -> AttachedList:
    """The policy versions a published version was pinned to when it was published."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    version = app_store.get_version(session, app=app, number=number)
    return AttachedList(items=[AttachedPolicy(policy_id=p.policy_id, name=p.name, version=p.policy_version)
                               for p in store.pinned(session, version_id=version.id)])
