"""Refuse JSON bodies whose text no database can store, before any route sees them.

JSON may spell characters that are valid in a Python string but not storable: `\\u0000` (a
NUL; PostgreSQL refuses it in text and JSONB) and lone surrogates (`\\ud800` without its pair;
no UTF-8 encoder accepts them). Typed string fields already refuse lone surrogates, but free-form
JSON (a graph, a run's inputs) carried both to the database, which failed with a 500. A body
nested deeper than the JSON parser's recursion limit was refused with a 400 that did not say why,
and one nested 500 deep was stored, and then every read of it failed to serialize (a 500): bodies
nested past `MAX_BODY_DEPTH` are refused (see `core/nesting.py`).

This middleware parses JSON bodies once more (they are small: `MANTLE_MAX_BODY_BYTES`) and
answers 422 naming the problem. Bodies that are not valid JSON pass through, for the route's own
parser to report.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from core.nesting import MAX_BODY_DEPTH


def unstorable(value: Any, max_depth: int = MAX_BODY_DEPTH) -> str | None:
    """Why a parsed JSON value cannot be stored, or None; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level + 1 > max_depth:
                return f"the JSON body is nested deeper than the limit of {max_depth} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
        elif isinstance(item, str):
            if "\x00" in item:
                return "a string contains a NUL character (\\u0000), which cannot be stored"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a string contains a lone surrogate (\\ud800-\\udfff without its pair)"
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind: bytes = value.split(b";")[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class JsonText:
    """422 for JSON bodies with NUL characters, lone surrogates, or nesting past the parser's limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        problem = None
        try:
            problem = unstorable(json.loads(body)) if body else None
        except RecursionError:
            problem = f"the JSON body is nested deeper than the limit of {MAX_BODY_DEPTH} levels"
        except ValueError:  # not JSON (or not UTF-8): the route's parser says so
            pass
        if problem is not None:
            await error_response(422, [{"loc": ["body"], "msg": problem, "type": "value_error"}])(
                scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
