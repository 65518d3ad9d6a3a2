"""The migrations build exactly the schema the models declare, and undo it cleanly, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import models  # noqa: F401  (registers every table on the metadata)
from migrations.run import downgrade, upgrade
from models.base import Base
from models.db import make_engine
from tests.conftest import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no tables at all, made for this test alone."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    url = create_postgres_database(admin_url)
    yield url
    drop_postgres_database(admin_url, url)


def schema_diff(url: str) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match the models."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    """The tables the database has now."""
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_the_models_and_downgrade_undoes_it(empty_database: str) -> None:
    url = empty_database
    assert tables(url) == set()

    upgrade(url)
    assert tables(url) == set(Base.metadata.tables) | {"alembic_version"}
    assert schema_diff(url) == []

    downgrade(url, "base")
    assert tables(url) <= {"alembic_version"}

    upgrade(url)
    assert schema_diff(url) == []
    assert tables(url) == set(Base.metadata.tables) | {"alembic_version"}


def test_upgrade_twice_changes_nothing(empty_database: str) -> None:
    upgrade(empty_database)
    before = tables(empty_database)
    upgrade(empty_database)
    assert tables(empty_database) == before
    assert schema_diff(empty_database) == []
