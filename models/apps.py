"""Apps: a mutable draft graph and immutable, numbered published versions."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    false,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, defer, mapped_column, relationship

from core.errors import Conflict, NotFound
from models.base import Base, TimestampMixin, new_id, transient, utcnow
from models.db import fetch_dicts, send_check


class App(TimestampMixin, Base):
    """An app of one organization; `draft_revision` grows on every draft save.

    `tool`: its builder offers it as an MCP tool (`/mcp`), named `tool_name` (unique in the
    organization, kept when the flag is cleared so the name stays the app's)."""

    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("org_id", "tool_name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    draft: Mapped[dict[str, Any]]
    draft_revision: Mapped[int] = mapped_column(default=1)
    latest_version: Mapped[int] = mapped_column(default=0)
    tool: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    tool_name: Mapped[str | None] = mapped_column(String(64))
    tool_description: Mapped[str] = mapped_column(Text, default="", server_default="")

    versions: Mapped[list[AppVersion]] = relationship(
        back_populates="app", cascade="all, delete-orphan", passive_deletes=True,
        order_by="AppVersion.number",
    )


class AppVersion(Base):
    """A published, frozen graph; never updated after insert."""

    __tablename__ = "app_versions"
    __table_args__ = (UniqueConstraint("app_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    graph: Mapped[dict[str, Any]]
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="")

    app: Mapped[App] = relationship(back_populates="versions")


def get_app(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, lock: bool = False) -> App:
    """The organization's app, or NotFound (also for another organization's app)."""
    stmt = select(App).where(App.id == app_id, App.org_id == org_id)
    if lock:
        stmt = stmt.with_for_update()
    app = session.scalar(stmt)
    if app is None:
        raise NotFound("app not found", loc=["app_id"])
    return app


@cache
def _list_statement(named: bool) -> Select[App, int]:
    # Built once: the list is a hot route, and building the statement cost more than running it.
    where = [App.org_id == bindparam("org_id")]
    if named:
        where.append(App.name.ilike(bindparam("pattern")))
    return (
        select(App, func.count().over().label("total")).options(defer(App.draft))
        .where(*where).order_by(App.updated_at.desc(), App.id)
        .limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer))
    )


_LISTED = ", ".join(f'"{c.name}"' for c in App.__table__.columns if c.name != "draft")
# Without and with a name filter (`ILIKE`, as SQLAlchemy's `ilike` sends on PostgreSQL).
_LIST_SQL = {named: f'SELECT {_LISTED}, count(*) OVER () AS "total" FROM "apps" WHERE "org_id" = %s'
             + (' AND "name" ILIKE %s' if named else "")
             + ' ORDER BY "updated_at" DESC, "id" LIMIT %s OFFSET %s' for named in (False, True)}


def list_apps(
    session: Session, *, org_id: uuid.UUID, limit: int, offset: int, q: str | None = None
) -> tuple[list[App], int]:
    """A page of the organization's apps, most recently updated first, and the total count.

    One query: the count rides along as a window over the filtered rows, and the drafts (the
    large column) are not loaded, since a list shows none. Only a page past the end, which has
    no row to carry the count, asks for it separately.
    """
    if session.get_bind().dialect.name == "postgresql":
        # Through psycopg, the rows as transient apps (`models.base.transient`; no draft): for a
        # list clients poll, where the ORM's statement and loading cost more CPU than the query.
        args: tuple[Any, ...] = (org_id, f"%{q}%", limit, offset) if q else (org_id, limit, offset)
        (found,) = fetch_dicts(session, [(_LIST_SQL[bool(q)], args)])
        if found:
            total = found[0]["total"]
            return [transient(App, {k: v for k, v in row.items() if k != "total"}) for row in found], total
    else:
        params: dict[str, Any] = {"org_id": org_id, "limit": limit, "offset": offset}
        if q:
            params["pattern"] = f"%{q}%"
        rows = session.execute(_list_statement(bool(q)), params).all()
        if rows:
            return [row[0] for row in rows], int(rows[0][1])
    if not offset:
        return [], 0
    where = [App.org_id == org_id]
    if q:
        where.append(App.name.ilike(f"%{q}%"))
    return [], session.scalar(select(func.count()).select_from(App).where(*where)) or 0


def create_app(
    session: Session, *, org_id: uuid.UUID, name: str, description: str, draft: dict[str, Any]
) -> App:
    """Add an app with its first draft."""
    app = App(org_id=org_id, name=name, description=description, draft=draft)
    session.add(app)
    session.flush()
    return app


def save_draft(
    session: Session, *, app: App, draft: dict[str, Any], expected_revision: int | None = None
) -> App:
    """Replace the draft; with `expected_revision`, refuse to overwrite someone else's save."""
    if expected_revision is not None and expected_revision != app.draft_revision:
        raise Conflict(
            f"the draft is at revision {app.draft_revision}, not {expected_revision}: "
            "reload it before saving",
            loc=["header", "If-Match"],
        )
    app.draft = draft
    app.draft_revision += 1
    app.updated_at = utcnow()
    return app


def publish(session: Session, *, app: App, graph: dict[str, Any], note: str, actor: str) -> AppVersion:
    """Freeze `graph` as the app's next numbered version (the app row must be locked)."""
    app.latest_version += 1
    version = AppVersion(
        app_id=app.id, org_id=app.org_id, number=app.latest_version, graph=graph, note=note,
        created_by=actor,
    )
    session.add(version)
    session.flush()
    return version


def list_versions(
    session: Session, *, app: App, limit: int, offset: int
) -> tuple[list[AppVersion], int]:
    """A page of the app's versions, newest first, and the total count."""
    where = [AppVersion.app_id == app.id]
    total = session.scalar(select(func.count()).select_from(AppVersion).where(*where)) or 0
    stmt = (
        select(AppVersion).where(*where).order_by(AppVersion.number.desc()).limit(limit).offset(offset)
    )
    return list(session.scalars(stmt)), total


def get_version(session: Session, *, app: App, number: int | None = None) -> AppVersion:
    """Version `number` of the app, or its latest when `number` is None; NotFound otherwise."""
    stmt = select(AppVersion).where(AppVersion.app_id == app.id)
    stmt = stmt.where(AppVersion.number == (number if number is not None else app.latest_version))
    version = session.scalar(stmt)
    if version is None:
        what = f"version {number}" if number is not None else "published version"
        raise NotFound(f"the app has no {what}", loc=["version"])
    return version


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A published version by id and number, without its graph (read only when it is needed)."""

    id: uuid.UUID
    number: int


@cache
def _version_statement(latest: bool) -> Select[uuid.UUID, int]:
    # Built once: on the hot paths (starting a run, an SMS), building it cost more than running it.
    wanted = App.latest_version if latest else bindparam("number")
    return (select(AppVersion.id, AppVersion.number).join(App, App.id == AppVersion.app_id)
            .where(App.id == bindparam("app_id"), App.org_id == bindparam("org_id"),
                   AppVersion.number == wanted))


def published_version(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, number: int | None = None
                      ) -> VersionRef | None:
    """Version `number` of the organization's app (its latest when None), in one query, if it exists."""
    params: dict[str, Any] = {"app_id": app_id, "org_id": org_id}
    if number is not None:
        params["number"] = number
    row = session.execute(_version_statement(number is None), params).first()
    return VersionRef(row.id, row.number) if row is not None else None


def find_version(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, number: int | None = None
                 ) -> VersionRef:
    """As `published_version`, but NotFound where it finds none, as `get_app` and `get_version` say it."""
    found = published_version(session, org_id=org_id, app_id=app_id, number=number)
    if found is None:  # say which is missing (or find a version published meanwhile)
        version = get_version(session, app=get_app(session, org_id=org_id, app_id=app_id), number=number)
        return VersionRef(version.id, version.number)
    return found


def check_latest_version(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, number: int) -> None:
    """In `models.db.pipelined`: fail the transaction unless version `number` is still the latest of
    the organization's app (`models.db.check_failed` tells). Versions are numbered per app and
    never change, so the number tells the version: a run started on a version this process found
    earlier is checked in the round trip that records it, instead of looked up before."""
    send_check(session, f"EXISTS (SELECT 1 FROM {App.__tablename__} WHERE id = %(app_id)s "
                        "AND org_id = %(org_id)s AND latest_version = %(number)s)",
               {"app_id": app_id, "org_id": org_id, "number": number},
               f"version {number} is no longer the app's latest")


def version_graph(session: Session, *, version_id: uuid.UUID) -> dict[str, Any] | None:
    """The frozen graph of a published version, if it exists."""
    graph: dict[str, Any] | None = session.scalar(select(AppVersion.graph).where(AppVersion.id == version_id))
    return graph


TOOL_NAME = r"^[A-Za-z0-9_.-]{1,64}$"


def default_tool_name(app_name: str) -> str:
    """A tool name made of an app's name: lower case, runs of other characters as `_`."""
    slug = re.sub(r"[^a-z0-9]+", "_", app_name.lower()).strip("_")[:64]
    return slug or "app"


def set_tool(session: Session, *, app: App, tool: bool | None = None, name: str | None = None,
             description: str | None = None) -> App:
    """Offer the app as an MCP tool (or stop), named `name` (default: made of the app's name);
    Conflict when another app of the organization has that tool name."""
    if tool is not None:
        app.tool = tool
    if name is None and app.tool and app.tool_name is None:
        name = default_tool_name(app.name)
    if name is not None and name != app.tool_name:
        taken = session.scalar(select(App.id).where(App.org_id == app.org_id, App.tool_name == name,
                                                    App.id != app.id))
        if taken is not None:
            raise Conflict(f"another app of the organization is the tool {name!r}: choose another tool_name",
                           loc=["body", "tool_name"])
        app.tool_name = name
    if description is not None:
        app.tool_description = description
    return app


@dataclass(frozen=True, slots=True)
class ToolApp:
    """An app offered as an MCP tool, with its latest published version (graph not loaded)."""

    app_id: uuid.UUID
    name: str
    description: str
    version: VersionRef


def _tools_statement() -> Select[uuid.UUID, str | None, str, str, uuid.UUID, int]:
    return (select(App.id, App.tool_name, App.tool_description, App.description, AppVersion.id,
                   AppVersion.number)
            .join(AppVersion, (AppVersion.app_id == App.id) & (AppVersion.number == App.latest_version))
            .where(App.org_id == bindparam("org_id"), App.tool.is_(True), App.tool_name.is_not(None)))


def list_tools(session: Session, *, org_id: uuid.UUID, name: str | None = None) -> list[ToolApp]:
    """The organization's published apps offered as tools, by tool name (only `name`, when given)."""
    stmt = _tools_statement()
    if name is not None:
        stmt = stmt.where(App.tool_name == name)
    rows = session.execute(stmt.order_by(App.tool_name), {"org_id": org_id}).all()
    return [ToolApp(app_id=row[0], name=row[1] or "", description=row[2] or row[3],
                    version=VersionRef(row[4], row[5])) for row in rows]
