"""The Jinja2 environment every template of an app is compiled in: sandboxed, and bounded.

Jinja2's sandbox stops a template from reaching Python's internals (`__class__`, `__globals__`,
`__subclasses__`, unsafe `str.format` fields) and caps `range()`. It does not stop a template
from exhausting a worker: a recursive macro, a string doubled with `~` in a loop or a list
nested in itself a few dozen times does astronomical work in a few characters. So this
environment bounds the work itself (see `blocks/limits.py`), whatever shape it takes:

* every call, macro, filter, test, operator, loop step and output piece charges the node's
  budget of steps and time, so any template stops, with a clear error, within its budget;
* values cannot be changed in place (the immutable sandbox: no `append`, `update`, …), and
  every value a template makes (a call's or a filter's result, an operator's, a `~`, a list,
  tuple or dict literal, each `{{ }}` output) is measured as it would print, shared parts
  counted each time, and refused past `MAX_RESULT_CHARS`; so is the whole output, piece by
  piece as it grows, and every buffer a macro, a `{% set %}` block or a filter block joins;
* macros and recursive loops may nest `MAX_CALL_DEPTH` deep;
* before a call that would build one huge value in a single C step, its arguments are checked:
  numbers over `MAX_RESULT_CHARS` (`'x'.ljust(10**9)`, `|center(10**9)`, a huge format width),
  two large values whose product it would build (`big.replace('a', big)`), `*` and `**` whose
  integer result would pass `MAX_INT_BITS`, arguments together over twice the limit, and the input
  of the few filters that are slow per character (`wordwrap`, `pprint`, `urlize`);
* more than `MAX_LOOP_STEPS` loop iterations in one render, nested loops included.

Constant folding is off (`optimized=False`), so no filter of a template runs while a graph is
only being validated; `lipsum` is gone (it has no use in an app).
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template, nodes, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from blocks.limits import LimitExceeded, charge, measure, within

MAX_RESULT_CHARS = 1_000_000
MAX_EXPONENT = 1000
MAX_LOOP_STEPS = 100_000
MAX_CALL_DEPTH = 60
REMEMBERED = 32
# Python prints no integer of more than 4,300 digits; this bounds arithmetic on bigger ones.
MAX_INT_BITS = 100_000
# Filters whose work per input character is high enough that a million characters would hold a
# worker for seconds in one uninterruptible call.
SLOW_FILTER_CHARS = {"wordwrap": 20_000, "pprint": 100_000, "urlize": 200_000}
_WIDE = re.compile(r"\d{7,}")  # a width or precision of a million or more in a format string


@dataclass(slots=True)
class _Render:
    """What one render has done so far, and the sizes of the last containers it measured."""

    loops: int = 0
    depth: int = 0
    sizes: OrderedDict[int, tuple[Any, int]] = field(default_factory=OrderedDict)


_RENDER: ContextVar[_Render | None] = ContextVar("mantle_template_render", default=None)


def _size(value: Any, limit: int, what: str) -> int:
    """`measure(value)`, remembered for the render's last `REMEMBERED` containers: a loop that
    passes one big list to a filter at every step measures it once. Sound because values cannot
    change in this sandbox (it is immutable), except namespaces, never remembered; the entries
    hold their values, so no id is reused while remembered."""
    render = _RENDER.get()
    if render is None or type(value) not in (list, dict, tuple):
        return measure(value, limit, what=what)
    hit = render.sizes.get(id(value))
    if hit is not None and hit[0] is value:
        render.sizes.move_to_end(id(value))
        size = hit[1]
    else:
        mutable: list[Any] = []
        size = measure(value, max(limit, 2 * MAX_RESULT_CHARS), what=what, mutable=mutable)
        if not mutable:
            render.sizes[id(value)] = (value, size)
            if len(render.sizes) > REMEMBERED:
                render.sizes.popitem(last=False)
    if size > limit:
        raise LimitExceeded(f"{what} would print as more than {limit:,} characters")
    return size


def _check_numbers(values: Iterable[Any]) -> None:
    """Refuse arguments that would let one call allocate a worker's memory away: numbers (also in
    tuples and lists) over `MAX_RESULT_CHARS`, two large sequences together (`big.replace(x, big)`
    or `items|join(big)` make a result as long as their product), and arguments that together
    print to more than twice `MAX_RESULT_CHARS` (`'{}{}…'.format(big, big, …)`)."""
    sizes = []
    total = 0
    for value in values:
        kind = type(value)
        if kind is int:
            if abs(value) > MAX_RESULT_CHARS:
                raise SecurityError(f"the number {value} is larger than {MAX_RESULT_CHARS}")
            continue
        if kind is str:
            sizes.append(len(value))
            total += len(value)
        elif value is None or kind is bool or kind is float:
            continue
        else:
            items = value if isinstance(value, tuple | list) else (value,)
            for item in items:
                if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_RESULT_CHARS:
                    raise SecurityError(f"the number {item} is larger than {MAX_RESULT_CHARS}")
            if isinstance(value, str | list | tuple | dict):
                sizes.append(len(value))
            total += _size(value, 2 * MAX_RESULT_CHARS, "an argument")
        if total > 2 * MAX_RESULT_CHARS:
            raise LimitExceeded(f"the arguments of one call together print to more than "
                                f"{2 * MAX_RESULT_CHARS:,} characters")
    largest = sorted(sizes)[-2:]
    if len(largest) == 2 and largest[0] * largest[1] > 10 * MAX_RESULT_CHARS:
        raise SecurityError(f"values of {largest[0]} and {largest[1]} items together are too large here")


def _sized(value: Any, what: str = "a value") -> Any:
    """`value`, once measured within `MAX_RESULT_CHARS`."""
    _size(value, MAX_RESULT_CHARS, what)
    return value


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate, charging each step to the render's loop budget and the node's work budget."""
    render = _RENDER.get()
    for item in iterable:
        charge()
        if render is not None:
            render.loops += 1
            if render.loops > MAX_LOOP_STEPS:
                raise SecurityError(f"the template looped more than {MAX_LOOP_STEPS} times")
        yield item


def _joined(pieces: Iterable[str]) -> str:
    """`"".join(pieces)`, refusing to pass `MAX_RESULT_CHARS` as the output grows (the whole
    output, and every buffer a macro, `{% set %}` block or filter block joins)."""
    parts = []
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > MAX_RESULT_CHARS:
            raise LimitExceeded(f"the template's output would be longer than {MAX_RESULT_CHARS:,} characters")
        parts.append(piece)
    charge(len(parts) // 4 + 1)  # the work that made each piece was charged as it happened
    return "".join(parts)


@pass_eval_context
def _concat(eval_ctx: EvalContext, *values: Any) -> str:
    """The `~` operator, its operands measured before they are joined."""
    charge()
    total = 0
    for value in values:
        total += len(value) if isinstance(value, str) else _size(value, MAX_RESULT_CHARS, "an operand of ~")
        if total > MAX_RESULT_CHARS:
            raise LimitExceeded(f"`~` would build a text longer than {MAX_RESULT_CHARS:,} characters")
    return markup_join(values) if eval_ctx.autoescape else str_join(values)


def _checked_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    name = fn.__name__.removeprefix("do_")
    slow_limit = SLOW_FILTER_CHARS.get(name)

    @functools.wraps(fn)  # keeps `jinja_pass_arg`, which tells Jinja2 what to pass first
    def checked(*args: Any, **kwargs: Any) -> Any:
        charge()
        _check_numbers([*args, *kwargs.values()])
        if fn.__name__ == "do_format" and args and isinstance(args[0], str) and _WIDE.search(args[0]):
            raise SecurityError("a format width or precision is larger than the limit")
        if slow_limit is not None and any(_size(a, 2 * MAX_RESULT_CHARS, "an argument") > slow_limit
                                          for a in args):
            raise LimitExceeded(f"`{name}` takes at most {slow_limit:,} characters")
        return _sized(fn(*args, **kwargs), f"the result of `{name}`")

    return checked


def _checked_test(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        charge()
        return fn(*args, **kwargs)

    return checked


class BoundedTemplate(Template):
    """A template whose every render has its own loop and call depth count, inside the work
    budget of the node it runs for (or a default one)."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render within the bounds of this module."""
        token = _RENDER.set(_Render())
        try:
            with within():
                return super().render(*args, **kwargs)
        finally:
            _RENDER.reset(token)


class _Bounds(NodeTransformer):
    """Routes loops, `~` and literals of a parsed template through the checks above."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 (Jinja2's visitor naming)
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_mantle_counted", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        first, *rest = node.nodes
        return nodes.Filter(first, "_mantle_concat", rest, [], None, None, lineno=node.lineno)

    def visit_List(self, node: nodes.List) -> nodes.Node:  # noqa: N802
        return self._sized(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:  # noqa: N802
        return self._sized(node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:  # noqa: N802
        if node.ctx != "load":  # an assignment target (`{% for a, b in … %}`) builds nothing
            return self.generic_visit(node)
        return self._sized(node)

    def _sized(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, "_mantle_sized", [], [], None, None, lineno=node.lineno)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The Jinja2 sandbox with the bounds in this module's docstring."""

    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})
    template_class = BoundedTemplate
    concat = staticmethod(_joined)  # how compiled templates join every buffer and the output

    def __init__(self, **options: Any) -> None:
        options.setdefault("finalize", _sized)
        options.setdefault("optimized", False)
        super().__init__(**options)
        self.filters = {name: _checked_filter(fn) for name, fn in self.filters.items()}
        self.filters["_mantle_counted"] = _counted
        self.filters["_mantle_concat"] = _concat
        self.filters["_mantle_sized"] = _sized
        self.tests = {name: _checked_test(fn) for name, fn in self.tests.items()}  # type: ignore[arg-type]
        # Lorem ipsum has no use in an app, and `lipsum(999_999)` writes half a gigabyte.
        self.globals.pop("lipsum", None)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        charge()
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        if isinstance(left, int) and isinstance(right, int) and (
                operator == "**" and left.bit_length() * right > MAX_INT_BITS
                or operator == "*" and left.bit_length() + right.bit_length() > MAX_INT_BITS):
            raise LimitExceeded(f"the result of {operator} would be an integer of more than "
                                f"{MAX_INT_BITS:,} bits")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) \
                        and len(seq) * times > MAX_RESULT_CHARS:
                    raise SecurityError(f"the result would be longer than {MAX_RESULT_CHARS}")
        if operator == "%" and isinstance(left, str):
            _check_numbers((right,))
            if _WIDE.search(left):
                raise SecurityError("a format width or precision is larger than the limit")
        return _sized(super().call_binop(context, operator, left, right), f"the result of {operator}")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: B902
        charge()
        owner = getattr(__obj, "__self__", None)
        _check_numbers([owner, *args, *kwargs.values()])
        render = _RENDER.get()
        nested = render is not None and isinstance(__obj, Macro | LoopContext)
        if nested:
            assert render is not None
            render.depth += 1
            if render.depth > MAX_CALL_DEPTH:
                raise LimitExceeded(f"macros or recursive loops nested more than {MAX_CALL_DEPTH} deep")
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            if nested:
                assert render is not None
                render.depth -= 1
        return _sized(result, "the result of a call")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja2's sandboxed `str.format`, refusing a huge width or precision in the format."""
        if isinstance(getattr(value, "__self__", None), str) and _WIDE.search(value.__self__):
            raise SecurityError("a format width or precision is larger than the limit")
        return super().wrap_str_format(value)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse (for `parse` and `compile` alike), then route loops, `~` and literals through
        the checks of this module."""
        tree = super()._parse(source, name, filename)
        _Bounds().visit(tree)
        return tree
