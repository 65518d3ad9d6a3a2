"""The engine and session factory for PostgreSQL or the embedded SQLite file."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import psycopg
import sqlean
import sqlean.dbapi2
import sqlite_vec
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from sqlalchemy import (
    JSON,
    Column,
    ColumnDefault,
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, StatementError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, readonly: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout for many processes.

    On SQLite every writing transaction takes the write lock at BEGIN (IMMEDIATE), the closest
    thing it has to `SELECT ... FOR UPDATE`: a reader that later writes can never be refused
    half-way. A `readonly` engine begins DEFERRED, so its readers never wait for writers.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        # sqlean.py: the same SQLite API, built to allow loadable extensions (sqlite-vec, for the
        # knowledge bases' vectors), which many CPython builds' own sqlite3 refuses.
        kwargs.setdefault("module", sqlean.dbapi2)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Take the write lock at BEGIN so readers-turned-writers never deadlock.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            _load_sqlite_vec(dbapi_conn)

        if readonly:
            @event.listens_for(engine, "begin")
            def _sqlite_begin_read(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN")

            return engine
        database = str(parsed.database)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            info = conn.connection.info
            if "write_turn" not in info:
                turns = _writer_turns(database)  # looked up each time: a forked child gets its own
                if turns.acquire(timeout=30):
                    info["write_turn"] = turns  # given back when the connection returns to the pool
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        def _give_back(record: Any) -> None:
            turns = record.info.pop("write_turn", None) if record is not None else None
            if turns is not None:
                turns.release()

        event.listen(engine, "checkin", lambda _dbapi_conn, record: _give_back(record))
        event.listen(engine, "invalidate", lambda _dbapi_conn, record, _exc: _give_back(record))
        event.listen(engine, "detach", lambda _dbapi_conn, record: _give_back(record))

        return engine
    # Up to 30 connections, all kept once opened: an "overflow" connection is closed when it comes
    # back, and under load (more threads at work than the pool kept) each request then opened a
    # new one, for which PostgreSQL forks a backend. With 10 kept and 20 overflow, that churn cost
    # more CPU than answering the request (bench/engine.py: 380 against 510 runs/s).
    kwargs.setdefault("pool_size", 30)
    kwargs.setdefault("max_overflow", 0)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


# A connection back in use within this many seconds is not pinged first.
PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only if it sat idle for `PING_AFTER_IDLE_S`.

    SQLAlchemy's `pool_pre_ping` pings on every check-out: a round trip per transaction, about a
    sixth of the API's time on a busy webhook. A connection used a moment ago is as good as the
    ping would say; one that waited (across a database restart, say) is pinged with the dialect's
    own `do_ping`, and a dead one is replaced, as the pool does for `pool_pre_ping`, by raising
    `DisconnectionError` from the check-out event. A restart within that second fails the
    transactions already under way, which the pool then detects and recycles, as it would anyway.
    """
    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _idle(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise DisconnectionError(str(exc)) from exc
            raise


_TURNS: dict[str, threading.Lock] = {}
_TURNS_LOCK = threading.Lock()


def _writer_turns(database: str) -> threading.Lock:
    """The writers of this process to one SQLite file take turns on this lock.

    SQLite lets one writer in at a time and makes the others poll with growing sleeps (up to
    100 ms each), which is unfair: with fifty requests writing at once a few waited seconds while
    others went ahead (a p99 of 1.8 s beside a p50 of 0.12 s). Waiting on a lock here queues them
    instead. Other processes (the workers) still meet SQLite's own polling, and a writer that
    cannot get its turn in 30 s goes on to that polling, as before, rather than wait forever.
    """
    with _TURNS_LOCK:
        return _TURNS.setdefault(database, threading.Lock())


def _load_sqlite_vec(dbapi_conn: Any) -> None:
    """Make sqlite-vec's `vec0` tables and functions available on this connection (when it can be)."""
    try:
        dbapi_conn.enable_load_extension(True)
        sqlite_vec.load(dbapi_conn)
        dbapi_conn.enable_load_extension(False)
    except (AttributeError, sqlean.dbapi2.Error):  # a caller's own sqlite3 module: no vectors, said at search
        pass


# The engines behind the process-wide session factories.
_ENGINES: list[Engine] = []


@lru_cache
def _factory(url: str, readonly: bool, autocommit: bool) -> sessionmaker[Session]:
    options: dict[str, Any] = {}
    if autocommit and make_url(url).get_backend_name() == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    engine = make_engine(url, readonly=readonly, **options)
    _ENGINES.append(engine)
    return sessionmaker(engine, expire_on_commit=False)


# Pools a forked child inherited, kept so that their connections are never closed (or collected)
# there: they are the parent's.
_INHERITED: list[Any] = []


def _forget_inherited() -> None:
    """In a forked child (a prefork worker process): fresh pools and fresh writer turns.

    A child gets copies of the parent's pooled connections and locks in whatever state they were
    in at the fork. A connection the parent was using at that moment (a worker's health probe,
    say) may carry SQLite's mutex locked, so the child's first use of it can hang for good; a
    writer turn taken then is never given back in the child, so each of its writes waited 30 s
    for it. A CI run once saw a run worker leave its queue untouched for minutes. SQLAlchemy's
    advice for `os.fork()` is `dispose(close=False)`, which replaces the pool without touching the
    parent's connections; those are kept referenced so that nothing closes them from here.
    """
    global _TURNS_LOCK, _FORK_GUARD
    _FORK_GUARD = threading.RLock()
    _TURNS_LOCK = threading.Lock()
    _TURNS.clear()
    for engine in _ENGINES:
        _INHERITED.append(engine.pool)
        engine.dispose(close=False)


# Held while a thread uses the database in a process that forks (a prefork worker's health probe):
# `os.fork()` waits for it, so no child is forked in the middle of that use. SQLite keeps its
# locks' bookkeeping per process, and a child forked while a connection of its parent held a lock
# can wait on that lock forever, even on connections of its own (tests/unit/test_fork_safety.py).
_FORK_GUARD = threading.RLock()


@contextmanager
def no_fork_meanwhile() -> Iterator[None]:
    """Hold off `os.fork()` in this process until the body is done."""
    with _FORK_GUARD:
        yield


def _before_fork() -> None:
    _FORK_GUARD.acquire()


def _after_fork_in_parent() -> None:
    _FORK_GUARD.release()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_forget_inherited)


def session_factory(url: str, *, readonly: bool = False, autocommit: bool = False) -> sessionmaker[Session]:
    """The process-wide session factory for `url` (one engine and pool per URL and mode).

    `autocommit` (with `readonly`; PostgreSQL only): each statement is its own transaction, so a
    read costs one round trip, not three (BEGIN, the query, and the ROLLBACK or COMMIT that ends
    it). Under READ COMMITTED, PostgreSQL's default, each statement of a transaction sees its own
    snapshot anyway, so readers see exactly what they saw inside a transaction. Not for a reader
    that locks rows or sets `SET LOCAL` options: those need a transaction.
    """
    return _factory(url, readonly, readonly and autocommit)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


_ON_COMMIT = "mantle_on_commit"


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Call `callback` once the session's transaction commits; forget it if it rolls back.

    SQLAlchemy's `event.listen(session, "after_commit", ..., once=True)` does this too, but it
    builds the session's listener collection on every call (about 20 µs more per call, measured
    against this, on a path taken by every run that ends in the API); here one listener for every
    session reads a list from `session.info`."""
    session.info.setdefault(_ON_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for callback in session.info.pop(_ON_COMMIT, ()):
        callback()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_ON_COMMIT, None)


@contextmanager
def pipelined(session: Session, *, commit: bool = False) -> Iterator[None]:
    """Send the body's statements to PostgreSQL in one round trip (psycopg's pipeline mode).

    For statements whose results nobody reads before the body ends (inserts, notifications):
    they are queued and sent together when it ends, where any error is raised. On SQLite, which
    has no round trips, the body runs as it is. The session's pending changes are flushed first,
    outside the pipeline, so the unit of work's checks of its UPDATEs' row counts see them.

    `commit`: the body's statements end the transaction, with its COMMIT in the same round trip
    (on PostgreSQL, in a transaction the session owns; elsewhere, and on SQLite, the session
    commits as usual). For a session that writes nothing afterwards: its own `commit()` then
    finds nothing to send. A statement of the body that fails (a `send_check` that does not
    hold) aborts the whole transaction and nothing of it is kept.
    When the transaction has sent nothing yet, its BEGIN is not sent either (psycopg waits for
    its answer, a round trip of its own): the statements go in autocommit mode, where PostgreSQL
    runs everything a pipeline sends up to its Sync as one transaction, committed at the Sync or,
    if a statement fails, rolled back whole (the protocol's pipelining rules).
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        yield
        return
    session.flush()
    driver: Any = connection.connection.driver_connection  # a psycopg.Connection
    # Only a transaction the session owns is ended here: not a savepoint, nor a transaction that
    # whoever bound the session to a Connection began (the tests' rolled-back outer transaction);
    # there the session's own commit() ends its part as usual.
    commit = commit and isinstance(session.get_bind(), Engine) and not connection.in_nested_transaction()
    implicit = commit and driver.pgconn.transaction_status == TransactionStatus.IDLE
    if implicit:
        driver.autocommit = True
    try:
        with driver.pipeline():
            yield
            if commit and not implicit:
                driver.commit()
    except BaseException as exc:  # psycopg's errors come at the pipeline's end or, already
        # wrapped as SQLAlchemy's, from a statement of the body that read a failed result early
        if implicit:
            # PostgreSQL rolled the implicit transaction back by itself, so psycopg sends no
            # ROLLBACK, which is where it forgets what it prepared: a statement queued after the
            # failure on its sixth use (prepared then) was skipped by PostgreSQL, yet psycopg takes
            # it for prepared, and its next use on this connection fails ("prepared statement
            # _pg3_1 does not exist"). The connection is dropped instead, and the pool opens a new
            # one: a rare cost (a version published meanwhile, a Twilio retry).
            connection.invalidate()
        if isinstance(exc, psycopg.Error):
            raise as_sqlalchemy_error(exc) from exc
        raise
    finally:
        if implicit and not driver.closed:  # a broken connection is the pool's to discard
            driver.autocommit = False


def as_sqlalchemy_error(exc: psycopg.Error) -> StatementError:
    """An error psycopg raised past SQLAlchemy (a statement sent to psycopg directly, a pipeline's
    end), wrapped as SQLAlchemy wraps a statement's error: callers catch IntegrityError (a unique
    key's race), OperationalError (the server gone) and the rest as they would from
    `session.execute`."""
    return DBAPIError.instance(None, None, exc, psycopg.Error)


@contextmanager
def _sqlalchemy_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        raise as_sqlalchemy_error(exc) from exc


# SQLSTATE of `mantle_check`'s error (migrations/versions/0022_checks.py).
CHECK_FAILED = "MN001"


def send_check(session: Session, condition: str, params: dict[str, Any], message: str) -> None:
    """In `pipelined` on PostgreSQL, queue a statement that fails the transaction (SQLSTATE
    CHECK_FAILED, see `check_failed`) unless the SQL `condition` holds when it runs: a check sent
    ahead, in the round trip of the writes that depend on it, instead of a query answered first.
    A no-op on SQLite (which has no round trips to save: do not guess there)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    driver: Any = connection.connection.driver_connection
    driver.execute(f"SELECT mantle_check({condition}, %(message)s)", {**params, "message": message})


def check_failed(exc: BaseException) -> bool:
    """Whether `exc` is a `send_check` that did not hold."""
    return getattr(getattr(exc, "orig", exc), "sqlstate", None) == CHECK_FAILED


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) into `table`, reading nothing back.

    On PostgreSQL the rows are sent as one JSON document, serialised by orjson, that one INSERT
    unpacks (`json_to_recordset`); in `pipelined` it is queued with the rest of the step. Both
    ways it had before cost more CPU than running the nodes: SQLAlchemy's executemany ran its bind
    processors on every value of every row in Python, and psycopg's executemany still adapts each
    value and sends a statement per row (about 25 microseconds a row; a 10-block run inserts 33).
    As one document, a direct run's 33 rows cost 0.4 ms of CPU instead of 1.1. The values are
    stored as SQLAlchemy's types would store them: None in a JSON column as JSON null, and the
    columns' Python-side defaults for keys the rows lack. On SQLite, where it is cheap,
    SQLAlchemy does it.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(table).inline(), rows)
        return
    statement, defaults = _insert_plan(table, tuple(rows[0]))
    if defaults:
        rows = [{**row, **{name: make() for name, make in defaults}} for row in rows]
    with _sqlalchemy_errors():
        driver(session).execute(statement, (_json_text(rows),))


def driver(session: Session) -> Any:
    """The psycopg connection under the session's (PostgreSQL only), in its transaction."""
    return session.connection().connection.driver_connection


def update_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """UPDATE the rows of `table` named by each dict's `id` to its other values (every dict with the
    same keys), reading nothing back.

    On PostgreSQL through psycopg itself, each row's values as one JSON document as `insert_rows`
    sends them (`UPDATE ... FROM json_to_record(...) WHERE id = ...`: one statement per row, so
    the primary key's index always finds it), queued in `pipelined` with the rest of a step.
    Through SQLAlchemy, each UPDATE of a worker's step cost more CPU in SQLAlchemy's statement
    machinery (the execution context, the cache key, the result) than psycopg spent sending it.
    The values are stored as `insert_rows` stores them. On SQLite, SQLAlchemy does it.
    """
    if not rows:
        return
    connection = session.connection()
    keys = tuple(name for name in rows[0] if name != "id")
    if connection.dialect.name != "postgresql":
        changes = (update(table).where(table.c.id == bindparam("row_id"))
                   .values({name: bindparam(f"new_{name}", type_=table.c[name].type) for name in keys}))
        session.execute(changes, [{"row_id": row["id"], **{f"new_{k}": row[k] for k in keys}}
                                    for row in rows])
        return
    statement = _update_plan(table, keys)
    psycopg_connection = driver(session)
    with _sqlalchemy_errors():
        for row in rows:
            psycopg_connection.execute(statement, (_json_text({k: row[k] for k in keys}), row["id"]))


@lru_cache(maxsize=64)
def _update_plan(table: Table, keys: tuple[str, ...]) -> str:
    """The UPDATE of one row of `table` to the values of a JSON object with `keys`, by its id."""
    dialect: Any = postgresql.dialect()  # type: ignore[no-untyped-call]
    columns = [table.c[key] for key in keys]
    sets = ", ".join(f""""{c.name}" = COALESCE(r."{c.name}", 'null'::jsonb)""" if isinstance(c.type, JSON)
                     else f'"{c.name}" = r."{c.name}"' for c in columns)
    types = ", ".join(f'"{c.name}" {c.type.compile(dialect=dialect)}' for c in columns)
    return (f'UPDATE "{table.name}" AS t SET {sets} FROM json_to_record(%s::json) AS r({types}) '
            f'WHERE t."id" = %s')


def select_sql(table: Table, where: str, suffix: str = "") -> str:
    """`SELECT` of every column of `table` by name, `WHERE where` (psycopg placeholders), for
    `fetch_dicts`."""
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    return f'SELECT {names} FROM "{table.name}" WHERE {where} {suffix}'.rstrip()


def fetch_dicts(session: Session, statements: list[tuple[str, tuple[Any, ...]]]
                ) -> list[list[dict[str, Any]]]:
    """PostgreSQL only: each statement's rows as dicts by column name, all sent in one round trip
    (psycopg's pipeline) in the session's transaction, through psycopg itself: for the hot reads of
    a worker's step, where SQLAlchemy's execution of a statement cost more CPU than the query's
    own work in psycopg (see `update_rows`). Values come back as psycopg reads them, which is what
    SQLAlchemy's types return there too (timestamps with their zone, JSON decoded, UUIDs)."""
    connection = driver(session)
    with _sqlalchemy_errors():
        with connection.pipeline():
            cursors = [connection.cursor(row_factory=dict_row) for _ in statements]
            for cursor, (sql, params) in zip(cursors, statements, strict=True):
                cursor.execute(sql, params)
        return [cursor.fetchall() for cursor in cursors]


def _json_text(value: Any) -> str:
    """`value` as JSON text (datetimes as ISO 8601, UUIDs as text): orjson, or the standard
    library for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, default=_iso)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


@lru_cache(maxsize=64)
def _insert_plan(table: Table, keys: tuple[str, ...]
                 ) -> tuple[str, tuple[tuple[str, Callable[[], Any]], ...]]:
    """The INSERT of a JSON array of rows with `keys` and the columns they lack that have a
    Python-side default; and, per defaulted column, its name and a function making its value."""
    defaulted = [c for c in table.columns if c.name not in keys and isinstance(c.default, ColumnDefault)]
    columns = [table.c[key] for key in keys] + defaulted
    dialect: Any = postgresql.dialect()  # type: ignore[no-untyped-call]
    names = ", ".join(f'"{c.name}"' for c in columns)
    # JSON null comes out of json_to_recordset as SQL NULL: put it back as SQLAlchemy stores None.
    values = ", ".join(f"""COALESCE("{c.name}", 'null'::jsonb)""" if isinstance(c.type, JSON)
                       else f'"{c.name}"' for c in columns)
    types = ", ".join(f'"{c.name}" {c.type.compile(dialect=dialect)}' for c in columns)
    statement = (f'INSERT INTO "{table.name}" ({names}) SELECT {values} '
                 f"FROM json_to_recordset(%s::json) AS r({types})")
    return statement, tuple((c.name, _default(c)) for c in defaulted)


def _default(column: Column[Any]) -> Callable[[], Any]:
    """A function making `column`'s Python-side default value."""
    default: Any = column.default
    if default.is_callable:
        return lambda: default.arg(None)
    return lambda: default.arg
