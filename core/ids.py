"""Random identifiers made without a system call each.

`uuid.uuid4()` reads 16 bytes with `os.urandom`, a system call that lets go of the GIL. A thread
that lets go of it while another thread of its process is busy waits to take it back, up to the
interpreter's switch interval (5 ms): with one busy thread beside it, a `uuid4()` took 427 µs
instead of 2.7. An API process has two busy threads under load (its event loop and the thread a
run starts on), and a run start makes an id for the run and each of its node runs, so that wait
landed on the requests' latency. Here each thread reads 4 KiB of the OS's randomness at a time and
takes its ids from that: the same randomness (the kernel's CSPRNG), one system call per 256 ids.
A forked child starts with no bytes of its parent's (`os.register_at_fork`), so two processes
never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading
import uuid

CHUNK = 4096


class _Pool(threading.local):
    """A thread's unread random bytes."""

    def __init__(self) -> None:
        self.data = b""
        self.at = 0


_pool = _Pool()


def _forget_after_fork() -> None:
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget_after_fork)


def random_bytes(n: int) -> bytes:
    """`n` bytes (at most `CHUNK`) of the OS's randomness, as `os.urandom(n)` gives them."""
    pool = _pool
    start = pool.at
    if start + n > len(pool.data):
        pool.data, start = os.urandom(CHUNK), 0
    pool.at = start + n
    return pool.data[start:start + n]


def random_uuid() -> uuid.UUID:
    """A random UUID (version 4), as `uuid.uuid4()` makes it."""
    return uuid.UUID(bytes=random_bytes(16), version=4)
