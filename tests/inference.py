"""Helpers for the inference tests: the tiny model behind a batching engine, and running requests."""

from __future__ import annotations

from typing import Any

from worker.inference.backends import HFBackend
from worker.inference.batcher import Batcher
from worker.inference.requests import GenerationRequest
from worker.inference.tiny import byte_tokenizer, tiny_gptj
from worker.inference.tokens import Tokenizer

PROMPTS = ["Say hi to Ada", "Say hi to Grace Hopper, please", "Hi",
           "A much longer prompt, with many more bytes"]


def tiny_backend(max_context: int = 4096) -> HFBackend:
    """The tiny random GPT-J on the `hf` backend."""
    model = tiny_gptj()
    return HFBackend(model, Tokenizer.for_model(byte_tokenizer(), model), max_context=max_context)


def request(backend: Any, prompt: str, **options: Any) -> GenerationRequest:
    """A request for `prompt` (end tokens ignored unless `stop_token_ids` is given)."""
    options.setdefault("stop_token_ids", frozenset())
    return GenerationRequest(backend.tokenizer.encode(prompt), **options)


def serve(batcher: Batcher, requests: list[GenerationRequest]) -> list[GenerationRequest]:
    """Submit every request at once and wait for all of them."""
    for r in requests:
        batcher.submit(r)
    for r in requests:
        assert r.done(60), "a request did not finish"
    return requests


def alone(backend: Any, prompt: str, **options: Any) -> GenerationRequest:
    """A request served by an engine of its own (the reference for batched answers)."""
    batcher = Batcher(backend, max_batch_size=1)
    try:
        return serve(batcher, [request(backend, prompt, **options)])[0]
    finally:
        batcher.close()
