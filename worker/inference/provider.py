"""A provider deployment's call: an OpenAI-compatible Chat Completions endpoint, through the
official `openai` SDK (OpenAI itself, or vLLM, Ollama, TGI, LiteLLM, another Mantle).

It runs in an inference worker's thread, never in a run worker's step. The SDK's HTTP client
goes through `GuardedTransport`, so every request (each retry too) is checked by the SSRF guard
and connected to the address that was checked; the base URL is checked once before anything is
sent, so a refused address fails at once instead of after the SDK's retries. The SDK retries 429
and 5xx answers and lost connections (`max_retries`), honouring Retry-After; whatever still
fails becomes a `CallFailed` with a type a person can act on (`provider_auth`, `unknown_model`,
`context_too_long`, `rate_limited`, ...), never a stack trace. The answer streams: each piece of
text goes to `on_text` as it comes, and the call stops when `stopped()` says its caller left.
Calls carry an `Idempotency-Key` (the run and node, or the API request): a provider that honours
it (Mantle's own OpenAI-compatible API does) answers a resent call without billing it twice. They
also say how many Mantle hops led to them (`X-Mantle-Hops`), so a provider deployment pointing
back at a Mantle deployment that points at it again ends after a few hops instead of looping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from blocks.net_guard import GuardedTransport, NetGuard, Refused
from core import url_scope
from core.storable import storable_text
from inference.deployments import Deployment

MAX_STOPS = 4  # what OpenAI's API accepts
HOPS_HEADER = "X-Mantle-Hops"  # Mantle's provider calls to a Mantle: how many led to this one
MAX_HOPS = 4
CONTEXT_HINTS = ("context_length", "context length", "maximum context", "too many tokens",
                 "prompt is too long")


class CallFailed(Exception):
    """A model call that did not answer: a message for people and a stable type."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True)
class ProviderAnswer:
    """What the provider said, with its usage (estimated when it reported none)."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    usage_reported: bool
    provider_model: str
    time_to_first_token_s: float | None
    generation_s: float


def chat_messages(payload: Mapping[str, Any]) -> list[dict[str, str]]:
    """The request's conversation: its `messages`, or its system prompt and prompt as two turns."""
    if payload.get("messages"):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in payload["messages"]]
    system = payload.get("system")
    found = [{"role": "system", "content": str(system)}] if system else []
    return [*found, {"role": "user", "content": str(payload.get("prompt", ""))}]


def check_credential(deployment: Deployment, allowed_urls: list[str] | tuple[str, ...]) -> None:
    """Refuse to send the credential where its admin did not allow it."""
    target = httpx.URL(f"{(deployment.base_url or '').rstrip('/')}/chat/completions")
    if not url_scope.allows(allowed_urls, target):
        raise CallFailed(f"the credential {deployment.credential!r} may not be sent to "
                         f"{deployment.base_url}; add it to the credential's allowed_urls",
                         "credential_refused")


def call(deployment: Deployment, payload: Mapping[str, Any], *, guard: NetGuard, api_key: str | None,
         on_text: Callable[[str, int], None], stopped: Callable[[], bool],
         idempotency_key: str | None = None) -> ProviderAnswer | None:
    """Ask the provider for the payload's completion; None if `stopped()` ended it first."""
    base_url = deployment.base_url or ""
    try:
        guard.check(base_url)
    except Refused as exc:
        raise CallFailed(exc.message, "url_refused") from None
    # trust_env=False: a proxy from the environment would connect instead of us, unchecked.
    http = httpx.Client(transport=GuardedTransport(guard), trust_env=False, follow_redirects=False,
                        timeout=deployment.timeout_s)
    client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=deployment.max_retries,
                           timeout=deployment.timeout_s, http_client=http)  # type: ignore[arg-type]
    options: dict[str, Any] = {
        "model": deployment.provider_model, "messages": chat_messages(payload), "stream": True,
        "stream_options": {"include_usage": True}, "max_tokens": int(payload.get("max_new_tokens", 256)),
        "temperature": float(payload.get("temperature", 1.0)), "top_p": float(payload.get("top_p", 1.0)),
    }
    stops = list(payload.get("stop") or ())[:MAX_STOPS]
    if stops:
        options["stop"] = stops
    if payload.get("seed") is not None:
        options["seed"] = int(payload["seed"])
    headers = {HOPS_HEADER: str(int(payload.get("hops") or 0) + 1)}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    started = time.monotonic()
    first: float | None = None
    parts: list[str] = []
    pieces, finish, usage, model = 0, "stop", None, deployment.provider_model or ""
    try:
        with client, client.chat.completions.create(**options, extra_headers=headers) as stream:
            for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        first = first if first is not None else time.monotonic()
                        piece = storable_text(choice.delta.content)  # a NUL would fail every write
                        parts.append(piece)
                        pieces += 1
                        on_text(piece, pieces)
                    if choice.finish_reason:
                        finish = choice.finish_reason
                if stopped():
                    return None
    except openai.APIStatusError as exc:
        raise failure(exc, deployment) from None
    except openai.APITimeoutError:
        raise CallFailed(f"the provider at {base_url} did not answer within {deployment.timeout_s:g} s "
                         f"({deployment.max_retries} retries)", "timeout") from None
    except openai.APIConnectionError as exc:
        cause = exc.__cause__
        if isinstance(cause, Refused):
            raise CallFailed(cause.message, "url_refused") from None
        raise CallFailed(f"the provider at {base_url} could not be reached ({deployment.max_retries} "
                         f"retries): {cause or exc}", "provider_unreachable") from None
    except openai.OpenAIError as exc:  # an answer the SDK could not read
        raise CallFailed(f"the provider's answer could not be read: {exc}", "provider_error") from None
    text = "".join(parts)
    ended = time.monotonic()
    return ProviderAnswer(
        text=text, finish_reason=finish,
        prompt_tokens=usage.prompt_tokens if usage else _estimate(chat_messages(payload)),
        completion_tokens=usage.completion_tokens if usage else pieces, usage_reported=usage is not None,
        provider_model=model, time_to_first_token_s=None if first is None else round(first - started, 4),
        generation_s=round(ended - started, 4))


def failure(exc: openai.APIStatusError, deployment: Deployment) -> CallFailed:
    """What a provider's error answer means, for the node's error."""
    body = exc.body if isinstance(exc.body, dict) else {}
    said = str(body.get("message") or exc.message)[:500]
    status, where = exc.status_code, deployment.base_url
    if status in (401, 403):
        key = f"the credential {deployment.credential!r}" if deployment.credential else "no API key"
        return CallFailed(f"the provider at {where} refused {key} ({status}): {said}", "provider_auth")
    if status == 404:
        return CallFailed(f"the provider at {where} has no model {deployment.provider_model!r}: {said}",
                          "unknown_model")
    if status == 429:
        return CallFailed(f"the provider at {where} is rate limiting (429 after {deployment.max_retries} "
                          f"retries): {said}", "rate_limited")
    if status in (400, 413, 422) and (str(body.get("code")) == "context_length_exceeded"
                                      or any(h in said.lower() for h in CONTEXT_HINTS)):
        return CallFailed(f"the prompt is too long for {deployment.provider_model!r}: {said}",
                          "context_too_long")
    if status < 500:
        return CallFailed(f"the provider at {where} refused the request ({status}): {said}",
                          "provider_refused")
    return CallFailed(f"the provider at {where} failed ({status} after {deployment.max_retries} retries): "
                      f"{said}", "provider_error")


def _estimate(messages: list[dict[str, str]]) -> int:
    """About how many tokens the messages are, for a provider that reports no usage."""
    return sum(len(m["content"]) for m in messages) // 4 + 4 * len(messages)
