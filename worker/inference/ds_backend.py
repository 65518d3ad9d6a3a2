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

CUDA graphs. One decode step launches a few hundred small kernels, and launching them from
Python takes longer than running them: at one stream the GPU waits on the CPU. On a GPU each
step is therefore captured once as a CUDA graph and replayed afterwards, one launch per step.
DeepSpeed's kernels take the cache length as a launch argument (its C++ side counts tokens on
the host), so a graph is only valid for one (rows, cache length) pair: graphs are captured
lazily per pair, kept in a bounded LRU, and rows are rounded up to a power of two (extra rows
repeat the first one) so that few pairs exist. Replaying a graph runs no host code, so the
host-side token counter DeepSpeed's kernels read is set explicitly before any step that runs
eagerly or is captured (`_set_tokens`). The first pass over a new pair costs one eager-speed
step plus the capture; later passes replay.

Without a GPU (or for other architectures), `init_inference` runs without kernel injection
and the model is decoded like the `hf` backend; that path is what the CPU tests cover.
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from worker.inference.backends import BatchState, HFBackend, left_pad
from worker.inference.sources import ModelUnavailable
from worker.inference.tokens import Tokenizer

INJECTABLE = frozenset({"gptj"})
MASKED = -10000.0  # DeepSpeed's additive mask value for a padding position
DEFAULT_GRAPHS = 1024  # at most this many captured decode steps are kept (LRU)


def init_inference(model: Any, *, dtype: torch.dtype, inject: bool, max_tokens: int) -> Any:
    """`deepspeed.init_inference` with the settings Mantle uses; returns DeepSpeed's engine."""
    import deepspeed

    return deepspeed.init_inference(model, dtype=dtype, replace_with_kernel_inject=inject,
                                    max_tokens=max_tokens)


def deepspeed_backend(model: Any, tokenizer: Tokenizer, *, device: str, dtype: torch.dtype,
                      max_context: int, inject: bool | None = None,
                      graphs: int = DEFAULT_GRAPHS) -> HFBackend | InjectedGPTJ:
    """Wrap `model` with DeepSpeed: injected kernels where it can (GPT-J on a GPU), plain otherwise."""
    if inject is None:
        inject = device.startswith("cuda") and getattr(model.config, "model_type", "") in INJECTABLE
    if inject:
        _claim_injection()
    engine = init_inference(model, dtype=dtype, inject=inject, max_tokens=max_context)
    if inject:
        injected = InjectedGPTJ(engine, tokenizer, device=device, max_context=max_context, graphs=graphs)
        _INJECTED.add(injected)
        return injected
    backend = HFBackend(engine.module, tokenizer, device=device, max_context=max_context)
    backend.name = "deepspeed"
    backend.engine = engine  # type: ignore[attr-defined]
    return backend


_INJECTED: weakref.WeakSet[InjectedGPTJ] = weakref.WeakSet()


def _claim_injection() -> None:
    """Make room for one model with injected kernels in this process, or refuse clearly.

    DeepSpeed keeps one workspace (the KV cache included) per process and numbers injected
    layers process-wide: a second model's layers would index past the first one's cache, and a
    model loaded after another was evicted would never allocate its workspace. So one injected
    model at a time, and the layer counters start again from zero for each."""
    if len(_INJECTED):
        gc.collect()  # a backend evicted a moment ago may only wait for the collector
    if len(_INJECTED):
        raise ModelUnavailable("this inference worker already serves a model with DeepSpeed's injected "
                               "kernels (one per process: DeepSpeed keeps a single KV-cache workspace); "
                               "serve the other one from another worker")
    from deepspeed.model_implementations.transformers.ds_transformer import DeepSpeedTransformerInference
    from deepspeed.ops.transformer.inference.ds_attention import DeepSpeedSelfAttention

    DeepSpeedTransformerInference.layer_id = 0
    DeepSpeedSelfAttention.num_layers = 0
    DeepSpeedSelfAttention._qkv_buffers = []


def bucket(rows: int) -> int:
    """The power of two at or above `rows`: batches are padded to it so few graphs exist."""
    return 1 << max(0, rows - 1).bit_length()


@dataclass
class _Batch:
    """What the graphed path keeps per batch: real rows and the cache length."""

    real_rows: int
    length: int


@dataclass
class _Static:
    """Fixed-address inputs and output shared by every graph of one row count."""

    ids: torch.Tensor  # [rows, 1] the step's tokens
    mask: torch.Tensor  # [rows, max_context] additive mask (0 or MASKED)
    logits: torch.Tensor  # [rows, vocab] float32


class InjectedGPTJ:
    """GPT-J decoded through DeepSpeed's injected inference layers, by our own loop."""

    name = "deepspeed"
    reshapable = False

    def __init__(self, engine: Any, tokenizer: Tokenizer, *, device: str, max_context: int,
                 graphs: int = DEFAULT_GRAPHS) -> None:
        self.engine = engine
        self.model = engine.module
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.max_context = max_context
        body = self.model.transformer
        self.embed, self.layers, self.norm, self.head = body.wte, list(body.h), body.ln_f, self.model.lm_head
        self.dtype = self.embed.weight.dtype
        self.weights_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self._workspace_rows = 0
        # CUDA graphs of decode steps, by (rows, cache length); 0 turns them off (eager steps).
        self.max_graphs = graphs if self.device.type == "cuda" else 0
        self._graphs: OrderedDict[tuple[int, int], torch.cuda.CUDAGraph] = OrderedDict()
        self._static: dict[int, _Static] = {}
        self._pool: Any = None
        self._warm_rows: set[int] = set()
        self.pad_rows = self.graphed  # round batches up to a power of two (fewer graphs to capture)
        self._tokens: int | None = None  # DeepSpeed's host-side token counter, where known
        self._zeros: torch.Tensor | None = None
        self._stream: Any = None
        self.graph_stats = {"captured": 0, "replayed": 0, "eager": 0, "evicted": 0}

    @property
    def eos_token_ids(self) -> frozenset[int]:
        """Tokens that end a sequence."""
        return self.tokenizer.eos_token_ids

    def _additive(self, mask: torch.Tensor) -> torch.Tensor:
        """The 0/1 mask as DeepSpeed adds it to attention scores (converted once, not per layer)."""
        return (1 - mask).to(self.dtype) * MASKED

    def _forward(self, ids: torch.Tensor, mask4: torch.Tensor) -> torch.Tensor:
        """Logits of each row's next token; `mask4` is the additive mask [rows, 1, 1, tokens]."""
        hidden = self.embed(ids)
        for layer in self.layers:
            out = layer(hidden, input_mask=mask4)
            hidden = out[0] if isinstance(out, tuple) else out
        last = self.norm(hidden[:, -1:, :])
        logits: torch.Tensor = self.head(last)[:, -1, :]
        return logits.float()

    @property
    def graphed(self) -> bool:
        """Whether decode steps are captured and replayed as CUDA graphs."""
        return self.max_graphs > 0

    @torch.inference_mode()
    def prefill(self, sequences: list[list[int]]) -> tuple[torch.Tensor, BatchState]:
        """Run the prompts (at least two tokens: one token reads as a decode step to DeepSpeed)."""
        real = len(sequences)
        if self.pad_rows:
            sequences = sequences + [sequences[0]] * (bucket(real) - real)
        ids, mask = left_pad(sequences, self.tokenizer.pad_token_id, self.device, min_length=2)
        rows, length = ids.shape
        if rows > self._workspace_rows:
            # DeepSpeed sizes its workspace (KV cache included) for the first batch it sees;
            # a larger batch must re-allocate it before its prompt runs, which moves the cache
            # every captured graph points into.
            self.layers[0]._should_allocate_workspace = True
            self._workspace_rows = rows
            self._drop_graphs()
        logits = self._forward(ids, self._additive(mask)[:, None, None, :])
        self._tokens = length + 1  # every layer reset the counter to the prompt; the last advanced it
        if self.graphed:
            static = self._static_for(rows)
            static.mask.zero_()
            static.mask[:, :length] = self._additive(mask)
        return logits[:real], BatchState(mask=mask, positions=mask.sum(-1), cache=_Batch(real, length))

    @torch.inference_mode()
    def decode(self, state: BatchState, tokens: torch.Tensor) -> torch.Tensor:
        """One step for every row (finished rows included, fed padding)."""
        batch: _Batch = state.cache
        batch.length += 1
        rows, length = state.rows, batch.length
        tokens = tokens.to(self.device)
        if rows > batch.real_rows:
            tokens = torch.cat([tokens, tokens[:1].expand(rows - batch.real_rows)])
        if self.graphed and length <= self.max_context:
            return self._graphed_step(rows, length, tokens)[:batch.real_rows]
        # The prompt's mask, then every generated position (all rows attend to them all).
        prompt = state.mask
        mask = torch.cat([prompt, prompt.new_ones((rows, length - prompt.shape[1]))], dim=1)
        self._set_tokens(length)
        logits = self._forward(tokens[:, None], self._additive(mask)[:, None, None, :])
        self._tokens = length + 1
        self.graph_stats["eager"] += 1
        return logits[:batch.real_rows]

    def _static_for(self, rows: int) -> _Static:
        static = self._static.get(rows)
        if static is None:
            vocab = self.head.weight.shape[0]
            static = _Static(ids=torch.zeros((rows, 1), dtype=torch.long, device=self.device),
                             mask=torch.zeros((rows, self.max_context), dtype=self.dtype, device=self.device),
                             logits=torch.zeros((rows, vocab), dtype=torch.float32, device=self.device))
            self._static[rows] = static
        return static

    def _step_body(self, static: _Static, length: int) -> None:
        """What a graph holds: one decode step from the static inputs into the static logits."""
        mask4 = static.mask[:, None, None, :length].contiguous()
        static.logits.copy_(self._forward(static.ids, mask4))

    def _graphed_step(self, rows: int, length: int, tokens: torch.Tensor) -> torch.Tensor:
        static = self._static[rows]
        static.ids.copy_(tokens[:, None])
        key = (rows, length)
        graph = self._graphs.get(key)
        if graph is None:
            self._set_tokens(length)
            if rows not in self._warm_rows:
                # The first step of a row count runs eagerly: lazy initialisation (cuBLAS
                # heuristics, allocator pools) happens outside any capture.
                self._warm_rows.add(rows)
                self._step_body(static, length)
                self._tokens = length + 1
                self.graph_stats["eager"] += 1
                return static.logits.clone()
            graph = self._capture(lambda: self._step_body(static, length))
            self._tokens = length + 1  # capturing ran the host code, kernels not yet
            self._graphs[key] = graph
            self.graph_stats["captured"] += 1
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)[1].reset()
                self.graph_stats["evicted"] += 1
        else:
            self._graphs.move_to_end(key)
            self.graph_stats["replayed"] += 1
        graph.replay()
        return static.logits.clone()

    def _set_tokens(self, length: int) -> None:
        """Make DeepSpeed's host-side token counter read `length` (the cache length of this step).

        Eager steps advance the counter themselves; replayed graphs do not. The only way to set
        it is a prompt-sized call of the last layer's attention kernel (it resets the counter to
        the prompt length, then advances it by one), captured into a graph that is never
        replayed, so none of its kernels runs and the KV cache is untouched."""
        if self._tokens == length:
            return
        if length < 3:
            raise RuntimeError(f"cannot set DeepSpeed's token counter to {length}")
        from deepspeed.ops.transformer.inference.ds_attention import DeepSpeedSelfAttention

        attention = self.layers[-1].attention
        if self._zeros is None:  # a prompt-sized QKV input, never read (its kernels never run)
            width = 3 * self.embed.weight.shape[1]
            self._zeros = torch.zeros((1, self.max_context, width), dtype=self.dtype, device=self.device)
        qkv = self._zeros[:, :length - 1]
        mask = torch.zeros((1, 1, 1, length - 1), dtype=self.dtype, device=self.device)
        self._capture(private=True, body=lambda: attention.score_context_func(
            query_key_value=qkv, attn_mask=mask, heads=attention.num_attention_heads_per_partition,
            num_kv=attention.num_kv_partition, norm_factor=1.0, no_masking=False,
            layer_id=attention.config.layer_id, num_layers=DeepSpeedSelfAttention.num_layers, alibi=None,
            is_prompt=True, token_idx=None, position_ids=None)).reset()
        self._tokens = length

    def _capture(self, body: Any, private: bool = False) -> torch.cuda.CUDAGraph:
        """Capture `body` into a CUDA graph on a side stream, in the memory pool every kept graph
        shares (`private`: a pool of its own, for a graph about to be thrown away: a shared pool
        is released when its last graph is, after which its handle must not be used again).

        `torch.cuda.graph` does the same but also collects garbage and empties the allocator's
        cache before every capture, which a serving loop capturing many small graphs avoids."""
        if self._stream is None:
            self._stream = torch.cuda.Stream(device=self.device)
        if self._pool is None and not private:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream):
            graph.capture_begin(pool=None if private else self._pool, capture_error_mode="thread_local")
            try:
                body()
            except BaseException:
                with contextlib.suppress(Exception):
                    graph.capture_end()
                raise
            graph.capture_end()
        current.wait_stream(self._stream)
        return graph

    def _drop_graphs(self) -> None:
        for graph in self._graphs.values():
            graph.reset()
        self._graphs.clear()
        self._static.clear()
        self._warm_rows.clear()
        self._pool = None  # released with its last graph: the next capture starts a new one

    def select(self, state: BatchState, keep: list[int]) -> bool:
        """DeepSpeed's kernel cache cannot drop rows."""
        return False

    def merge(self, state: BatchState, other: BatchState) -> bool:
        """Nor add them."""
        return False
