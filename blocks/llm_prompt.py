"""`llm.prompt`: generate text with a language model served by Mantle's inference workers (deferred):
a model Mantle hosts, or a provider's (an OpenAI-compatible API) called by those workers.

Its template (Jinja2, sandboxed) is rendered with the node's inputs, one input port per
variable; in chat mode the text becomes the user's turn of the model's chat template, after an
optional system prompt. `start` suspends the node with kind `inference` and the request as the
payload; an inference worker generates and records `{"text", "finish_reason", "prompt_tokens",
"completion_tokens", "timing", ...}` (or `{"error"}`), and `resume` emits the outputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from blocks.base import Block, BlockContext, Execution, Port, PortsFromConfig, Suspend, port_values
from blocks.suspends import InferenceRequest
from blocks.text_template import TemplateText, render_template, template_ports
from core.errors import MantleError
from inference.deployments import DEFAULT_MODEL, NAME_PATTERN

SUSPEND_KIND = InferenceRequest.kind


class PromptConfig(BaseModel):
    """Which model, what to ask it, and how to sample its answer."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default=DEFAULT_MODEL, pattern=NAME_PATTERN,
                       description="A model deployment name (see GET /v1/models).")
    template: TemplateText = "{{ text }}"
    chat: bool = Field(default=True, description="Send the text as a user turn of the model's chat template.")
    system: str | None = Field(default=None, max_length=8_000, description="System prompt (chat mode).")
    max_new_tokens: int = Field(default=256, ge=1, le=8192)
    temperature: float = Field(default=0.7, ge=0, le=2, description="0 always takes the most likely token.")
    top_p: float = Field(default=0.95, gt=0, le=1)
    top_k: int = Field(default=50, ge=0, le=10_000, description="0 turns top-k off.")
    repetition_penalty: float = Field(default=1.0, ge=0.5, le=2)
    stop: list[str] = Field(default_factory=list, max_length=8,
                            description="Generation ends before the first of these strings.")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1,
                             description="Same seed, same prompt: same text (when sampling).")
    on_overflow: Literal["truncate", "reject"] = Field(
        default="truncate",
        description="A prompt longer than the model's context: drop its beginning, or fail.")
    fallbacks: list[str] = Field(default_factory=list, max_length=4, description=(
        "Deployments tried in order when `model` fails in a way its own retries cannot fix (a refused "
        "key, an unknown model, a prompt too long, rate limited, down); the trace names who answered."))

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: list[str]) -> list[str]:
        if any(not s or len(s) > 200 for s in value):
            raise ValueError("each stop sequence must be 1 to 200 characters")
        return value

    @field_validator("model")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("models")
        if known is not None and value not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ValueError(f"unknown model deployment {value!r}; known: {names}")
        return value

    @field_validator("fallbacks")
    @classmethod
    def _known_fallbacks(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for name in value:
            if not re.fullmatch(NAME_PATTERN, name):
                raise ValueError(f"{name!r} is not a deployment name")
            cls._known(name, info)
        return value


class PromptInputs(PortsFromConfig):
    """The values the prompt template reads, one port per variable."""


class PromptOutputs(BaseModel):
    """The generated text and what it cost."""

    text: str = Field(description="The generated text (without the stop sequence).")
    finish_reason: str = Field(description="`stop` (an end token or stop sequence) or `length`.")
    prompt_tokens: int
    completion_tokens: int


class InferenceError(MantleError):
    """The model's result could not be understood."""

    type = "inference_error"


class PromptBlock(Block[PromptConfig, PromptInputs, PromptOutputs]):
    """Renders its template and has a model served by Mantle complete it."""

    type = "llm.prompt"
    title = "Prompt a model"
    description = "Renders a prompt template and generates text with a language model (streamed live)."
    category = "ai"
    execution = Execution.deferred
    bounded = True
    suspends = (InferenceRequest,)
    dynamic_ports = "One input port per variable the template reads."

    def input_ports(self) -> dict[str, Port]:
        return template_ports(self.config.template)

    def start(self, inputs: PromptInputs, ctx: BlockContext) -> Suspend:
        """Render the prompt and ask an inference worker for the completion."""
        prompt = render_template(self.config.template, port_values(inputs))
        request = self.config.model_dump(exclude={"template"})
        return InferenceRequest(**request, prompt=prompt).suspend()

    def resume(self, inputs: PromptInputs, result: Mapping[str, Any], ctx: BlockContext) -> PromptOutputs:
        """The recorded completion as output ports."""
        try:
            return PromptOutputs(text=str(result["text"]), finish_reason=str(result["finish_reason"]),
                                 prompt_tokens=int(result["prompt_tokens"]),
                                 completion_tokens=int(result["completion_tokens"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InferenceError(f"the inference result lacks {exc}") from None


BLOCKS = [PromptBlock]
