"""The `deepspeed` backend: `deepspeed.init_inference`, with DeepSpeed's fused kernels on a GPU.

On a GPU, GPT-J's blocks are replaced by DeepSpeed's injected inference layers (fused QKV,
rotary, softmax-context and MLP kernels, fp16). Those layers no longer follow the cache API of
current Transformers (GPT-J's model calls its blocks with a cache object and expects a tensor
back; the injected layers keep their own KV cache and return tuples), so `generate` cannot
drive them. `InjectedGPTJ` runs the model itself instead: embeddings, then each DeepSpeed layer
with the batch's attention mask, then the final norm and the LM head, one step at a time.

DeepSpeed's kernel cache advances one position for the whole batch and rotates every row by
the same offset; rotary attention depends only on relative positions, so a left-padded row
gets exactly the attention it would get alone. The cache cannot drop or add rows, so this
backend is not `reshapable`: finished rows are fed padding until their batch ends.

Without a GPU (or for other architectures), `init_inference` runs without kernel injection
and the model is decoded like the `hf` backend; that path is what the CPU tests cover.
"""

from __future__ import annotations

from typing import Any

import torch

from worker.inference.backends import BatchState, HFBackend, left_pad
from worker.inference.tokens import Tokenizer

INJECTABLE = frozenset({"gptj"})


def init_inference(model: Any, *, dtype: torch.dtype, inject: bool, max_tokens: int) -> Any:
    """`deepspeed.init_inference` with the settings Mantle uses; returns DeepSpeed's engine."""
    import deepspeed

    return deepspeed.init_inference(model, dtype=dtype, replace_with_kernel_inject=inject,
                                    max_tokens=max_tokens)


def deepspeed_backend(model: Any, tokenizer: Tokenizer, *, device: str, dtype: torch.dtype,
                      max_context: int, inject: bool | None = None) -> HFBackend | InjectedGPTJ:
    """Wrap `model` with DeepSpeed: injected kernels where it can (GPT-J on a GPU), plain otherwise."""
    if inject is None:
        inject = device.startswith("cuda") and getattr(model.config, "model_type", "") in INJECTABLE
    engine = init_inference(model, dtype=dtype, inject=inject, max_tokens=max_context)
    if inject:
        return InjectedGPTJ(engine, tokenizer, device=device, max_context=max_context)
    backend = HFBackend(engine.module, tokenizer, device=device, max_context=max_context)
    backend.name = "deepspeed"
    backend.engine = engine  # type: ignore[attr-defined]
    return backend


class InjectedGPTJ:
    """GPT-J decoded through DeepSpeed's injected inference layers, by our own loop."""

    name = "deepspeed"
    reshapable = False

    def __init__(self, engine: Any, tokenizer: Tokenizer, *, device: str, max_context: int) -> None:
        self.engine = engine
        self.model = engine.module
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.max_context = max_context
        body = self.model.transformer
        self.embed, self.layers, self.norm, self.head = body.wte, list(body.h), body.ln_f, self.model.lm_head
        self.weights_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self._workspace_rows = 0

    @property
    def eos_token_ids(self) -> frozenset[int]:
        """Tokens that end a sequence."""
        return self.tokenizer.eos_token_ids

    def _run(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(ids)
        # A 4-D integer mask: DeepSpeed turns it into an additive one and strides it per row.
        mask4 = mask[:, None, None, :].to(torch.int64)
        for layer in self.layers:
            out = layer(hidden, input_mask=mask4)
            hidden = out[0] if isinstance(out, tuple) else out
        last = self.norm(hidden[:, -1:, :])
        logits: torch.Tensor = self.head(last)[:, -1, :]
        return logits.float()

    @torch.inference_mode()
    def prefill(self, sequences: list[list[int]]) -> tuple[torch.Tensor, BatchState]:
        """Run the prompts (at least two tokens: one token reads as a decode step to DeepSpeed)."""
        ids, mask = left_pad(sequences, self.tokenizer.pad_token_id, self.device, min_length=2)
        if ids.shape[0] > self._workspace_rows:
            # DeepSpeed sizes its workspace (KV cache included) for the first batch it sees;
            # a larger batch must re-allocate it before its prompt runs.
            self.layers[0]._should_allocate_workspace = True
            self._workspace_rows = ids.shape[0]
        logits = self._run(ids, mask)
        return logits, BatchState(mask=mask, positions=mask.sum(-1))

    @torch.inference_mode()
    def decode(self, state: BatchState, tokens: torch.Tensor) -> torch.Tensor:
        """One step for every row (finished rows included, fed padding)."""
        ones = torch.ones((state.rows, 1), dtype=state.mask.dtype, device=state.mask.device)
        state.mask = torch.cat([state.mask, ones], dim=1)
        state.positions = state.positions + 1
        return self._run(tokens[:, None].to(self.device), state.mask)

    def select(self, state: BatchState, keep: list[int]) -> bool:
        """DeepSpeed's kernel cache cannot drop rows."""
        return False

    def merge(self, state: BatchState, other: BatchState) -> bool:
        """Nor add them."""
        return False
