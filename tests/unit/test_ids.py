"""Random ids (`core/ids.py`): version-4 UUIDs from the OS's randomness, read a block at a time per
thread; never the same id twice, across threads or in a forked child (a prefork worker, an API
process under `--workers`) that inherited its parent's unread bytes."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from multiprocessing.connection import Connection

from core.ids import CHUNK, random_bytes, random_uuid
from models.base import new_id


def _ids_in_child(pipe: Connection, n: int) -> None:
    pipe.send([random_uuid().hex for _ in range(n)])
    pipe.close()


def test_ids_are_version_4_uuids_never_repeated_across_threads() -> None:
    made: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(into: list[uuid.UUID]) -> None:
        into.extend(new_id() for _ in range(3 * CHUNK // 16))  # past a few blocks of bytes

    threads = [threading.Thread(target=make, args=(ids,)) for ids in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for ids in made for i in ids]
    assert len(every) == 4 * 3 * CHUNK // 16 and len(set(every)) == len(every)
    assert {i.version for i in every} == {4} and {i.variant for i in every} == {uuid.RFC_4122}
    assert len(random_bytes(8)) == 8 and random_bytes(8) != random_bytes(8)


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    random_uuid()  # the parent holds unread bytes when it forks
    receiving, sending = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_ids_in_child, args=(sending, 200))
    child.start()
    from_child = set(receiving.recv())
    child.join(timeout=60)
    from_parent = {random_uuid().hex for _ in range(200)}
    assert child.exitcode == 0 and len(from_child) == 200
    assert from_child.isdisjoint(from_parent)
