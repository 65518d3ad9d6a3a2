"""`twilio.sms_input`: an app started by an SMS to a phone number routed to it.

The inbound webhook (`POST /twilio/sms/{route}`) checks Twilio's signature, stores the message
and starts a run whose inputs are this block's outputs. `history` carries the conversation so
far (the last `history_messages` messages exchanged with the sender, oldest first, each
`{direction, body, at}`), so a prompt can answer in context. The same run can be started
from the API with at least `body` and `from_number`, to try an app without a phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from blocks.base import Block, BlockContext, RunPayload

DEFAULT_HELP = "Reply STOP to stop receiving messages, START to receive them again."


class SmsInputConfig(BaseModel):
    """What the webhook gives the app, and what it answers to HELP."""

    model_config = ConfigDict(extra="forbid")

    history_messages: int = Field(
        default=10, ge=0, le=50, description="How many earlier messages of the conversation `history` holds.")
    help_text: str = Field(default=DEFAULT_HELP, min_length=1, max_length=1600,
                           description="The answer to HELP (no run is started for it).")


class HistoryEntry(BaseModel):
    """One earlier message of the conversation."""

    model_config = ConfigDict(extra="forbid")

    direction: str = Field(pattern=r"^(inbound|outbound)$")
    body: str = Field(max_length=100_000)
    at: str = Field(max_length=64)


class SmsInputs(BaseModel):
    """The message, as the run receives it."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=100_000, description="The text of the message (may be empty with media).")
    from_number: str = Field(min_length=1, max_length=64, description="Who sent it (E.164: +15551234567).")
    to_number: str = Field(default="", max_length=64, description="The routed number it was sent to.")
    message_sid: str = Field(default="", max_length=64, description="Twilio's id of the message.")
    media_urls: list[str] = Field(default_factory=list, max_length=10, description="Attached media (MMS).")
    history: list[HistoryEntry] = Field(default_factory=list, max_length=50,
                                        description="Earlier messages with this sender, oldest first.")


class SmsInputOutputs(BaseModel):
    """The message's parts as ports."""

    body: str
    from_number: str
    to_number: str
    message_sid: str
    media_urls: list[Any]
    history: list[Any]


class SmsInputBlock(Block[SmsInputConfig, RunPayload, SmsInputOutputs]):
    """Starts the app when an SMS arrives at a number routed to it."""

    type = "twilio.sms_input"
    title = "SMS received"
    description = ("Starts the app when an SMS arrives at a phone number routed to it; emits the text, "
                   "the sender, media and the conversation so far.")
    category = "triggers"
    pure = True
    bounded = True
    trigger = True

    def accept(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The run's inputs checked; raises ValidationError naming each problem."""
        return SmsInputs.model_validate(dict(payload)).model_dump()

    def run(self, inputs: RunPayload, ctx: BlockContext) -> SmsInputOutputs:
        return SmsInputOutputs(**self.accept(inputs.model_extra or {}))


BLOCKS = [SmsInputBlock]
