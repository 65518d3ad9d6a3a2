"""Bounds on the work one block may do and on the size of the values it makes.

A builder's template or JMESPath expression is a small program, and a small program can do an
enormous amount of work: a recursive macro doubles its calls with each level, `~` doubles a
string with each loop step, `[@,@]` doubles a value's printed size with each pipe. Checking the
arguments of a few operations catches only the shapes someone thought of, so this module bounds
the work itself, whatever its shape:

* a `Budget` of steps and a deadline, set per node by the executor (`budget`); the evaluators
  (the template sandbox, the JMESPath interpreter) `charge` it as they go: every call, filter,
  operator, loop step and output piece, every JMESPath node visited, every item `measure` walks.
  A bomb stops itself within its budget, wherever the work happens;
* `measure`, the size a value would have once printed or serialised, counted without doing
  either: a shared part counts each time it would be printed (`[a, a]` is twice `a`), with a memo
  so the count stays linear in the objects that exist, and nesting is bounded.

The deadline is sticky: once passed, every later charge raises again, so a block that swallows
one `OutOfTime` still stops at its next step, and the executor reads `Budget.timed_out` instead
of trusting whatever exception the block let through.
"""

from __future__ import annotations

import time
from collections.abc import ItemsView, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2.utils import Namespace

from core.errors import MantleError

MAX_STEPS = 250_000
MAX_CHARS = 1_000_000
MAX_DEPTH = 100
DEFAULT_SECONDS = 10.0
_ITEMS_PER_STEP = 16  # walking one item of a value is far cheaper than one template operation
_CYCLE = 5  # a value that contains itself prints the reference back as `[...]`


class LimitExceeded(MantleError):
    """A block's work or one of its values passed a limit; the same input always fails the same way."""

    type = "limit_exceeded"


class OutOfTime(MantleError):
    """A block was still working when its time ran out."""

    type = "timeout"


@dataclass(slots=True)
class Budget:
    """Steps of work and time left to one block's execution."""

    seconds: float | None = None
    steps: int = MAX_STEPS
    used: int = 0
    timed_out: bool = False
    deadline: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.seconds is not None:
            self.deadline = time.monotonic() + self.seconds

    def charge(self, steps: int = 1) -> None:
        """Count `steps` of work; raises once the steps or the time are spent."""
        self.used += steps  # (`charge` below inlines this for speed)
        if self.used > self.steps:
            raise LimitExceeded(f"more than {self.steps:,} steps of work (a loop, a recursion or a "
                                "value that grows too much)")
        if self.deadline is not None and (self.timed_out or time.monotonic() > self.deadline):
            self.timed_out = True
            raise OutOfTime(f"still working after {self.seconds:g} s")


_CURRENT: ContextVar[Budget | None] = ContextVar("mantle_work_budget", default=None)


@contextmanager
def budget(seconds: float | None = None, steps: int = MAX_STEPS) -> Iterator[Budget]:
    """A fresh budget for the work done inside the block (a node's execution)."""
    new = Budget(seconds=seconds, steps=steps)
    token = _CURRENT.set(new)
    try:
        yield new
    finally:
        _CURRENT.reset(token)


@contextmanager
def within() -> Iterator[Budget]:
    """The budget already in force, or a default one (a template rendered outside any node)."""
    found = _CURRENT.get()
    if found is not None:
        yield found
        return
    with budget(DEFAULT_SECONDS) as new:
        yield new


def charge(steps: int = 1) -> None:
    """Charge the budget in force, if any."""
    found = _CURRENT.get()
    if found is not None:
        found.used += steps
        if found.used > found.steps or found.deadline is not None:
            found.charge(0)


def _scalar_size(value: Any) -> int | None:
    """The printed size of a value with no parts, or None for a container."""
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) + 2
    if kind is int:
        return int(value.bit_length() * 3 // 10 + 2)  # about its decimal digits
    if value is None or kind is bool or kind is float:
        return 5
    if kind in _CONTAINERS or isinstance(value, Namespace):
        return None
    if isinstance(value, str | bytes):  # Markup and other subclasses
        return len(value) + 2
    if isinstance(value, int):
        return value.bit_length() * 3 // 10 + 2
    if isinstance(value, list | tuple | dict | set | frozenset):
        return None
    return 1  # an object the sandbox lets a template hold prints as a short fixed text


_CONTAINERS = frozenset({list, tuple, dict, set, frozenset, type({}.keys()), type({}.values()),
                         type({}.items())})


def _parts(value: Any) -> Iterator[Any]:
    if isinstance(value, Namespace):
        value = value._Namespace__attrs  # what its repr prints
    if isinstance(value, dict):
        yield from value.keys()
        yield from value.values()
    elif isinstance(value, ItemsView):
        for key, item in value:
            yield key
            yield item
    else:
        yield from value


def measure(value: Any, limit: int = MAX_CHARS, max_depth: int = MAX_DEPTH, what: str = "a value",
            mutable: list[Any] | None = None) -> int:
    """About the number of characters `value` prints or serialises to, counting each shared part as
    often as it appears; raises LimitExceeded past `limit` or `max_depth` levels of nesting.

    Iterative (any depth is safe) and memoised by object, so it costs one pass over the distinct
    objects however many times they are shared. Namespaces met on the way are added to `mutable`
    (a template can change them, so a size that counts one is only true for now)."""
    size = _scalar_size(value)
    if size is not None:
        if size > limit:
            raise LimitExceeded(f"{what} of {size:,} characters is larger than the limit of {limit:,}")
        return size
    done: dict[int, tuple[int, int]] = {}  # id -> (size, levels)
    open_: set[int] = set()  # on the path being walked: met again, it is a cycle
    keep: list[Any] = []  # holds every object measured, so no id is reused by a new one meanwhile
    walked = 0
    # (value, None) to visit; (value, (size of its scalar parts, its container parts)) to finish
    stack: list[tuple[Any, tuple[int, list[Any]] | None]] = [(value, None)]
    while stack:
        item, pending = stack.pop()
        key = id(item)
        if pending is None:
            if key in done or key in open_:
                continue
            open_.add(key)
            keep.append(item)
            if mutable is not None and isinstance(item, Namespace):
                mutable.append(item)
            scalars, containers = 2, []
            for part in _parts(item):
                walked += 1
                part_size = _scalar_size(part)
                if part_size is None:
                    containers.append(part)
                else:
                    scalars += part_size + 2
                    if scalars > limit:
                        raise LimitExceeded(f"{what} would print as more than {limit:,} characters")
            stack.append((item, (scalars, containers)))
            stack.extend((p, None) for p in containers)
            continue
        total, levels = pending[0], 1
        for part in pending[1]:
            part_size, part_levels = done.get(id(part), (_CYCLE, 0))
            levels = max(levels, part_levels + 1)
            total += part_size + 2
            if total > limit:
                raise LimitExceeded(f"{what} would print as more than {limit:,} characters")
        if levels > max_depth:
            raise LimitExceeded(f"{what} is nested more than {max_depth} levels deep")
        open_.discard(key)
        done[key] = (total, levels)
    charge(walked // _ITEMS_PER_STEP + 1)
    return done[id(value)][0]
