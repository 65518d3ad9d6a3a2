"""One generation request as the batching engine sees it: what to generate, and what came of it."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from worker.inference.sampling import SamplingParams

FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(eq=False)
class GenerationRequest:
    """Prompt ids, limits and sampling in; tokens, text, finish reason and timings out.

    The engine thread fills in the outcome; the submitting thread reads `updates` (partial
    text, every `stream_every` tokens) and waits on `done()`.
    """

    prompt_ids: list[int]
    max_new_tokens: int = 64
    params: SamplingParams = field(default_factory=SamplingParams)
    stop: tuple[str, ...] = ()
    stop_token_ids: frozenset[int] | None = None  # None: the model's end-of-sequence tokens
    stream_every: int = 0  # 0: no partial text
    sent_at: float | None = None  # wall-clock time the request was sent (for queue wait)

    generated: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: FinishReason | None = None
    error: str | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    submitted_wall: float = field(default_factory=time.time)
    admitted_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None
    updates: queue.Queue[str] = field(default_factory=queue.Queue)
    streamed: int = 0  # characters of text already sent as updates
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the engine to drop this request from its batch at the next step."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        """Whether `cancel` was called."""
        return self._cancelled.is_set()

    def done(self, timeout: float | None = None) -> bool:
        """Wait until the request finished (or `timeout` passed); returns whether it finished."""
        return self._done.wait(timeout)

    def finish(self, reason: FinishReason, text: str, error: str | None = None) -> None:
        """Record the outcome and wake the waiter (engine side)."""
        self.text, self.finish_reason, self.error = text, reason, error
        self.finished_at = time.monotonic()
        if len(text) > self.streamed and self.stream_every and reason != "error":
            self.updates.put(text[self.streamed:])
            self.streamed = len(text)
        self._done.set()

    def timings(self) -> dict[str, Any]:
        """Queue wait, time to first token and generation time, in seconds."""
        def span(a: float | None, b: float | None) -> float | None:
            return round(b - a, 4) if a is not None and b is not None else None

        wait = span(self.submitted_at, self.admitted_at)
        if self.sent_at is not None and wait is not None:
            # Time in the broker and in this worker's prefetch counts as waiting in the queue too.
            wait = round(max(self.submitted_wall - self.sent_at, 0) + wait, 4)
        return {"queue_wait_s": wait, "time_to_first_token_s": span(self.admitted_at, self.first_token_at),
                "generation_s": span(self.admitted_at, self.finished_at)}
