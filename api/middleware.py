"""ASGI middleware: a body-size limit, request metrics and a request id on every log line."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.threads import Serving

HTTP_REQUESTS = Counter("mantle_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("mantle_http_request_seconds", "HTTP request duration", ["method", "route"],
                         buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class BodyTooLarge(Exception):
    """The request body went past the limit while streaming in."""


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, by header or while they stream in."""

    def __init__(self, app: ASGIApp, max_bytes: int, uploads: tuple[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # (regex, limit): paths that take files (a knowledge base's documents) get their own limit.
        self.uploads = (re.compile(uploads[0]), uploads[1]) if uploads else None

    def _too_large(self, limit: int) -> Any:
        return error_response(413, [{"loc": ["body"], "type": "too_large",
                                     "msg": f"request body is larger than {limit} bytes"}])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        if self.uploads is not None and self.uploads[0].fullmatch(scope.get("path", "")):
            limit = self.uploads[1]
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    await self._too_large(limit)(scope, receive, send)
                    return
        seen = 0
        exceeded = started = replaced = False

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started, replaced
            # FastAPI turns an error while reading the body into its own 400; answer 413 instead.
            if message["type"] == "http.response.start" and exceeded and not started:
                replaced = True
                started = True
                await self._too_large(limit)(scope, receive, send)
            if replaced:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(limit)(scope, receive, send)


class RequestContext:
    """Bind a request id to the logs, record metrics per route template, and count the requests
    being served (`serving`: see `api.threads.alone`)."""

    def __init__(self, app: ASGIApp, serving: Serving | None = None) -> None:
        self.app = app
        self.serving = serving or Serving()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        start = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        self.serving.now += 1
        try:
            await self.app(scope, receive, capture)
        finally:
            self.serving.now -= 1
            # FastAPI 0.16x keeps an included router whole: the matched route's own path lacks the
            # include prefix (`/v1`); the effective route context has the full template.
            effective = (scope.get("fastapi") or {}).get("effective_route_context")
            path = getattr(effective, "path", None) or getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], path, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], path).observe(time.perf_counter() - start)
            structlog.contextvars.unbind_contextvars("request_id")
