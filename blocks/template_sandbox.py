"""The Jinja2 environment every template of an app is compiled in: sandboxed, and bounded.

Jinja2's sandbox stops a template from reaching Python's internals (`__class__`, `__globals__`,
`__subclasses__`, unsafe `str.format` fields) and caps `range()`. It does not stop a template
from exhausting a worker, so this environment also refuses, before the work is done:

* `*` and `**` whose result would be huge (`'a' * 10**9`, `10**10**10`);
* any call or filter given a number larger than `MAX_RESULT_CHARS` (`'x'.ljust(10**9)`,
  `'{:>{}}'.format(1, 10**9)`, `|center(10**9)`) or two large values whose product it would
  build (`big.replace('a', big)`), and `%`-formatting with a huge width;
* more than `MAX_LOOP_STEPS` loop iterations in one render, nested loops included (every
  `{% for %}` iterates through a counter; the budget is per `render` of a template).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from jinja2 import Template, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_RESULT_CHARS = 1_000_000
MAX_EXPONENT = 1000
MAX_LOOP_STEPS = 100_000
_WIDE = re.compile(r"\d{7,}")  # a width or precision of a million or more in a format string
_STEPS: ContextVar[list[int] | None] = ContextVar("mantle_template_steps", default=None)


def _check_numbers(values: Iterable[Any]) -> None:
    """Refuse arguments that would let one call allocate a worker's memory away: numbers (also in
    tuples and lists) over `MAX_RESULT_CHARS`, and two large sequences together (`big.replace(x,
    big)` or `items|join(big)` make a result as long as their product)."""
    sizes = []
    for value in values:
        items = value if isinstance(value, tuple | list) else (value,)
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_RESULT_CHARS:
                raise SecurityError(f"the number {item} is larger than {MAX_RESULT_CHARS}")
        if isinstance(value, str | list | tuple | dict):
            sizes.append(len(value))
    largest = sorted(sizes)[-2:]
    if len(largest) == 2 and largest[0] * largest[1] > 10 * MAX_RESULT_CHARS:
        raise SecurityError(f"values of {largest[0]} and {largest[1]} items together are too large here")


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate, charging each step to the current render's loop budget."""
    budget = _STEPS.get()
    for item in iterable:
        if budget is not None:
            budget[0] += 1
            if budget[0] > MAX_LOOP_STEPS:
                raise SecurityError(f"the template looped more than {MAX_LOOP_STEPS} times")
        yield item


def _checked_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # keeps `jinja_pass_arg`, which tells Jinja2 what to pass first
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_numbers([*args, *kwargs.values()])
        if fn.__name__ == "do_format" and args and isinstance(args[0], str) and _WIDE.search(args[0]):
            raise SecurityError("a format width or precision is larger than the limit")
        return fn(*args, **kwargs)

    return checked


class BoundedTemplate(Template):
    """A template whose every render has its own loop budget."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render with a fresh budget of `MAX_LOOP_STEPS` loop iterations."""
        token = _STEPS.set([0])
        try:
            return super().render(*args, **kwargs)
        finally:
            _STEPS.reset(token)


class BoundedSandbox(SandboxedEnvironment):
    """The Jinja2 sandbox with the bounds in this module's docstring."""

    intercepted_binops = frozenset({"*", "**", "%"})
    template_class = BoundedTemplate

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _checked_filter(fn) for name, fn in self.filters.items()}
        self.filters["_mantle_counted"] = _counted
        # Lorem ipsum has no use in an app, and `lipsum(999_999)` writes half a gigabyte.
        self.globals.pop("lipsum", None)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) \
                        and len(seq) * times > MAX_RESULT_CHARS:
                    raise SecurityError(f"the result would be longer than {MAX_RESULT_CHARS}")
        if operator == "%" and isinstance(left, str):
            _check_numbers((right,))
            if _WIDE.search(left):
                raise SecurityError("a format width or precision is larger than the limit")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: B902
        _check_numbers([getattr(__obj, "__self__", None), *args, *kwargs.values()])
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja2's sandboxed `str.format`, refusing a huge width or precision in the format."""
        if isinstance(getattr(value, "__self__", None), str) and _WIDE.search(value.__self__):
            raise SecurityError("a format width or precision is larger than the limit")
        return super().wrap_str_format(value)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse (for `parse` and `compile` alike), then route every loop's iterable through the
        step counter."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_mantle_counted", [], [], None, None, lineno=loop.lineno)
        return tree
