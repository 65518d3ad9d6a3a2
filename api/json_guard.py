"""Refuse JSON bodies whose text no database can store, before any route sees them.

JSON may spell characters that are valid in a Python string but not storable: `\\u0000` (a
NUL; PostgreSQL refuses it in text and JSONB) and lone surrogates (`\\ud800` without its pair;
no UTF-8 encoder accepts them). Typed string fields already refuse lone surrogates, but free-form
JSON (a graph, a run's inputs) carried both to the database, which failed with a 500. A body
nested deeper than the JSON parser's recursion limit was refused with a 400 that did not say why.

This middleware parses JSON bodies once more (they are small: `MANTLE_MAX_BODY_BYTES`) and
answers 422 naming the problem. Bodies that are not valid JSON pass through, for the route's own
parser to report.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response


def unstorable(value: Any) -> str | None:
    """Why a parsed JSON value cannot be stored, or None; iterative, so any depth is safe."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
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
            problem = "the JSON body is nested too deeply"
        except ValueError:  # not JSON (or not UTF-8): the route's parser says so
            pass
        if problem is not None:
            await error_response(422, [{"loc": ["body"], "msg": problem, "type": "value_error"}])(
                scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
