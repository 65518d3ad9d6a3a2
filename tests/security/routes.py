"""The API's route table, walked whole (included routers too), and the routes public by design."""

from __future__ import annotations

import re
from typing import Any

# Routes that take no API key on purpose; each is covered by its own tests instead of the sweep:
# health and docs carry no tenant data, the block catalogue is the same for everyone, Twilio signs
# its webhooks with the organization's own token, a share's slug and a webhook trigger's token
# are their capability, the reviewer pages authenticate with a cookie, and the builder's page is
# the same static bundle for everyone (its sign-in link is a one-time capability; what the page
# shows comes from the keyed API, swept here). Accepting an invitation and setting a password
# through a one-time link need no key either: the link's token admits.
PUBLIC_BY_DESIGN = [
    r"/healthz", r"/readyz", r"/metrics", r"/openapi\.json", r"/docs.*", r"/redoc",
    r"/v1/blocks(/\{block_type\})?",
    r"/twilio/.*",
    r"/hooks/.*",
    r"/s/.*",
    r"/review(/.*)?",
    r"/builder(/.*)?",
    r"/v1/invitations/accept", r"/v1/password-reset",
]
PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def is_public(path: str) -> bool:
    """Whether `path` is public by design (see PUBLIC_BY_DESIGN)."""
    return any(re.fullmatch(pattern, path) for pattern in PUBLIC_BY_DESIGN)


def path_params(path: str) -> list[str]:
    """The names of the path's parameters, in order."""
    return PARAM.findall(path)


def _walk(routes: list[Any]) -> list[Any]:
    found = []
    for route in routes:
        nested = getattr(route, "effective_route_contexts", None)
        if nested is not None:  # FastAPI keeps included routers as one entry of the table
            found.extend(_walk(list(nested())))
        elif getattr(route, "routes", None) is not None and getattr(route, "path", None) is None:
            found.extend(_walk(list(route.routes)))
        else:
            found.append(route)
    return found


def every_route(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every HTTP route the app serves, in the OpenAPI schema or not."""
    pairs = set()
    for route in _walk(list(app.routes)):
        path = getattr(route, "path", None)
        for method in getattr(route, "methods", None) or ():
            if path is not None and method != "HEAD":
                pairs.add((method, path))
    return pairs
