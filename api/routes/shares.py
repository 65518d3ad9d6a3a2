"""Share links of an app: create (for a version or the latest published), list, read, update, revoke."""

from __future__ import annotations

import html
import re
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import AwareDatetime, BaseModel, Field, field_validator
from sqlalchemy.orm import Session

from api.deps import Builder, PageDep, SessionDep, SettingsDep
from api.public.service import form_of
from api.schemas import PageOf, VersionNumber
from api.schemas import Request as Body
from core.errors import Conflict, InvalidRequest, NotFound
from core.settings import Settings
from models import apps as app_store
from models import audit
from models import shares as share_store
from models.apps import App
from models.base import utcnow
from models.shares import DEFAULT_LIMITS, Share

router = APIRouter(tags=["shares"])

_ORIGIN = re.compile(r"^(\*|https?://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?)$")
_SETTABLE = ("label", "expires_at", "visitor_per_minute", "link_per_minute", "daily_quota", "embed_origins")


class ShareFields(Body):
    """What a share's owner may set; a limit of null means no limit of that kind."""

    label: str = Field(default="", max_length=200, description="A note for the owner (never shown publicly).")
    expires_at: AwareDatetime | None = Field(default=None, description="After this the link answers 410.")
    access_code: str | None = Field(default=None, min_length=4, max_length=200,
                                    description="Visitors must enter it (stored hashed).")
    visitor_per_minute: int | None = Field(default=DEFAULT_LIMITS["visitor_per_minute"], ge=1, le=10_000,
                                           description="Per visitor a minute.")
    link_per_minute: int | None = Field(default=DEFAULT_LIMITS["link_per_minute"], ge=1, le=100_000,
                                        description="Runs a minute, all told.")
    daily_quota: int | None = Field(default=DEFAULT_LIMITS["daily_quota"], ge=1, le=10_000_000,
                                    description="Runs per UTC day.")
    embed_origins: list[str] = Field(
        default_factory=list, max_length=20,
        description="Sites that may show `?embed=1` in a frame: origins like https://example.com, "
                    "or `*` for any. Empty (the default) forbids framing: a page another site frames "
                    "can be clicked through in disguise.")

    @field_validator("embed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin like https://example.com (or *)")
        return origins


class ShareCreate(ShareFields):
    """A new link: to version `version`, or (omitted) always to the latest published version."""

    version: VersionNumber | None = Field(default=None, description="Pin a version; omit for the latest.")


class ShareUpdate(ShareCreate):
    """Changes to a share; only the fields sent change (`null` clears an expiry, code or limit)."""


class ShareRead(BaseModel):
    """A share link and its settings (the access code is never shown, only whether there is one)."""

    id: uuid.UUID
    app_id: uuid.UUID
    slug: str
    url: str
    embed_url: str
    embed_html: str
    state: str
    version: int | None
    label: str
    expires_at: datetime | None
    revoked_at: datetime | None
    has_access_code: bool
    visitor_per_minute: int | None
    link_per_minute: int | None
    daily_quota: int | None
    embed_origins: list[str]
    created_at: datetime
    created_by: str
    updated_at: datetime


def share_read(share: Share, app: App, settings: Settings) -> ShareRead:
    """The share as its owner sees it, with its public URLs."""
    url = f"{settings.public_base_url.rstrip('/')}/s/{share.slug}"
    embed_html = (f'<iframe src="{html.escape(url)}?embed=1" title="{html.escape(app.name)}" '
                  'width="100%" height="640" style="border:0" loading="lazy"></iframe>')
    return ShareRead(
        id=share.id, app_id=share.app_id, slug=share.slug, url=url, embed_url=f"{url}?embed=1",
        embed_html=embed_html, state=share.state(), version=share.version_number, label=share.label,
        expires_at=share.expires_at, revoked_at=share.revoked_at, has_access_code=share.has_access_code,
        visitor_per_minute=share.visitor_per_minute, link_per_minute=share.link_per_minute,
        daily_quota=share.daily_quota, embed_origins=share.embed_origins, created_at=share.created_at,
        created_by=share.created_by, updated_at=share.updated_at)


def _check_shareable(request: Request, session: Session, app: App, version: int | None) -> None:
    """Refuse a version that does not exist or whose trigger a web page cannot start."""
    try:
        published = app_store.get_version(session, app=app, number=version)
    except NotFound:
        message = f"the app has no version {version}" if version else "publish the app before sharing it"
        raise InvalidRequest(message, loc=["body", "version"]) from None
    analysis = request.app.state.submitter.analyses.get(published.id, lambda: published.graph)
    if form_of(analysis) is None:
        trigger = analysis.blocks[analysis.trigger].type if analysis.trigger else "no trigger"
        raise InvalidRequest(f"version {published.number} starts with {trigger}: only apps starting with "
                             "webapp.input or trigger.api (text, number or boolean fields) can be shared "
                             "as a web page", loc=["body", "version"])


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest("expires_at is in the past", loc=["body", "expires_at"])


@router.post("/apps/{app_id}/shares", response_model=ShareRead, status_code=status.HTTP_201_CREATED)
def create_share(app_id: uuid.UUID, body: ShareCreate, request: Request, principal: Builder,
                 session: SessionDep, settings: SettingsDep) -> ShareRead:
    """Create a public link to the app (a pinned version, or always the latest published one)."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    _check_shareable(request, session, app, body.version)
    _check_expiry(body.expires_at)
    share = Share(org_id=app.org_id, app_id=app.id, slug=share_store.new_slug(), version_number=body.version,
                  access_code_hash=share_store.hash_code(body.access_code) if body.access_code else None,
                  created_by=principal.actor, **{k: getattr(body, k) for k in _SETTABLE})
    session.add(share)
    session.flush()
    audit.record(session, org_id=app.org_id, actor=principal.actor, action="share.create",
                 target_type="share", target_id=share.id,
                 details={"app_id": str(app.id), "version": body.version,
                          "access_code": share.has_access_code})
    return share_read(share, app, settings)


@router.get("/apps/{app_id}/shares", response_model=PageOf[ShareRead])
def list_shares(app_id: uuid.UUID, principal: Builder, session: SessionDep, page: PageDep,
                settings: SettingsDep) -> PageOf[ShareRead]:
    """The app's share links, newest first (revoked and expired ones too)."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    items, total = share_store.list_shares(session, org_id=principal.org_id, app_id=app.id, limit=page.limit,
                                           offset=page.offset)
    return PageOf[ShareRead](items=[share_read(s, app, settings) for s in items], total=total,
                             limit=page.limit, offset=page.offset)


@router.get("/apps/{app_id}/shares/{share_id}", response_model=ShareRead)
def get_share(app_id: uuid.UUID, share_id: uuid.UUID, principal: Builder, session: SessionDep,
              settings: SettingsDep) -> ShareRead:
    """One share link."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    share = share_store.get_share(session, org_id=principal.org_id, app_id=app.id, share_id=share_id)
    return share_read(share, app, settings)


@router.patch("/apps/{app_id}/shares/{share_id}", response_model=ShareRead)
def update_share(app_id: uuid.UUID, share_id: uuid.UUID, body: ShareUpdate, request: Request,
                 principal: Builder, session: SessionDep, settings: SettingsDep) -> ShareRead:
    """Change a share's version, expiry, access code, limits or embedding (409 once revoked)."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    share = share_store.get_share(session, org_id=principal.org_id, app_id=app.id, share_id=share_id,
                                  lock=True)
    if share.revoked_at is not None:
        raise Conflict("the share is revoked; create a new one", loc=["share_id"])
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "version" in changes:
        _check_shareable(request, session, app, changes["version"])
        share.version_number = changes["version"]
    if "expires_at" in changes:
        _check_expiry(changes["expires_at"])
    if "access_code" in changes:
        code = changes.pop("access_code")
        share.access_code_hash = share_store.hash_code(code) if code else None
        changes["access_code"] = "changed" if code else "removed"
    for key in _SETTABLE:
        if key in changes:
            setattr(share, key, changes[key])
    share.updated_at = utcnow()
    audit.record(session, org_id=app.org_id, actor=principal.actor, action="share.update",
                 target_type="share", target_id=share.id, details={"changed": sorted(changes)})
    session.flush()
    return share_read(share, app, settings)


@router.post("/apps/{app_id}/shares/{share_id}/revoke", response_model=ShareRead)
def revoke_share(app_id: uuid.UUID, share_id: uuid.UUID, principal: Builder, session: SessionDep,
                 settings: SettingsDep) -> ShareRead:
    """Turn the link off for good: from now on it answers 404 (revoking twice changes nothing)."""
    app = app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    share = share_store.get_share(session, org_id=principal.org_id, app_id=app.id, share_id=share_id,
                                  lock=True)
    if share.revoked_at is None:
        share.revoked_at = share.updated_at = utcnow()
        audit.record(session, org_id=app.org_id, actor=principal.actor, action="share.revoke",
                     target_type="share", target_id=share.id, details={"slug_prefix": share.slug[:4]})
    session.flush()
    return share_read(share, app, settings)
