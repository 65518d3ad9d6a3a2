"""Shared web apps: the public pages under `/s/{slug}`, their JSON twin and their security headers.

Anyone with a share's link can use its app without an account. This surface shows a
share's app name, description, form and the outcome of the runs it started, and nothing
else: no trace, no other run, no other organization, no API key.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.public import json_api, pages
from api.public.headers import PublicHeaders
from api.public.tokens import Tokens


def install(app: FastAPI) -> None:
    """Serve the public pages on `app` (call after `app.state.settings` is set)."""
    app.state.share_tokens = Tokens(app.state.settings.secret_key)
    app.include_router(pages.router)
    app.include_router(json_api.router)
    app.add_middleware(PublicHeaders)
