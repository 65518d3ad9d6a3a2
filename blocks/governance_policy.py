"""`governance.policy`: screen a text with governance rules; pass it on, redact it, ask a person or block.

Its config is a policy's rules (`governance.rules.PolicyRules`: `pii`, `toxicity`,
`deny_list`, `injection`, `length`, each with an action). On `allow` or `redact` it emits the
(redacted) text at once. On `review` it suspends for the human review queue with the text and
the findings; an approval or edit passes the text on, a rejection counts as a block. On `block`
it emits only `blocked` (a message naming the rules) when the graph wires that port, so the app
can answer with a polite refusal; otherwise it raises `PolicyViolation` and the run ends
`blocked`. `verdict` and `findings` are emitted in every case; findings never hold the text
they point at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from blocks.base import Block, BlockContext, Execution, Suspend
from blocks.human_review import ReviewError
from blocks.suspends import ReviewRequest, review
from core.errors import PolicyViolation
from governance.evaluate import Decision, evaluate, load
from governance.rules import PolicyRules


class PolicyInputs(BaseModel):
    """The text to screen."""

    text: str = Field(description="The text to check (a message, a prompt, a model's answer).")


class PolicyOutputs(BaseModel):
    """The screened text and the decision; `text` is not emitted when blocked, `blocked` only then."""

    text: str | None = Field(default=None, description="The text, with `redact` rules applied.")
    verdict: str = Field(default="allow", description="allow, redact, review or block.")
    findings: list[Any] = Field(default_factory=list,
                                description="What the rules found: {rule, kind, start, end, score}.")
    blocked: str | None = Field(default=None, description="Why it was blocked; only when blocked.")


class GovernancePolicyBlock(Block[PolicyRules, PolicyInputs, PolicyOutputs]):
    """Applies governance rules to a text; routes on `blocked` when the graph wires it."""

    type = "governance.policy"
    title = "Governance policy"
    description = ("Detects PII, toxicity, denied words and prompt injection; allows, redacts, "
                   "sends to review or blocks the text.")
    category = "governance"
    execution = Execution.deferred
    suspends = (ReviewRequest,)

    def prepare(self) -> None:
        """Load what the rules need (`governance.evaluate.load`)."""
        load(self.config)

    def decide(self, text: str) -> Decision:
        """The policy's decision on `text`."""
        return evaluate(self.config, text)

    def start(self, inputs: PolicyInputs, ctx: BlockContext) -> Suspend | PolicyOutputs:
        """Decide; only a `review` verdict makes the node wait."""
        decision = self.decide(inputs.text)
        if decision.verdict == "block":
            return self._blocked(decision.summary(), decision.findings, ctx)
        if decision.verdict == "review":
            return review(self.config.review, text=decision.text, actions=["approve", "edit", "reject"],
                          context={"policy": decision.summary()}, findings=decision.findings)
        return PolicyOutputs(text=decision.text, verdict=decision.verdict, findings=decision.findings)

    def resume(self, inputs: PolicyInputs, result: Mapping[str, Any], ctx: BlockContext) -> PolicyOutputs:
        """A reviewer's approval or edit passes the text on; a rejection blocks it."""
        # Evaluation is deterministic: deciding again gives the findings the reviewer saw.
        findings = self.decide(inputs.text).findings
        decision = result.get("decision")
        if decision == "reject":
            note = str(result.get("note") or "").strip()
            return self._blocked("rejected in review" + (f": {note}" if note else ""), findings, ctx)
        if decision not in ("approve", "edit"):
            raise ReviewError(f"unknown review decision {decision!r}")
        return PolicyOutputs(text=str(result.get("text", "")), verdict="review", findings=findings)

    def _blocked(self, reason: str, findings: list[dict[str, Any]], ctx: BlockContext) -> PolicyOutputs:
        message = f"blocked by policy: {reason}"
        if "blocked" in ctx.connected:
            return PolicyOutputs(blocked=message, verdict="block", findings=findings)
        raise PolicyViolation(message)


BLOCKS = [GovernancePolicyBlock]
