"""OpenAI's Chat Completions and Models bodies, as far as Mantle supports them.

Unknown fields are ignored, as clients send many a server may not know (`user`, `logprobs: false`);
features Mantle cannot honour with a value that would change the answer (`n` > 1, tools, images)
are refused with a 400 naming the field, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "developer", "user", "assistant"]


class TextPart(BaseModel):
    """A text part of a message's content."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str = Field(max_length=200_000)


class Message(BaseModel):
    """One turn of the conversation."""

    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str | list[TextPart] = Field(description="Text, or a list of text parts (no images).")
    name: str | None = Field(default=None, max_length=64)

    @property
    def text(self) -> str:
        """The turn's text."""
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    """Streaming options."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = Field(default=False, description="A last chunk with the usage and no choices.")


class ChatRequest(BaseModel):
    """`POST /chat/completions`."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=100, description="A deployment name (GET /models).")
    messages: list[Message] = Field(min_length=1, max_length=1000)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192,
                                              description="Wins over max_tokens.")
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    stop: str | list[str] | None = Field(default=None,
                                         description="Up to 4 sequences; the answer ends before one.")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="One choice only.")
    tools: list[Any] | None = Field(default=None, max_length=0, description="Not supported.")

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 4 or any(not s or len(s) > 200 for s in stops):
            raise ValueError("stop takes up to 4 sequences of 1 to 200 characters")
        return value

    @model_validator(mode="after")
    def _a_user_turn(self) -> ChatRequest:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages need at least one user message")
        return self

    def payload(self) -> dict[str, Any]:
        """What the inference worker generates from (the same keys as `llm.prompt`'s request)."""
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return {
            # A developer message is the system prompt of models that know no other.
            "messages": [{"role": "system" if m.role == "developer" else m.role, "content": m.text}
                         for m in self.messages],
            "max_new_tokens": self.max_completion_tokens or self.max_tokens or 256,
            "temperature": self.temperature, "top_p": self.top_p, "top_k": 0, "stop": stops,
            "seed": self.seed, "on_overflow": "reject",
        }


class AssistantMessage(BaseModel):
    """The answer."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """The one choice."""

    index: int = 0
    message: AssistantMessage
    finish_reason: str = Field(description="`stop` (an end token or a stop sequence) or `length`.")
    logprobs: None = None


class Usage(BaseModel):
    """Tokens of the request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """The answer of a request without `stream` (a stream sends `chat.completion.chunk` events)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    """A deployment the organization may use."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = Field(description="`mantle` (the server's settings) or `organization` (its own).")


class ModelList(BaseModel):
    """`GET /models`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    """What went wrong."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail
