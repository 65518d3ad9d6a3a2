"""Backends: a model's prefill and decode steps over a left-padded batch, and its KV cache.

`hf` drives a Transformers causal LM with its own `DynamicCache`; it can drop finished rows
and merge newly prefilled rows into a running batch (`reshapable`). `deepspeed` (see
`worker/inference/ds_backend.py`) wraps the same model with `deepspeed.init_inference`.

Positions are counted per row from its first real token, so a request's logits do not depend
on how much padding its batch needed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from worker.inference.tokens import Tokenizer

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class BatchState:
    """A batch being decoded: its attention mask, next position per row, and KV cache."""

    mask: torch.Tensor  # [rows, tokens], 1 for real tokens, 0 for left padding
    positions: torch.Tensor  # [rows], position id of the next token
    cache: Any = None

    @property
    def rows(self) -> int:
        """How many sequences the batch holds."""
        return int(self.mask.shape[0])


def left_pad(sequences: list[list[int]], pad_id: int, device: torch.device,
             min_length: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of `sequences`, padded on the left to one length."""
    length = max(min_length, max(len(s) for s in sequences))
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, length - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[row, length - len(seq):] = 1
    return ids.to(device), mask.to(device)


def _kv(cache: Any) -> list[tuple[Any, str, str]] | None:
    """Handles on each layer's key and value tensors, where the cache's layout is one we know."""
    layers = getattr(cache, "layers", None)
    if layers is not None:  # Transformers 5 (and 4.56+): one DynamicLayer per decoder layer
        if not all(type(layer).__name__ == "DynamicLayer" and getattr(layer, "keys", None) is not None
                   for layer in layers):
            return None
        return [(layer, "keys", "values") for layer in layers]
    if hasattr(cache, "key_cache") and hasattr(cache, "value_cache"):  # older Transformers 4
        return [(cache, f"key_cache.{i}", f"value_cache.{i}") for i in range(len(cache.key_cache))]
    return None


def _get(owner: Any, name: str) -> torch.Tensor:
    if "." in name:
        attr, index = name.split(".")
        tensor: torch.Tensor = getattr(owner, attr)[int(index)]
        return tensor
    tensor = getattr(owner, name)
    return tensor


def _set(owner: Any, name: str, value: torch.Tensor) -> None:
    if "." in name:
        attr, index = name.split(".")
        getattr(owner, attr)[int(index)] = value
    else:
        setattr(owner, name, value)


class HFBackend:
    """A Transformers causal LM decoded step by step with a dynamic cache."""

    name = "hf"
    reshapable = True

    def __init__(self, model: Any, tokenizer: Tokenizer, *, device: str | torch.device = "cpu",
                 max_context: int = 2048) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.max_context = max_context
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._logits_kw = "logits_to_keep" if "logits_to_keep" in params else None
        self.weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    @property
    def eos_token_ids(self) -> frozenset[int]:
        """Tokens that end a sequence."""
        return self.tokenizer.eos_token_ids

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self.model.config)
        except TypeError:  # Transformers 4 takes no config
            return DynamicCache()

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                 cache: Any) -> torch.Tensor:
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "position_ids": positions,
                                  self._cache_kw: cache, "use_cache": True}
        if self._logits_kw:
            kwargs[self._logits_kw] = 1
        out = self.model(**kwargs)
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits

    @torch.inference_mode()
    def prefill(self, sequences: list[list[int]]) -> tuple[torch.Tensor, BatchState]:
        """Run the prompts; returns the logits of each row's next token and the batch."""
        ids, mask = left_pad(sequences, self.tokenizer.pad_token_id, self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = self._new_cache()
        logits = self._forward(ids, mask, positions, cache)
        return logits, BatchState(mask=mask, positions=mask.sum(-1), cache=cache)

    @torch.inference_mode()
    def decode(self, state: BatchState, tokens: torch.Tensor) -> torch.Tensor:
        """Feed each row its last chosen token; returns the logits of the next one."""
        ones = torch.ones((state.rows, 1), dtype=state.mask.dtype, device=state.mask.device)
        state.mask = torch.cat([state.mask, ones], dim=1)
        logits = self._forward(tokens[:, None].to(self.device), state.mask, state.positions[:, None],
                               state.cache)
        state.positions = state.positions + 1
        return logits

    def select(self, state: BatchState, keep: list[int]) -> bool:
        """Keep only the rows `keep` (finished rows leave); False if this cache cannot shrink."""
        handles = _kv(state.cache)
        if handles is None:
            return False
        index = torch.tensor(keep, dtype=torch.long, device=state.mask.device)
        state.mask, state.positions = state.mask[index], state.positions[index]
        # Columns that are padding in every remaining row are dead weight in every later step.
        live = torch.nonzero(state.mask.any(dim=0))
        start = int(live[0]) if live.numel() else state.mask.shape[1]
        state.mask = state.mask[:, start:]
        for owner, k, v in handles:
            _set(owner, k, _get(owner, k)[index.to(_get(owner, k).device), :, start:, :])
            _set(owner, v, _get(owner, v)[index.to(_get(owner, v).device), :, start:, :])
        return True

    def merge(self, state: BatchState, other: BatchState) -> bool:
        """Append `other`'s rows to `state`, left-padding the shorter one; False if impossible."""
        mine, theirs = _kv(state.cache), _kv(other.cache)
        if mine is None or theirs is None or len(mine) != len(theirs):
            return False
        length = max(state.mask.shape[1], other.mask.shape[1])

        def pad(t: torch.Tensor, dim: int) -> torch.Tensor:
            missing = length - t.shape[dim]
            if missing == 0:
                return t
            shape = list(t.shape)
            shape[dim] = missing
            return torch.cat([torch.zeros(shape, dtype=t.dtype, device=t.device), t], dim=dim)

        for (o1, k1, v1), (o2, k2, v2) in zip(mine, theirs, strict=True):
            _set(o1, k1, torch.cat([pad(_get(o1, k1), 2), pad(_get(o2, k2), 2)], dim=0))
            _set(o1, v1, torch.cat([pad(_get(o1, v1), 2), pad(_get(o2, v2), 2)], dim=0))
        state.mask = torch.cat([pad(state.mask, 1), pad(other.mask, 1)], dim=0)
        state.positions = torch.cat([state.positions, other.positions])
        return True


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (else bfloat16 is emulated, and slow)."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def torch_dtype(name: str, device: str = "cpu") -> torch.dtype:
    """The torch dtype of a deployment's `dtype` on `device` (resolving `auto`)."""
    if name == "auto":
        if device.startswith("cuda"):
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return DTYPES[name]
