"""Choosing the next token of every row of a batch, each row with its own sampling parameters.

Greedy rows (temperature 0) take the arg-max. Sampling rows apply temperature, top-k and top-p
as one vectorised pass, then draw from their own generator, so a seeded request gives the same
text whether it ran alone or beside 31 others.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How one request picks its tokens."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        """Whether this request always takes the most likely token."""
        return self.temperature <= 0.0


def generator_for(params: SamplingParams, device: torch.device) -> torch.Generator | None:
    """A generator seeded for this request (None: draw from the process's default one)."""
    if params.greedy or params.seed is None:
        return None
    generator = torch.Generator(device=device)
    generator.manual_seed(params.seed)
    return generator


def apply_repetition_penalty(logits: torch.Tensor, seen: list[torch.Tensor],
                             params: list[SamplingParams]) -> None:
    """Make tokens a row has already seen less likely (CTRL's rule), in place."""
    for row, (ids, p) in enumerate(zip(seen, params, strict=True)):
        if p.repetition_penalty == 1.0 or ids.numel() == 0:
            continue
        scores = logits[row, ids]
        logits[row, ids] = torch.where(scores < 0, scores * p.repetition_penalty,
                                       scores / p.repetition_penalty)


def _filter(logits: torch.Tensor, params: list[SamplingParams]) -> torch.Tensor:
    """Temperature, top-k and top-p for the given rows; returns probabilities."""
    device = logits.device
    temps = torch.tensor([p.temperature for p in params], device=device, dtype=logits.dtype)
    logits = logits / temps[:, None]
    if all(p.top_k <= 0 and p.top_p >= 1.0 for p in params):
        return torch.softmax(logits, dim=-1)
    vocab = logits.shape[-1]
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    ranks = torch.arange(vocab, device=device)[None, :]
    top_k = torch.tensor([p.top_k if p.top_k > 0 else vocab for p in params], device=device)
    sorted_logits = sorted_logits.masked_fill(ranks >= top_k[:, None], float("-inf"))
    probs = torch.softmax(sorted_logits, dim=-1)
    top_p = torch.tensor([p.top_p for p in params], device=device, dtype=probs.dtype)
    # Drop a token when the tokens ranked above it already reach top_p (the first always stays).
    drop = (torch.cumsum(probs, dim=-1) - probs) >= top_p[:, None]
    probs = probs.masked_fill(drop, 0.0)
    probs = probs / probs.sum(dim=-1, keepdim=True)
    return torch.zeros_like(probs).scatter_(-1, order, probs)


def choose(logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None],
           seen: list[torch.Tensor] | None = None) -> torch.Tensor:
    """The next token of each row (a 1-D tensor on the logits' device)."""
    logits = logits.float()
    if seen is not None and any(p.repetition_penalty != 1.0 for p in params):
        logits = logits.clone()
        apply_repetition_penalty(logits, seen, params)
    chosen = torch.argmax(logits, dim=-1)
    sampling = [i for i, p in enumerate(params) if not p.greedy]
    if not sampling:
        return chosen
    probs = _filter(logits[sampling], [params[i] for i in sampling])
    for j, row in enumerate(sampling):
        chosen[row] = torch.multinomial(probs[j], 1, generator=generators[row])[0]
    return chosen
