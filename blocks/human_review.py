"""`human.review`: a person approves, edits or rejects a text before the run goes on (deferred).

When a run reaches it, its node waits and a review item appears in the organization's queue
(`Suspend("review", ...)`; the queue lives outside the blocks). The recorded decision is
`{"decision": "approve" | "edit" | "reject", "text", "reviewer", "note"}`; a deadline passed
with `default_action: fail` records `{"error": ...}` instead, which fails the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.base import Block, BlockContext, Execution, Suspend
from blocks.suspends import ReviewRequest, review
from core.errors import MantleError

Action = Literal["approve", "edit", "reject"]
DefaultAction = Literal["approve", "reject", "fail"]
SUSPEND_KIND = ReviewRequest.kind
ALL_ACTIONS: tuple[Action, ...] = ("approve", "edit", "reject")


class ReviewError(MantleError):
    """A recorded decision the block cannot understand."""

    type = "review_error"


class ReviewConfig(BaseModel):
    """What the reviewer is asked to do, and what happens if nobody does it in time."""

    model_config = ConfigDict(extra="forbid")

    instructions: str = Field(default="Check the text before it goes out.", max_length=5000,
                              description="Shown to the reviewer above the text.")
    actions: list[Action] = Field(default_factory=lambda: list(ALL_ACTIONS), min_length=1,
                                  description="What a reviewer may do: approve, edit (then approve), reject.")
    assignee_group: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$",
                                       description="A queue name reviewers can filter on.")
    deadline_s: float | None = Field(default=None, gt=0, le=30 * 86400,
                                     description="Apply `default_action` if nobody decides within this.")
    default_action: DefaultAction = Field(
        default="fail", description="What the deadline does: approve, reject, or fail the node.")

    @field_validator("actions")
    @classmethod
    def _unique(cls, actions: list[Action]) -> list[Action]:
        if len(set(actions)) != len(actions):
            raise ValueError("each action may be listed once")
        return actions


class ReviewInputs(BaseModel):
    """The text to review and what the reviewer should see beside it."""

    text: str = Field(description="The text to approve, edit or reject.")
    context: Any = Field(default=None, description="Anything that helps the reviewer decide (shown as JSON).")


class ReviewOutputs(BaseModel):
    """The decision; `approved` and `rejected` emit only on their branch."""

    text: str = Field(description="The approved text: the original, or the reviewer's edit.")
    decision: str = Field(description="approve, edit or reject.")
    reviewer: str = Field(description="Who decided (`deadline` when the default action was applied).")
    note: str = Field(description="The reviewer's note.")
    approved: str | None = Field(default=None, description="The final text, only when approved or edited.")
    rejected: str | None = Field(default=None, description="The reviewer's note, only when rejected.")


class HumanReviewBlock(Block[ReviewConfig, ReviewInputs, ReviewOutputs]):
    """Holds the run until a person (or the deadline) decides; routes on `approved` / `rejected`."""

    type = "human.review"
    title = "Human review"
    description = ("Waits for a person to approve, edit or reject the text; emits `approved` or "
                   "`rejected` on the taken branch.")
    category = "governance"
    execution = Execution.deferred
    bounded = True
    suspends = (ReviewRequest,)

    def start(self, inputs: ReviewInputs, ctx: BlockContext) -> Suspend:
        """Ask for a review: the queue turns this payload into a review item."""
        return review(self.config, text=inputs.text, actions=list(self.config.actions),
                      context=inputs.context)

    def resume(self, inputs: ReviewInputs, result: Mapping[str, Any], ctx: BlockContext) -> ReviewOutputs:
        """Map the recorded decision to the output ports; only the taken branch is emitted."""
        decision = result.get("decision")
        if decision not in ("approve", "edit", "reject"):
            raise ReviewError(f"unknown review decision {decision!r}")
        original = inputs.text
        text = str(result.get("text", original)) if decision == "edit" else original
        note = str(result.get("note") or "")
        reviewer = str(result.get("reviewer") or "")
        if decision == "reject":
            return ReviewOutputs(text=text, decision=decision, reviewer=reviewer, note=note, rejected=note)
        return ReviewOutputs(text=text, decision=decision, reviewer=reviewer, note=note, approved=text)


BLOCKS = [HumanReviewBlock]
