"""OpenAI's error shape for everything under `/openai/`, so OpenAI's clients read Mantle's errors.

`api/errors.py` (and the middlewares that guard bodies) answer every failure in Mantle's one
shape; for a path under `/openai/` that answer is rewritten on its way out into
`{"error": {"message", "type", "param", "code"}}`, with invalid input as 400 (OpenAI's status for
it, where Mantle says 422). The status and headers (`Retry-After`) are kept otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.openai_api.schemas import ErrorBody
from core.errors import MantleError, NotFound

PREFIX = "/openai/"
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
          404: "invalid_request_error", 409: "invalid_request_error", 413: "invalid_request_error",
          429: "rate_limit_error"}
_CODES = {"unauthorized": "invalid_api_key"}
_WHERE = ("body", "query", "path", "header")

RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Invalid request", 401: "Missing or invalid API key", 403: "The key's role does not allow this",
        404: "No such model (or not in your organization)",
        409: "The Idempotency-Key was used for another request",
        413: "Request body too large", 422: "Never sent: invalid requests are 400",
        429: "Over the organization's quota (see Retry-After)", 503: "The database is unavailable",
    }.items()
}


class ModelNotFound(NotFound):
    """The organization has no deployment of that name."""

    type = "model_not_found"


class QuotaExceeded(MantleError):
    """The organization's quota is used up until the window reopens."""

    status_code = 429
    type = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class OpenAIErrors:
    """ASGI middleware: every error answer under `/openai/` in OpenAI's shape, whoever made it (an
    exception handler, the body limit, the JSON guard). Other answers pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        body: list[bytes] = []

        async def reshape(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                kind = dict(message.get("headers") or []).get(b"content-type", b"")
                if message["status"] >= 400 and kind.startswith(b"application/json"):
                    held = message  # an error: rewritten once its body is complete
                    return
            elif held is not None and message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                status, content = openai_error(held["status"], b"".join(body))
                kept = [(k, v) for k, v in held.get("headers") or [] if k.lower() != b"content-length"]
                await send({**held, "status": status,
                            "headers": [*kept, (b"content-length", str(len(content)).encode())]})
                await send({"type": "http.response.body", "body": content})
                return
            await send(message)

        await self.app(scope, receive, reshape)


def openai_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Mantle's error body (`{"detail": [...]}`) as OpenAI's, with invalid input as 400."""
    try:
        items: list[dict[str, Any]] = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return status, body
    status = 400 if status == 422 else status
    first = items[0] if items else {}
    param = ".".join(str(p) for p in first.get("loc", []) if p not in _WHERE) or None
    message = "; ".join(_said(item) for item in items) or "error"
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = str(first.get("type") or "") or None
    error = {"message": message, "type": kind, "param": param, "code": _CODES.get(code or "", code)}
    return status, json.dumps({"error": error}).encode()


def _said(item: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in item.get("loc", []) if p not in _WHERE)
    return f"{where}: {item.get('msg')}" if where else str(item.get("msg"))
