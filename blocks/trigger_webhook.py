"""`trigger.webhook`: an app started by an HTTP POST to its own unguessable URL.

The URL (`/hooks/{token}`) is made for the app with `POST /v1/apps/{id}/webhook`; a post with a
JSON or form body starts a run of the app's published version. The trigger emits the parsed
`body`, the `query` parameters and the request `headers` it was told to pass on.

With `signature_credential` set (the name of a `webhook_secret` credential), a post must carry
`X-Mantle-Signature: sha256=<hex HMAC-SHA256 of the raw body with the secret>`; anything else
is refused before the body is read as JSON. With `respond: output` the caller waits (up to
`wait_s`) and gets the run's outputs instead of a bare 202 and the run id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.base import Block, BlockContext

SIGNATURE_HEADER = "X-Mantle-Signature"
SIGNATURE_PREFIX = "sha256="
HEADER_NAME = r"^[A-Za-z0-9-]{1,100}$"


def sign(secret: str, body: bytes) -> str:
    """The `X-Mantle-Signature` value for `body` (what a sender computes)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the signature of `body` with `secret` (compared in constant time)."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().lower().encode())


class WebhookConfig(BaseModel):
    """How the webhook checks and answers a post."""

    model_config = ConfigDict(extra="forbid")

    signature_credential: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="Name of a `webhook_secret` credential; posts must then be signed (X-Mantle-Signature).")
    respond: Literal["accepted", "output"] = Field(
        default="accepted", description="`accepted`: 202 and the run id at once; `output`: wait for the run "
                                        "and answer with its outputs.")
    wait_s: float = Field(default=10.0, gt=0, le=30, description="How long `output` waits before a 202.")
    headers: list[str] = Field(default_factory=list, max_length=20,
                               description="Request headers passed on to the app (by name).")

    @field_validator("headers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(HEADER_NAME, name):
                raise ValueError(f"{name!r} is not a header name")
        return [name.lower() for name in value]


class WebhookPayload(BaseModel):
    """A run's inputs as the webhook route builds them."""

    model_config = ConfigDict(extra="forbid")

    body: Any = None
    query: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)


class WebhookOutputs(BaseModel):
    """The request, as the app sees it."""

    body: Any = Field(description="The JSON body, or the form fields as an object.")
    query: dict[str, Any] = Field(description="Query parameters.")
    headers: dict[str, Any] = Field(description="The request headers named in the config (lower-case).")


class WebhookTriggerBlock(Block):
    """Starts the app from a POST to its webhook URL."""

    type = "trigger.webhook"
    title = "Webhook"
    description = "Starts the app from a JSON or form POST to its own URL, optionally HMAC-signed."
    category = "triggers"
    pure = True
    bounded = True
    trigger = True
    Config = WebhookConfig
    Outputs = WebhookOutputs

    config: WebhookConfig

    def accept(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The run's inputs checked; raises ValidationError on anything but body, query and headers."""
        parsed = WebhookPayload.model_validate(dict(payload))
        wanted = set(self.config.headers)
        parsed.headers = {k.lower(): v for k, v in parsed.headers.items() if k.lower() in wanted}
        return parsed.model_dump()

    def run(self, inputs: Mapping[str, Any], ctx: BlockContext) -> Mapping[str, Any]:
        return self.accept(inputs)
