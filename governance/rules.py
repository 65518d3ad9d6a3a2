"""The configuration of a policy: which rules run, their thresholds and their actions.

The same model is a `governance.policy` block's config and the body of an organization
policy (`/v1/policies`), so a rule that is valid in one place is valid in the other. A rule
left out (or `null`) does not run.
"""

from __future__ import annotations

from typing import Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Action = Literal["allow", "redact", "block", "review"]
Verdict = Literal["allow", "redact", "block", "review"]
# The order in which actions win when several rules fire.
STRENGTH: dict[str, int] = {"allow": 0, "redact": 1, "review": 2, "block": 3}

PiiEntity = Literal[
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS",
    "URL", "CRYPTO", "MAC_ADDRESS", "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE", "US_ITIN",
    "UK_NHS",
]
DEFAULT_ENTITIES: list[PiiEntity] = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE",
                                     "IP_ADDRESS"]
MAX_PATTERN_CHARS = 1000


class Rule(BaseModel):
    """What every rule has: the action taken when it finds something."""

    model_config = ConfigDict(extra="forbid")

    action: Action = "block"


class PiiRule(Rule):
    """Personal data found by Presidio's pattern recognizers (checksums and formats, no NER model)."""

    action: Action = "redact"
    entities: list[PiiEntity] = Field(default_factory=lambda: list(DEFAULT_ENTITIES), min_length=1,
                                      description="Which kinds of personal data to look for.")
    min_score: float = Field(default=0.35, ge=0, le=1,
                             description="Ignore matches Presidio scores below this (phone numbers: 0.4).")


class ToxicityRule(Rule):
    """Insults and profanity, scored 0–1 by `alt-profanity-check`'s linear model."""

    threshold: float = Field(default=0.8, ge=0, le=1, description="Fire at or above this score.")


class DenyListRule(Rule):
    """Words and patterns that must not pass: keywords match whole words, case-insensitively."""

    keywords: list[str] = Field(default_factory=list, max_length=1000,
                                description="Words or phrases, matched case-insensitively as whole words.")
    regexes: list[str] = Field(default_factory=list, max_length=100,
                               description="Regular expressions (case-insensitive), run with a time limit.")

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, keywords: list[str]) -> list[str]:
        cleaned = [k.strip() for k in keywords]
        if any(not k or len(k) > 200 for k in cleaned):
            raise ValueError("each keyword must be 1 to 200 characters (not blank)")
        return cleaned

    @field_validator("regexes")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for index, pattern in enumerate(patterns):
            if not pattern or len(pattern) > MAX_PATTERN_CHARS:
                raise ValueError(f"regexes[{index}] must be 1 to {MAX_PATTERN_CHARS} characters")
            try:
                regex.compile(pattern)
            except regex.error as exc:
                raise ValueError(f"regexes[{index}] is not a valid regular expression: {exc}") from None
        return patterns

    @model_validator(mode="after")
    def _something(self) -> DenyListRule:
        if not self.keywords and not self.regexes:
            raise ValueError("a deny list needs at least one keyword or regex")
        return self


class InjectionRule(Rule):
    """Prompt-injection heuristics (see `governance.injection` for the list)."""

    threshold: float = Field(default=0.5, ge=0, le=1, description="Fire at or above this score.")


class LengthRule(Rule):
    """Upper bounds on the text's size; `redact` truncates it to fit."""

    max_chars: int | None = Field(default=None, ge=1, le=10_000_000)
    max_tokens: int | None = Field(default=None, ge=1, le=10_000_000,
                                   description="Model tokens, estimated (see `governance.length`).")

    @model_validator(mode="after")
    def _a_limit(self) -> LengthRule:
        if self.max_chars is None and self.max_tokens is None:
            raise ValueError("a length rule needs max_chars or max_tokens")
        return self


class ReviewSettings(BaseModel):
    """How a `review` verdict asks a person (see the human review queue)."""

    model_config = ConfigDict(extra="forbid")

    instructions: str = Field(default="A governance policy flagged this text: approve, edit or reject it.",
                              max_length=5000)
    assignee_group: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    deadline_s: float | None = Field(default=None, gt=0, le=30 * 86400)
    default_action: Literal["approve", "reject", "fail"] = Field(
        default="reject", description="What the deadline does if nobody decides.")


class PolicyRules(BaseModel):
    """Every rule of a policy; each is off unless configured."""

    model_config = ConfigDict(extra="forbid")

    pii: PiiRule | None = None
    toxicity: ToxicityRule | None = None
    deny_list: DenyListRule | None = None
    injection: InjectionRule | None = None
    length: LengthRule | None = None
    review: ReviewSettings = Field(default_factory=ReviewSettings)

    def active(self) -> dict[str, Rule]:
        """The configured rules by name."""
        rules = {"pii": self.pii, "toxicity": self.toxicity, "deny_list": self.deny_list,
                 "injection": self.injection, "length": self.length}
        return {name: rule for name, rule in rules.items() if rule is not None}
