"""The declarative base, shared column types and the naming convention for constraints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, class_mapper, mapped_column

# Named constraints make migrations reversible on SQLite (batch mode needs the names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A fresh random primary key."""
    return uuid.uuid4()


M = TypeVar("M", bound="Base")


def transient(model: type[M], values: dict[str, Any]) -> M:
    """An object of `model` outside any session, holding a row's `values` as read (every column
    named by its attribute), for rows read through psycopg (`models.db.fetch_dicts`).

    Filled as the ORM's own loading fills an object: a new instance with its state, the values put
    in its `__dict__`. Through the model's constructor, each value went through the attribute's
    set events: about 90 microseconds for a run's 26 columns, against 4 this way, on a step that
    reads one run and on each read of a run through the API. Setting an attribute later goes
    through the events as usual.

    `class_mapper` configures the mappers first if nothing in this process has yet (a constructor
    or a query would have): unconfigured, the object's attributes cannot be read. A prefork child
    whose first task read a run this way failed on `run.org_id`.
    """
    instance: M = class_mapper(model).class_manager.new_instance()
    instance.__dict__.update(values)
    return instance


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Base class of every Mantle table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class TimestampMixin:
    """Creation and update times."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
