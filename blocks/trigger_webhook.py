"""`trigger.webhook`: an app started by an HTTP POST to its own unguessable URL.

The URL (`/hooks/{token}`) is made for the app with `POST /v1/apps/{id}/webhook`; a post with a
JSON or form body starts a run of the app's published version. The trigger emits the parsed
`body`, the `query` parameters and the request `headers` it was told to pass on.

With `signature_credential` set (the name of a `webhook_secret` credential), a post must carry
`X-Mantle-Signature: t=<Unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the secret>`;
anything else is refused before the body is read as JSON. The timestamp is signed with the body
so a captured post cannot be sent again later: the API accepts a signature only within a few
minutes of its `t`, and only once (see `api/webhook_inbound.py`). With `respond: output` the
caller waits (up to `wait_s`) and gets the run's outputs instead of a bare 202 and the run id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.base import Block, BlockContext, RunPayload

SIGNATURE_HEADER = "X-Mantle-Signature"
SIGNATURE_FORMAT = 't=<Unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">'
HEADER_NAME = r"^[A-Za-z0-9-]{1,100}$"
_SIGNATURE = re.compile(r"^t=(\d{1,12}),v1=([0-9a-f]{64})$")


@dataclass(frozen=True, slots=True)
class Signature:
    """A parsed `X-Mantle-Signature`: when it was signed, and the HMAC (hex) of `<t>.<body>`."""

    timestamp: int
    mac: str


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Mantle-Signature` a sender computes for `body` sent at `timestamp` (default: now)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},v1={_mac(secret, stamp, body)}"


def parse_signature(header: str | None) -> Signature | None:
    """The header's timestamp and HMAC, or None when it is not in the `t=…,v1=…` form."""
    found = _SIGNATURE.match((header or "").strip().lower().replace(" ", ""))
    return Signature(int(found.group(1)), found.group(2)) if found else None


def signature_matches(secret: str, body: bytes, signature: Signature) -> bool:
    """Whether `signature` is the HMAC of its timestamp and `body` with `secret` (constant time)."""
    return hmac.compare_digest(_mac(secret, signature.timestamp, body).encode(), signature.mac.encode())


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


class WebhookTriggerBlock(Block[WebhookConfig, RunPayload, WebhookOutputs]):
    """Starts the app from a POST to its webhook URL."""

    type = "trigger.webhook"
    title = "Webhook"
    description = "Starts the app from a JSON or form POST to its own URL, optionally HMAC-signed."
    category = "triggers"
    pure = True
    bounded = True
    trigger = True

    def accept(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The run's inputs checked; raises ValidationError on anything but body, query and headers."""
        parsed = WebhookPayload.model_validate(dict(payload))
        wanted = set(self.config.headers)
        parsed.headers = {k.lower(): v for k, v in parsed.headers.items() if k.lower() in wanted}
        return parsed.model_dump()

    def run(self, inputs: RunPayload, ctx: BlockContext) -> WebhookOutputs:
        return WebhookOutputs(**self.accept(inputs.model_extra or {}))


BLOCKS = [WebhookTriggerBlock]
