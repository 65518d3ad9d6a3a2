"""Every failure in one shape, `{"detail": [{"loc", "msg", "type"}]}`, mapped in one place."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import MantleError

log = structlog.get_logger("mantle.api")


class ErrorItem(BaseModel):
    """One problem with a request."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: list[ErrorItem]


def error_response(status: int, items: list[dict[str, Any]], headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    """A JSON error response in the one shape."""
    return JSONResponse({"detail": items}, status_code=status, headers=headers)


def _clean(err: dict[str, Any]) -> dict[str, Any]:
    # Never echo the submitted value back: it may be large or carry a secret.
    loc = [p if isinstance(p, str | int) else str(p) for p in err.get("loc", ())]
    return {"loc": loc, "msg": err.get("msg", "invalid"), "type": err.get("type", "invalid")}


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, [_clean(e) for e in exc.errors()])


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers 400 for a body that is not UTF-8; it is bad JSON like any other.
        return error_response(422, [{"loc": ["body"], "msg": "JSON decode error: the body is not UTF-8",
                                     "type": "json_invalid"}])
    msg = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, [{"loc": [], "msg": msg, "type": f"http_{exc.status_code}"}],
                          headers=getattr(exc, "headers", None))


async def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MantleError)
    return error_response(exc.status_code, exc.details(), headers=exc.headers)


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    log.error("database_unavailable", error=str(exc).splitlines()[0])
    return error_response(503, [{"loc": [], "msg": "the database is unavailable; try again shortly",
                                 "type": "unavailable"}], headers={"Retry-After": "2"})


async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
    # The database refused a value (a NUL character in a form field, say): the caller's input.
    assert isinstance(exc, DataError)
    reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "refused by the database"
    log.warning("value_refused_by_database", error=reason)
    return error_response(422, [{"loc": ["body"], "msg": f"a value cannot be stored: {reason}",
                                 "type": "value_error"}])


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return error_response(500, [{"loc": [], "msg": "internal error", "type": "internal"}])


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(MantleError, _domain)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(Exception, _unexpected)


# Routes that read a run: one a retention policy deleted answers 410 (models/retention.py).
PRUNED_RESPONSES: dict[int | str, dict[str, Any]] = {
    410: {"model": ErrorBody, "description": "The run was deleted by a retention policy (when, and which)"}}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "Missing or invalid API key", 403: "The key's role does not allow this",
        404: "Not found (or not in your organization)", 409: "Conflicts with the current state",
        413: "Request body too large", 422: "Invalid request",
    }.items()
}
