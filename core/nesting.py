"""How deeply a JSON value or an expression nests, measured without recursion.

Parsers and serializers recurse once per level: Python's JSON encoder, pydantic's serializer
(it gives up past about 255 levels), Jinja's and JMESPath's parsers (a dozen frames per
parenthesis). A value or an expression nested past what they can take was stored and then
failed every read with a 500. Mantle refuses such nesting where it comes in, naming the limit,
so nothing is stored that cannot be read back: request bodies (`api/json_guard.py`), run inputs
(`worker/submit.py`) and graphs (`builder/validation.py`).
"""

from __future__ import annotations

import re
from typing import Any

MAX_BODY_DEPTH = 128  # a JSON request body, wrappers included
MAX_INPUT_DEPTH = 100  # a run's inputs (as deep as a block's outputs may be: blocks/limits.py)
MAX_CONFIG_DEPTH = 32  # a node's config, and the UI fields a builder keeps on a graph
MAX_EXPRESSION_DEPTH = 32  # brackets and template blocks inside one string of a config

_OPEN, _CLOSE = "([{", ")]}"
# A template's block tags nest like brackets: `{% if %}` … `{% endif %}`.
_TAG = re.compile(r"\{%[-+]?\s*(\w+)([^%]*)%\}")
_BLOCK_TAGS = frozenset({"if", "for", "macro", "call", "filter", "with", "block", "autoescape", "trans",
                         "raw"})


def depth(value: Any, stop_past: int | None = None) -> int:
    """How many levels of lists and objects `value` nests (a scalar is 0); counting stops once it
    passes `stop_past`, so a hostile value costs no more than the limit it breaks."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if stop_past is not None and deepest > stop_past:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest


def expression_depth(text: str) -> int:
    """How deeply brackets and template block tags nest in `text` (unbalanced closers count as none)."""
    deepest = level = 0
    for char in text:
        if char in _OPEN:
            level += 1
            deepest = max(deepest, level)
        elif char in _CLOSE:
            level = max(level - 1, 0)
    if "{%" not in text:
        return deepest
    level = 0
    for match in _TAG.finditer(text):
        name, rest = match.group(1), match.group(2)
        if name in _BLOCK_TAGS or (name == "set" and "=" not in rest):  # `{% set x %}…{% endset %}`
            level += 1
            deepest = max(deepest, level)
        elif name.startswith("end"):
            level = max(level - 1, 0)
    return deepest


def strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(dotted path, string) of every string inside `value`, keys excluded."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            found.append((where, item))
        elif isinstance(item, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(item))
    return found
