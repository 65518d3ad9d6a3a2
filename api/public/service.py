"""What the public pages know about a share: the app behind it, its form, its limits, its runs.

Everything a visitor can learn goes through `resolve` (which link, which app, which form) and
`public_view` (what a run did, without its trace); nothing here reads across organizations.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from blocks.fields import FieldSpec
from blocks.output import OutputBlock
from blocks.trigger_api import ApiTriggerBlock
from blocks.webapp_input import FormField, WebAppInputBlock
from builder.analysis_cache import AnalysisCache
from builder.validation import Analysis
from core.errors import Gone, NotFound, RateLimited
from models import apps as app_store
from models.apps import App, AppVersion
from models.runs import NodeRun, NodeRunValues, Run, node_runs
from models.shares import Limit, Share, count_usage, find_by_slug, over_limit
from worker.direct import recorded_nodes

SLUG = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
TRIGGER = "webapp"
ENDED = ("succeeded", "failed", "blocked", "cancelled")
FAILED_MESSAGE = "Something went wrong while running this app. Please try again in a moment."
BLOCKED_MESSAGE = "This request was declined by the app's policy."
CANCELLED_MESSAGE = "This run was cancelled."
_API_KINDS = {"string": "text", "number": "number", "integer": "number", "boolean": "checkbox"}


@dataclass(frozen=True)
class Shared:
    """A live share and what its page shows: the app, the version it runs, its form and outputs."""

    share: Share
    app: App
    version: AppVersion
    fields: list[FormField]
    submit_label: str
    outputs: list[dict[str, str]]
    total_nodes: int


def form_of(analysis: Analysis) -> tuple[list[FormField], str] | None:
    """The form a version's trigger asks for, or None when a web page cannot start it."""
    block = analysis.blocks.get(analysis.trigger or "")
    if isinstance(block, WebAppInputBlock):
        return list(block.config.fields), block.config.submit_label
    if isinstance(block, ApiTriggerBlock):
        try:
            return [_from_spec(spec) for spec in block.config.fields], "Run"
        except ValueError:  # an object or list input has no form field
            return None
    return None


def _from_spec(spec: FieldSpec) -> FormField:
    """A `trigger.api` field as the form field closest to it; ValueError when there is none."""
    if spec.type not in _API_KINDS:
        raise ValueError(f"no form field for a {spec.type} input")
    return FormField.model_validate({
        "name": spec.name, "kind": _API_KINDS[spec.type], "label": spec.label,
        "help": spec.description[:1000], "required": spec.required and spec.default is None,
        "default": spec.default, "step": 1 if spec.type == "integer" else None,
    })


def outputs_of(analysis: Analysis) -> list[dict[str, str]]:
    """The app's named results, as the page labels them."""
    found: dict[str, dict[str, str]] = {}
    for node_id in analysis.order:
        block = analysis.blocks[node_id]
        if isinstance(block, OutputBlock):  # branches often end in outputs of the same name: show it once
            for f in block.config.fields:
                found.setdefault(f.name, {"name": f.name,
                                          "label": f.label or f.name.replace("_", " ").capitalize()})
    return list(found.values())


def resolve(session: Session, analyses: AnalysisCache, slug: str, now: datetime) -> Shared:
    """The live share behind `slug`: NotFound when unknown, revoked or unusable, Gone when expired."""
    share = find_by_slug(session, slug=slug) if SLUG.match(slug) else None
    if share is None or share.state(now) == "revoked":
        raise NotFound("this link does not exist or is no longer shared", loc=["path", "slug"])
    if share.state(now) == "expired":
        raise Gone("this link has expired", loc=["path", "slug"])
    app = app_store.get_app(session, org_id=share.org_id, app_id=share.app_id)
    try:
        version = app_store.get_version(session, app=app, number=share.version_number)
    except NotFound:
        raise NotFound("this app is not available right now", loc=["path", "slug"]) from None
    analysis = analyses.get(version.id, lambda: version.graph)
    form = form_of(analysis)
    if form is None:
        raise NotFound("this app cannot be used from a web page", loc=["path", "slug"])
    return Shared(share, app, version, form[0], form[1], outputs_of(analysis), len(analysis.order))


def limits_of(share: Share, visitor: str) -> list[Limit]:
    """The share's limits that apply to this visitor's next run."""
    candidates = [(f"v:{visitor}", 60, share.visitor_per_minute), ("link", 60, share.link_per_minute),
                  ("day", 86400, share.daily_quota)]
    return [Limit(bucket, window, maximum) for bucket, window, maximum in candidates if maximum is not None]


def refusal(limit: Limit, now: datetime) -> RateLimited:
    """The 429 a visitor sees when `limit` is used up, in plain words."""
    wait = limit.retry_after(now)
    if limit.bucket == "day":
        message = "This app has reached its daily limit. Please come back tomorrow."
    elif limit.bucket == "link":
        message = f"This app is busy right now. Please try again in {wait} seconds."
    else:
        message = f"You have started a lot of runs in a short time. Please try again in {wait} seconds."
    return RateLimited(message, retry_after=wait)


def check_limits(session: Session, share: Share, limits: list[Limit], now: datetime, *, count: bool) -> None:
    """Raise RateLimited if a limit is used up; with `count`, also count one run against each."""
    found = (count_usage if count else over_limit)(session, share_id=share.id, limits=limits, now=now)
    if found is not None:
        raise refusal(found, now)


def bound_run(session: Session, shared: Shared, run_id: uuid.UUID) -> Run:
    """The run, only if it was started from this share's app (a token never opens another's)."""
    run = session.get(Run, run_id)
    if run is None or run.app_id != shared.share.app_id or run.org_id != shared.share.org_id:
        raise NotFound("run not found", loc=["path", "run_id"])
    return run


def _error(run: Run, rows: Sequence[NodeRun | NodeRunValues]) -> dict[str, str]:
    if run.status == "blocked":
        node_id = (run.error or {}).get("node_id")
        text = next((r.error for r in rows if r.node_id == node_id and r.error), None)
        return {"type": "blocked", "message": text or BLOCKED_MESSAGE}
    if run.status == "cancelled":
        return {"type": "cancelled", "message": CANCELLED_MESSAGE}
    return {"type": "failed", "message": FAILED_MESSAGE}


def public_view(session: Session, run: Run, total_nodes: int) -> dict[str, Any]:
    """What a visitor may see of a run: status, progress, outputs or a friendly error; no trace."""
    recorded = recorded_nodes(run)
    rows: Sequence[NodeRun | NodeRunValues] = (
        node_runs(session, run_id=run.id) if recorded is None else recorded)
    waiting_for = None
    if run.status == "waiting":
        kinds = {(r.waiting_for or {}).get("kind") for r in rows if r.status == "waiting"}
        waiting_for = "review" if "review" in kinds else "work"
    done = sum(r.status in ("succeeded", "failed", "skipped") for r in rows)
    return {
        "run_id": str(run.id), "status": run.status, "waiting_for": waiting_for,
        "progress": {"done": done, "total": total_nodes},
        "outputs": (run.outputs or {}) if run.status == "succeeded" else None,
        "error": _error(run, rows) if run.status in ENDED and run.status != "succeeded" else None,
    }
