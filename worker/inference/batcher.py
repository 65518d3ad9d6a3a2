"""The batching engine: one thread per resident model decodes every request sent to it.

Dynamic batching: when idle, the thread takes the first request, collects more for up to
`max_wait_ms` or until `max_batch_size`, left-pads them into one batch and prefills it. Each
step picks every row's token with that row's own sampling parameters; a row leaves the batch
when it hits an end token, a stop sequence, its token limit, or is cancelled. With a
reshapable backend the finished rows are cut out of the KV cache (and padding no remaining row
needs with them), and requests that arrived meanwhile are prefilled and merged into the
running batch at a step boundary instead of waiting for it to end. A backend that cannot
reshape (DeepSpeed's injected kernels keep their own cache) keeps finished rows in the batch,
fed padding, until the last one ends; since its shape is fixed, it is decoded one step ahead of
the host (`_run_ahead`), so the device never waits for the host's bookkeeping.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import structlog
import torch

from worker.inference import metrics
from worker.inference.requests import GenerationRequest
from worker.inference.sampling import choose, generator_for

log = structlog.get_logger("mantle.inference")


class Row:
    """A request's place in the running batch."""

    def __init__(self, request: GenerationRequest, device: torch.device) -> None:
        self.request = request
        self.generator = generator_for(request.params, device)
        self.alive = True
        self.longest_stop = max((len(s) for s in request.stop), default=0)


class Batcher:
    """Serves one backend: `submit` from any thread, a single engine thread decodes."""

    def __init__(self, backend: Any, *, name: str = "model", max_batch_size: int = 16,
                 max_wait_ms: float = 5.0, join_running: bool = True) -> None:
        self.backend = backend
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.join_running = join_running and backend.reshapable
        self._pending: queue.Queue[GenerationRequest | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"mantle-batcher-{name}")
        self._stopping = False
        self._thread.start()

    def submit(self, request: GenerationRequest) -> GenerationRequest:
        """Queue a request; wait on `request.done()`."""
        limit = max(self.backend.max_context - len(request.prompt_ids), 0)
        request.max_new_tokens = min(request.max_new_tokens, limit)
        self._pending.put(request)
        return request

    def warm_up(self) -> None:
        """Decode a couple of tokens once, so lazy initialisation (kernels, thread pools, workspaces)
        is not paid by the first real request."""
        request = self.submit(GenerationRequest([self.backend.tokenizer.pad_token_id] * 2, max_new_tokens=2,
                                                stop_token_ids=frozenset()))
        request.done(600)

    def close(self) -> None:
        """Stop the engine thread after the batch it is decoding."""
        self._stopping = True
        self._pending.put(None)
        self._thread.join(timeout=30)

    # -- the engine thread ----------------------------------------------------------------

    def _collect(self, first: GenerationRequest, room: int, wait_s: float) -> list[GenerationRequest]:
        """`first` and whatever else arrives within `wait_s`, up to `room` requests."""
        group = [first]
        deadline = time.monotonic() + wait_s
        while len(group) < room:
            left = deadline - time.monotonic()
            try:
                item = self._pending.get(timeout=left) if left > 0 else self._pending.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stopping = True
                break
            group.append(item)
        return [r for r in group if not self._drop_if_cancelled(r)]

    def _drop_if_cancelled(self, request: GenerationRequest) -> bool:
        if request.cancelled:
            request.finish("cancelled", "")
            return True
        if request.max_new_tokens <= 0:
            request.admitted_at = request.first_token_at = time.monotonic()
            request.finish("length", "")
            return True
        return False

    def _loop(self) -> None:
        # Denormal floats (common with random weights) make fp32 CPU math several times slower;
        # flushing them to zero changes nothing a real model notices. The flag is per thread.
        torch.set_flush_denormal(True)
        while not self._stopping:
            first = self._pending.get()
            if first is None:
                return
            group = self._collect(first, self.max_batch_size, self.max_wait_s)
            if group:
                try:
                    self._run(group)
                except Exception as exc:  # never let one batch kill the model's thread
                    log.exception("batch_failed", model=self.name)
                    for request in group:
                        if not request.done(0):
                            request.finish("error", "", error=f"{type(exc).__name__}: {exc}")

    def _prefill(self, group: list[GenerationRequest]) -> tuple[list[Row], Any, torch.Tensor]:
        now = time.monotonic()
        for request in group:
            request.admitted_at = now
            metrics.QUEUE_WAIT.labels(self.name).observe(now - request.submitted_at)
        logits, state = self.backend.prefill([r.prompt_ids for r in group])
        rows = [Row(r, self.backend.device) for r in group]
        return rows, state, self._step(rows, logits)

    def _run(self, group: list[GenerationRequest]) -> None:
        """Decode one batch until every row in it (joiners included) has finished."""
        started, steps, served = time.monotonic(), 0, len(group)
        rows, state, tokens = self._prefill(group)
        if not self.backend.reshapable and all(r.request.params.repetition_penalty == 1.0 for r in rows):
            steps = self._run_ahead(rows, state, tokens)
            log.debug("batch_done", model=self.name, requests=served, steps=steps,
                      seconds=round(time.monotonic() - started, 3))
            return
        while True:
            live = [i for i, row in enumerate(rows) if row.alive]
            if not live:
                log.debug("batch_done", model=self.name, requests=served, steps=steps,
                          seconds=round(time.monotonic() - started, 3))
                return
            if len(live) < len(rows) and self.backend.select(state, live):
                rows, tokens = [rows[i] for i in live], tokens[live]
            if self.join_running and len(rows) < self.max_batch_size and not self._pending.empty():
                before = len(rows)
                rows, state, tokens = self._join(rows, state, tokens)
                served += len(rows) - before
            metrics.BATCH_SIZE.labels(self.name).observe(sum(r.alive for r in rows))
            steps += 1
            logits = self.backend.decode(state, tokens)
            tokens = self._step(rows, logits)

    def _run_ahead(self, rows: list[Row], state: Any, tokens: torch.Tensor) -> int:
        """Decode a batch that cannot change shape one step ahead of the host; returns the steps.

        Each step's tokens stay on the device and feed the next step directly, so step t+1 is
        queued before step t's tokens are read back: the device does not wait while the host
        records tokens, checks stops and streams text. A row that ends at step t was already
        fed its own token for step t+1 (its output is ignored), then padding; when every row
        ends early, that one step is wasted. Repetition penalties need each row's tokens on the
        host before the next choice, so those batches take the step-by-step loop."""
        device = tokens.device
        pad = self.backend.tokenizer.pad_token_id
        params = [r.request.params for r in rows]
        generators = [r.generator for r in rows]
        alive = torch.tensor([r.alive for r in rows], device=device)
        fed, steps = tokens, 0
        in_flight: tuple[torch.Tensor, Any] | None = None
        while True:
            if in_flight is None:
                more = any(r.alive for r in rows)
            else:  # the step in flight brings each row one token; queue another only if one needs it
                more = any(r.alive and len(r.request.generated) + 1 < r.request.max_new_tokens for r in rows)
            queued: tuple[torch.Tensor, Any] | None = None
            if more:
                metrics.BATCH_SIZE.labels(self.name).observe(sum(r.alive for r in rows))
                steps += 1
                chosen = choose(self.backend.decode(state, fed), params, generators)
                fed = torch.where(alive, chosen, pad)
                queued = _to_host(chosen)
            if in_flight is not None:
                ended = self._record(rows, _wait(in_flight))
                if ended and queued is not None:
                    alive = torch.tensor([r.alive for r in rows], device=device)
                    fed = torch.where(alive, chosen, pad)
            if queued is None or not any(r.alive for r in rows):
                return steps
            in_flight = queued
    def _join(self, rows: list[Row], state: Any, tokens: torch.Tensor) -> tuple[list[Row], Any, torch.Tensor]:
        """Prefill requests waiting now and merge them into the running batch."""
        group = self._collect_now(self.max_batch_size - len(rows))
        if not group:
            return rows, state, tokens
        joined, other, their_tokens = self._prefill(group)
        if not any(r.alive for r in joined):
            return rows, state, tokens
        if not self.backend.merge(state, other):  # cannot happen with a reshapable backend
            raise RuntimeError("the backend refused to merge a batch")
        return rows + joined, state, torch.cat([tokens, their_tokens])

    def _collect_now(self, room: int) -> list[GenerationRequest]:
        group: list[GenerationRequest] = []
        while len(group) < room:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stopping = True
                break
            if not self._drop_if_cancelled(item):
                group.append(item)
        return group

    def _step(self, rows: list[Row], logits: torch.Tensor) -> torch.Tensor:
        """Choose each row's next token and record it; finished rows stop being alive."""
        params = [r.request.params for r in rows]
        seen = None
        if any(p.repetition_penalty != 1.0 for p in params):
            seen = [torch.tensor(r.request.prompt_ids + r.request.generated, device=logits.device)
                    for r in rows]
        chosen = choose(logits, params, [r.generator for r in rows], seen).tolist()
        self._record(rows, chosen)
        # Finished rows of a batch that cannot shrink are fed padding until the batch ends.
        pad = self.backend.tokenizer.pad_token_id
        return torch.tensor([t if r.alive else pad for r, t in zip(rows, chosen, strict=True)],
                            dtype=torch.long, device=logits.device)

    def _record(self, rows: list[Row], tokens: list[int]) -> bool:
        """Append each live row's token (ending rows as they finish); whether any row ended."""
        now = time.monotonic()
        emitted, before = 0, sum(r.alive for r in rows)
        for row, token in zip(rows, tokens, strict=True):
            if row.alive:
                emitted += self._advance(row, int(token), now)
        metrics.TOKENS.labels(self.name).inc(emitted)
        return sum(r.alive for r in rows) < before

    def _advance(self, row: Row, token: int, now: float) -> int:
        """Append one token to a row; returns how many tokens it counted (0 or 1)."""
        request = row.request
        if request.cancelled:
            self._end(row, "cancelled")
            return 0
        if request.first_token_at is None:
            request.first_token_at = now
        ends = request.stop_token_ids if request.stop_token_ids is not None else self.backend.eos_token_ids
        if token in ends:
            self._end(row, "stop")
            return 1
        request.generated.append(token)
        text = None
        if request.stop:
            text = self.backend.tokenizer.decode(request.generated)
            for stop in request.stop:
                at = text.find(stop, max(request.streamed - len(stop), 0))
                if at >= 0:
                    self._end(row, "stop", text[:at])
                    return 1
        if len(request.generated) >= request.max_new_tokens:
            self._end(row, "length", text)
        elif request.stream_every and len(request.generated) % request.stream_every == 0:
            self._stream(row, text)
        return 1

    def _stream(self, row: Row, text: str | None) -> None:
        request = row.request
        text = text if text is not None else self.backend.tokenizer.decode(request.generated)
        # Hold back what could still become a stop sequence or is half a character.
        safe = len(text) - max(row.longest_stop - 1, 0)
        while safe > 0 and text[safe - 1] == "\ufffd":
            safe -= 1
        if safe > request.streamed:
            request.updates.put(text[request.streamed:safe])
            request.streamed = safe

    def _end(self, row: Row, reason: Any, text: str | None = None) -> None:
        row.alive = False
        request = row.request
        final = text if text is not None else self.backend.tokenizer.decode(request.generated)
        request.finish(reason, final)


def _to_host(tokens: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Start copying `tokens` to the host without waiting for the device; see `_wait`."""
    if tokens.device.type != "cuda":
        return tokens, None
    host = torch.empty(tokens.shape, dtype=tokens.dtype, pin_memory=True)
    host.copy_(tokens, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    return host, event


def _wait(in_flight: tuple[torch.Tensor, Any]) -> list[int]:
    """The tokens of a copy started by `_to_host`, once it has landed."""
    host, event = in_flight
    if event is not None:
        event.synchronize()
    tokens: list[int] = host.tolist()
    return tokens
