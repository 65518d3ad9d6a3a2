"""`logic.condition`: route a value to port `true` or `false`."""

from __future__ import annotations

from typing import Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, model_validator

from blocks.base import Block, BlockContext
from core.errors import MantleError
from core.patterns import REGEX_TIMEOUT_S

Operator = Literal[
    "equals", "not_equals", "contains", "not_contains", "greater_than", "less_than",
    "greater_or_equal", "less_or_equal", "matches", "is_empty", "is_not_empty", "is_true",
]
# A hostile pattern must not hold a worker: the `regex` module times a match out (REGEX_TIMEOUT_S).


class ConditionError(MantleError):
    """The comparison cannot be made (incomparable types, a regex that ran too long)."""

    type = "condition_error"


class ConditionConfig(BaseModel):
    """How to test the input value."""

    model_config = ConfigDict(extra="forbid")

    operator: Operator = "equals"
    value: Any = Field(default=None, description="What to compare with (a regex for `matches`).")
    case_sensitive: bool = True

    @model_validator(mode="after")
    def _pattern_compiles(self) -> ConditionConfig:
        if self.operator == "matches":
            if not isinstance(self.value, str):
                raise ValueError("`matches` needs a regular expression string in `value`")
            if len(self.value) > 1000:
                raise ValueError("the regular expression is longer than 1000 characters")
            try:
                regex.compile(self.value)
            except regex.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return self


class ConditionInputs(BaseModel):
    """The value to test."""

    value: Any


class ConditionOutputs(BaseModel):
    """The value, on the taken branch only."""

    true: Any = None
    false: Any = None


def _fold(value: Any, case_sensitive: bool) -> Any:
    return value.casefold() if isinstance(value, str) and not case_sensitive else value


class ConditionBlock(Block[ConditionConfig, ConditionInputs, ConditionOutputs]):
    """Emits its input on `true` or `false`; nodes only reachable from the other are skipped."""

    type = "logic.condition"
    title = "Condition"
    description = "Compares the input with a value or matches a regex; emits on `true` or `false`."
    category = "logic"
    pure = True
    bounded = True
    def test(self, value: Any) -> bool:
        """Whether `value` passes the configured test."""
        cfg = self.config
        left, right = _fold(value, cfg.case_sensitive), _fold(cfg.value, cfg.case_sensitive)
        try:
            match cfg.operator:
                case "equals":
                    return bool(left == right)
                case "not_equals":
                    return bool(left != right)
                case "contains":
                    return right in left
                case "not_contains":
                    return right not in left
                case "greater_than":
                    return bool(left > right)
                case "less_than":
                    return bool(left < right)
                case "greater_or_equal":
                    return bool(left >= right)
                case "less_or_equal":
                    return bool(left <= right)
                case "matches":
                    flags = 0 if cfg.case_sensitive else regex.IGNORECASE
                    return regex.search(cfg.value, str(value), flags, timeout=REGEX_TIMEOUT_S) is not None
                case "is_empty":
                    return value is None or value == "" or value == [] or value == {}
                case "is_not_empty":
                    return not (value is None or value == "" or value == [] or value == {})
                case "is_true":
                    return bool(value)
        except TypeError as exc:
            raise ConditionError(f"cannot apply {cfg.operator!r} to {value!r}: {exc}") from None
        except TimeoutError:
            raise ConditionError("the regular expression took too long") from None
        raise AssertionError(cfg.operator)  # pragma: no cover - Literal is exhaustive

    def run(self, inputs: ConditionInputs, ctx: BlockContext) -> ConditionOutputs:
        value = inputs.value
        return ConditionOutputs(true=value) if self.test(value) else ConditionOutputs(false=value)


BLOCKS = [ConditionBlock]
