"""A forked child (a prefork worker process) can use the database at once, even when the parent's
health probe was using it at the moment of the fork (see `models/db.py`). The probe here takes a
writer's turn and SQLite's write lock, as workers' probes did: without the fork guard a child
forked meanwhile hung for good."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from sqlalchemy import text

from models import db
from worker.probes import database_probe


def _child(url: str, n: int) -> None:
    with db.session_scope(db.session_factory(url)) as session:
        session.execute(text("INSERT INTO notes VALUES (:n)"), {"n": n})


def test_children_forked_while_the_parent_probes_the_database_write_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fork.db'}"
    with db.session_scope(db.session_factory(url)) as session:
        session.execute(text("CREATE TABLE notes (n INTEGER)"))
    probe = database_probe(db.session_factory(url))
    stop, probed = threading.Event(), []

    def probing() -> None:  # as a worker's health endpoint does, as often as it can
        while not stop.is_set():
            probed.append(probe())

    prober = threading.Thread(target=probing)
    prober.start()
    exits = []
    try:
        for n in range(40):
            child = multiprocessing.get_context("fork").Process(target=_child, args=(url, n))
            child.start()
            child.join(60)
            exits.append(child.exitcode)
            if child.exitcode is None:
                child.kill()
    finally:
        stop.set()
        prober.join()

    assert exits == [0] * 40 and probed and set(probed) == {None}
    with db.session_factory(url)() as session:
        assert sorted(session.execute(text("SELECT n FROM notes")).scalars()) == list(range(40))
