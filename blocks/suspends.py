"""What a deferred node waits for: one typed payload model per suspend kind, all in this module.

A deferred block's `start` returns `SomeWait(...).suspend()`; the run worker stores the payload
with the node (as JSON) and hands it to the handler registered for its kind (`worker/hooks.py`),
which reads it back with `SomeWait.read(ctx.suspend.payload)`. A block lists the models it may
suspend with in `Block.suspends`, so a worker refuses to start when one of those kinds has no
handler, instead of leaving a node to wait until its timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict

from blocks.base import Suspend


class SuspendPayload(BaseModel):
    """The payload of one kind of wait; `kind` names it (`review`, `inference`, ...)."""

    model_config = ConfigDict(extra="forbid")

    kind: ClassVar[str]

    def suspend(self, *, resume_after_s: float | None = None,
                result: Mapping[str, Any] | None = None) -> Suspend:
        """The `Suspend` a block's `start` returns to wait with this payload (as JSON; a field left
        unset is not stored, and reads back as its default)."""
        return Suspend(self.kind, self.model_dump(mode="json", exclude_unset=True),
                       resume_after_s=resume_after_s, result=result)

    @classmethod
    def read(cls, payload: Mapping[str, Any]) -> Self:
        """The payload a waiting node stored, typed again (for its handler)."""
        return cls.model_validate(dict(payload))


class ReviewRequest(SuspendPayload):
    """A person approves, edits or rejects `text` (`human.review`, a policy's `review` verdict)."""

    kind = "review"

    text: str
    instructions: str
    actions: list[str]
    assignee_group: str | None = None
    deadline_s: float | None = None
    default_action: str = "fail"
    context: Any = None
    findings: list[dict[str, Any]] | None = None  # what sent the text to review (a policy's hits)


class ReviewAsk(Protocol):
    """How a block asks for a review: its config's review settings."""

    @property
    def instructions(self) -> str: ...
    @property
    def assignee_group(self) -> str | None: ...
    @property
    def deadline_s(self) -> float | None: ...
    @property
    def default_action(self) -> str: ...


def review(ask: ReviewAsk, *, text: str, actions: list[str], context: Any = None,
           findings: list[dict[str, Any]] | None = None) -> Suspend:
    """Suspend for the review queue with `text`, as the block's review settings say."""
    shown = {"findings": findings} if findings is not None else {}
    return ReviewRequest(text=text, instructions=ask.instructions, actions=actions,
                         assignee_group=ask.assignee_group, deadline_s=ask.deadline_s,
                         default_action=ask.default_action, context=context, **shown).suspend()


class InferenceRequest(SuspendPayload):
    """A model completes `prompt` (`llm.prompt`); served by the inference workers."""

    # The sampling settings (temperature, stop, fallbacks ...) are `llm.prompt`'s config as it is,
    # read by the inference service; only what routes the request is named here.
    model_config = ConfigDict(extra="allow")

    kind = "inference"

    model: str
    prompt: str


class TimerWait(SuspendPayload):
    """Nothing but time (`flow.wait`): the node resumes by itself at its due time, no handler."""

    kind = "timer"

    seconds: float


class MapWait(SuspendPayload):
    """A `flow.map` node's child runs, one per item (started and collected by the run engine)."""

    kind = "flow.map"

    items: int


class CallWait(SuspendPayload):
    """An `app.call` node's child run of another app (started and collected by the run engine)."""

    kind = "app.call"

    app_id: str
    version: int | Literal["latest"]


KINDS: dict[str, type[SuspendPayload]] = {
    m.kind: m for m in (ReviewRequest, InferenceRequest, TimerWait, MapWait, CallWait)}
