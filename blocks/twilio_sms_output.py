"""`twilio.sms_output`: send the app's answer by SMS.

A body over `max_chars` is split into several messages (at most `max_parts`, the last one
truncated) or truncated, as configured; the node's outputs say which. The sending itself is
done by the worker's SMS service (`ctx.services["sms"]`), which records every part under the
node's idempotency key (`run_id:node_id`) before it calls Twilio, so a retried node never
sends twice. When the run was started by an SMS whose webhook is still waiting, the reply
goes back inline in the webhook's TwiML answer instead of through the REST API.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from blocks.base import Block, BlockContext
from core.errors import MantleError

TWILIO_MAX_CHARS = 1600  # Twilio refuses longer bodies
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One message for the SMS service to deliver, already fitted into parts."""

    org_id: uuid.UUID
    app_id: uuid.UUID
    run_id: uuid.UUID
    node_id: str
    idempotency_key: str
    to: str
    from_number: str | None
    parts: tuple[str, ...]


class SmsSender(Protocol):
    """What the worker provides at `ctx.services["sms"]`."""

    def send(self, message: OutgoingSms) -> Mapping[str, Any]:
        """Deliver once per idempotency key; returns `delivery`, `status` and `message_sids`."""
        ...


class SmsOutputConfig(BaseModel):
    """Who the message is from and what happens to a long body."""

    model_config = ConfigDict(extra="forbid")

    from_number: str = Field(default="", max_length=64,
                             description="Sender; default: the number the conversation came in on, "
                                         "else a number routed to the app.")
    max_chars: int = Field(default=TWILIO_MAX_CHARS, ge=10, le=TWILIO_MAX_CHARS,
                           description="Longest body of one message.")
    on_long: Literal["split", "truncate"] = Field(default="split",
                                                  description="Split a longer body into several "
                                                              "messages, or cut it.")
    max_parts: int = Field(default=3, ge=1, le=10, description="At most this many messages when splitting.")


class SmsOutputInputs(BaseModel):
    """The message."""

    to: str = Field(description="Recipient, E.164 (wire `from_number` of the SMS trigger here).")
    body: str = Field(description="The text to send.")
    from_number: str | None = Field(default=None, description="Sender; overrides the config.")


class SmsOutputOutputs(BaseModel):
    """How it went."""

    delivery: str = Field(description="`inline` (in the webhook's answer), `rest` or `opted_out`.")
    status: str
    message_sids: list[Any]
    parts: int
    truncated: bool
    chars: int


def fit(body: str, max_chars: int, on_long: str, max_parts: int) -> tuple[list[str], bool]:
    """The body as message parts of at most `max_chars`, and whether anything was cut."""
    if len(body) <= max_chars:
        return [body], False
    if on_long == "truncate":
        return [body[: max_chars - 1].rstrip() + ELLIPSIS], True
    parts: list[str] = []
    rest = body
    while rest and len(parts) < max_parts:
        if len(rest) <= max_chars:
            parts.append(rest)
            rest = ""
            break
        if len(parts) == max_parts - 1:
            parts.append(rest[: max_chars - 1].rstrip() + ELLIPSIS)
            return parts, True
        cut = rest.rfind(" ", max_chars // 2, max_chars + 1)  # prefer a word boundary
        cut = cut if cut > 0 else max_chars
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return parts, False


class SmsOutputBlock(Block[SmsOutputConfig, SmsOutputInputs, SmsOutputOutputs]):
    """Sends a text message through Twilio (or inline in the webhook's answer)."""

    type = "twilio.sms_output"
    title = "Send SMS"
    description = "Sends an SMS through Twilio, once per run; long bodies are split or truncated."
    category = "outputs"
    side_effects = True

    def run(self, inputs: SmsOutputInputs, ctx: BlockContext) -> SmsOutputOutputs:
        sender: SmsSender | None = ctx.services.get("sms")
        if sender is None:
            raise MantleError("this worker has no SMS service (ctx.services['sms'])")
        body = inputs.body
        to = inputs.to.strip()
        if not body.strip():
            raise MantleError("the message body is empty", loc=["body"])
        if not to:
            raise MantleError("the recipient (`to`) is empty", loc=["to"])
        parts, truncated = fit(body, self.config.max_chars, self.config.on_long, self.config.max_parts)
        sender_number = inputs.from_number or self.config.from_number or None
        result = sender.send(OutgoingSms(
            org_id=ctx.org_id, app_id=ctx.app_id, run_id=ctx.run_id, node_id=ctx.node_id,
            idempotency_key=ctx.idempotency_key, to=to, from_number=sender_number, parts=tuple(parts)))
        return SmsOutputOutputs(delivery=result["delivery"], status=result["status"],
                                message_sids=list(result.get("message_sids", [])), parts=len(parts),
                                truncated=truncated, chars=len(body))


BLOCKS = [SmsOutputBlock]
