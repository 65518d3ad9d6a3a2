"""DeepSpeed's injected GPT-J layers on a CPU, for tests and `bench/gpu.py --tiny` only.

Kernel injection needs DeepSpeed's CUDA ops. Its Python fallbacks of those ops run anywhere,
but they apply rotary embeddings only in the rotate-half style (Llama) and skip GPT-J's
rotate-every-two style. `emulate_kernels()` makes DeepSpeed use the fallbacks and adds GPT-J's
rotary the way the CUDA kernel applies it (one offset for the whole batch: the number of tokens
already cached), so the injected code path of `InjectedGPTJ` is exercised on any machine.
"""

from __future__ import annotations

import types
from typing import Any

import torch


def _rotate_every_two(x: torch.Tensor, offset: int, rotary_dim: int, theta: float) -> torch.Tensor:
    """GPT-J's rotary embedding of `x` [batch, tokens, heads, head_dim] from position `offset`."""
    tokens = x.shape[1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32) / rotary_dim))
    angles = torch.arange(offset, offset + tokens, dtype=torch.float32)[:, None] * inv_freq[None, :]
    sin = torch.repeat_interleave(angles.sin(), 2, dim=-1)[None, :, None, :].to(x.dtype)
    cos = torch.repeat_interleave(angles.cos(), 2, dim=-1)[None, :, None, :].to(x.dtype)
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    turned = torch.stack((-rot[..., 1::2], rot[..., ::2]), dim=-1).flatten(-2)
    return torch.cat([rot * cos + turned * sin, rest], dim=-1)


def emulate_kernels() -> None:
    """Route DeepSpeed's inference ops to their Python fallbacks, with GPT-J's rotary added."""
    from deepspeed.ops.transformer.inference.op_binding.base import BaseOp
    from deepspeed.ops.transformer.inference.op_binding.softmax_context import SoftmaxContextOp
    from deepspeed.ops.transformer.inference.op_binding.workspace import InferenceContext

    if getattr(SoftmaxContextOp, "_mantle_emulated", False):
        return
    BaseOp.inference_module = types.SimpleNamespace()  # no compiled ops: every op falls back
    original = SoftmaxContextOp.softmax_context_fallback

    def fallback(self: Any, query_key_value: torch.Tensor, attn_mask: Any, rotary_dim: int,
                 rotate_half: bool, rotate_every_two: bool, heads: int, num_kv: int, *rest: Any) -> Any:
        if rotary_dim > 0 and rotate_every_two and not rotate_half:
            batch, tokens, width = query_key_value.shape
            qkv = query_key_value.view(batch, tokens, 3, heads, width // (3 * heads))
            is_prompt = tokens > 1
            offset = 0 if is_prompt else InferenceContext.Instance().current_tokens() - 1
            theta = float(getattr(self.config, "rope_theta", 10000.0) or 10000.0)
            q = _rotate_every_two(qkv[:, :, 0], offset, rotary_dim, theta)
            k = _rotate_every_two(qkv[:, :, 1], offset, rotary_dim, theta)
            query_key_value = torch.stack([q, k, qkv[:, :, 2]], dim=2).reshape(batch, tokens, width)
            rotary_dim = 0
        return original(self, query_key_value, attn_mask, rotary_dim, rotate_half, rotate_every_two, heads,
                        num_kv, *rest)

    SoftmaxContextOp.softmax_context_fallback = fallback
    SoftmaxContextOp._mantle_emulated = True
