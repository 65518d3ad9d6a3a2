"""Domain exceptions, raised by any layer and mapped to HTTP in one place (`api/errors.py`)."""

from __future__ import annotations

from typing import Any


class MantleError(Exception):
    """Base of every error Mantle reports to a caller."""

    status_code = 400
    type = "mantle_error"
    headers: dict[str, str] | None = None  # extra response headers (Retry-After, say)

    def __init__(self, message: str, *, loc: list[str | int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc or []

    def details(self) -> list[dict[str, Any]]:
        """The error in the one shape callers see: a list of `{loc, msg, type}`."""
        return [{"loc": self.loc, "msg": self.message, "type": self.type}]


class NotFound(MantleError):
    """The object does not exist, or belongs to another organization (never say which)."""

    status_code = 404
    type = "not_found"


class Conflict(MantleError):
    """The request contradicts the current state (a duplicate, a stale revision)."""

    status_code = 409
    type = "conflict"


class Forbidden(MantleError):
    """The caller is known but its role does not allow this."""

    status_code = 403
    type = "forbidden"


class InvalidRequest(MantleError):
    """The request is well formed but its content cannot be accepted."""

    status_code = 422
    type = "invalid"


class ContractBroken(MantleError):
    """A block did not keep its declared contract (an output of the wrong type, a required one missing,
    a wait no handler takes): a fault of the block, reported in the node's trace."""

    type = "contract_broken"


class GraphInvalid(MantleError):
    """A graph that must be valid (to publish, run or import) has problems."""

    status_code = 422
    type = "graph_invalid"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__(f"the graph has {len(problems)} problem(s)")
        self.problems = problems

    def details(self) -> list[dict[str, Any]]:
        return [
            {
                "loc": ["graph", *(x for x in (p.get("node_id"), p.get("port")) if x)],
                "msg": p["message"],
                "type": f"graph.{p['code']}",
                **p,
            }
            for p in self.problems
        ]


class PolicyViolation(MantleError):
    """A governance rule blocked the run; the run ends `blocked`, not `failed`."""

    status_code = 422
    type = "blocked"


class InvalidInputs(MantleError):
    """A run's inputs do not match the app's input fields."""

    status_code = 422
    type = "invalid_inputs"

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, i['loc']))}: {i['msg']}" for i in items))
        self.items = items

    def details(self) -> list[dict[str, Any]]:
        return self.items


class TooLarge(MantleError):
    """A value is over its size limit."""

    status_code = 413
    type = "too_large"


class Gone(MantleError):
    """The object existed but is no longer available (an expired share link)."""

    status_code = 410
    type = "gone"


class RateLimited(MantleError):
    """Too many requests: try again after `retry_after` seconds."""

    status_code = 429
    type = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, loc: list[str | int] | None = None) -> None:
        super().__init__(message, loc=loc)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}
