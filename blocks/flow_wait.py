"""`flow.wait`: pause a run for a while, then pass the value on (a deferred block).

The node is a timer (`Suspend.resume_after_s`): its due time is stored with the node and the
run's `wake_at`, where the reaper finds it even if every worker and message was lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from blocks.base import Block, BlockContext, Execution, Suspend
from blocks.suspends import TimerWait


class WaitConfig(BaseModel):
    """How long to wait."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=1.0, ge=0, le=30 * 86400)


class WaitInputs(BaseModel):
    """The value to pass on."""

    value: Any


class WaitOutputs(BaseModel):
    """The same value, later."""

    value: Any


class WaitBlock(Block[WaitConfig, WaitInputs, WaitOutputs]):
    """Suspends its node for `seconds` without holding a worker, then emits its input."""

    type = "flow.wait"
    title = "Wait"
    description = "Pauses the run for a number of seconds without holding a worker, then passes the value on."
    category = "logic"
    execution = Execution.deferred
    bounded = True
    suspends = (TimerWait,)

    def start(self, inputs: WaitInputs, ctx: BlockContext) -> Suspend:
        return TimerWait(seconds=self.config.seconds).suspend(resume_after_s=self.config.seconds,
                                                              result={"value": inputs.value})

    def resume(self, inputs: WaitInputs, result: Mapping[str, Any], ctx: BlockContext) -> WaitOutputs:
        return WaitOutputs(value=result.get("value"))


BLOCKS = [WaitBlock]
