"""GPT-J-6B serving on one GPU: HF baselines beside Mantle's backends and batching engine.

The GPT-J-6B architecture with random fp16 weights built directly on the GPU (speed does not
depend on the weights; nothing is downloaded), a 128-token prompt and 128 new tokens (greedy,
end tokens ignored so every stream generates all of them). One JSON line per engine:

* `hf_generate`: Transformers' `generate`, the baseline every speed-up is relative to;
* `mantle_hf`: Mantle's batching engine on the `hf` backend, 1, 8 and 32 concurrent streams;
* `mantle_deepspeed`: the `deepspeed` backend (kernel injection, our own decode loop) through
  the same engine, 1, 8 and 32 streams;
* `hf_static_compile`: `generate` with a static cache, compiled by `torch.compile`.

Each line has tokens/s (all streams together), tokens/s per stream, the speed-up over the
baseline and the fraction of the memory-bandwidth bound: every decode step reads all weights
once, so one stream cannot beat bandwidth / weight bytes steps per second (GPT-J-6B fp16:
12.1 GB; H100 SXM 3.35 TB/s → ~277 tokens/s).

`--tiny` runs the same engines on a tiny GPT-J (on the CPU when there is no GPU; DeepSpeed's
kernels are then emulated by its Python fallbacks), so the script is known to work end to end.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from worker.inference.backends import HFBackend  # noqa: E402
from worker.inference.batcher import Batcher  # noqa: E402
from worker.inference.requests import GenerationRequest  # noqa: E402

BANDWIDTH = {"H200": 4.8e12, "H100 PCIe": 2.0e12, "H100": 3.35e12, "A100": 2.0e12}
START = time.monotonic()


class NullTokenizer:
    """Random token ids need no text: nothing ends a stream early, nothing is decoded."""

    eos_token_ids: frozenset[int] = frozenset()
    pad_token_id = 0

    def decode(self, ids: list[int]) -> str:
        """No text for random ids."""
        return ""


def emit(out: Any, record: dict[str, Any]) -> None:
    """Print one JSON line (and append it to the output file), at once."""
    line = json.dumps({**record, "elapsed_s": round(time.monotonic() - START, 1)})
    print(line, flush=True)
    if out is not None:
        out.write(line + "\n")
        out.flush()


def build(tiny: bool, device: str) -> Any:
    """GPT-J-6B (or a tiny GPT-J) with random weights, made directly on `device`."""
    from transformers import GPTJConfig, GPTJForCausalLM

    torch.set_flush_denormal(True)
    if tiny:
        config = GPTJConfig(vocab_size=1024, n_positions=512, n_embd=128, n_layer=4, n_head=4, rotary_dim=16,
                            bos_token_id=1023, eos_token_id=1023)
    else:
        config = GPTJConfig()  # the defaults are GPT-J-6B: 28 layers, 4096 wide, 16 heads, rotary 64
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = GPTJForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def bound(device: str, weight_bytes: int) -> tuple[float | None, str]:
    """Steps per second the memory bandwidth allows, and the device's name."""
    if not device.startswith("cuda"):
        return None, "cpu"
    name = torch.cuda.get_device_name()
    for key, bandwidth in BANDWIDTH.items():
        if key in name:
            return float(bandwidth / weight_bytes), str(name)
    return None, name


def measure(label: str, fn: Any, ctx: dict[str, Any], streams: int = 1, **extra: Any) -> dict[str, Any]:
    """Time `fn()` (which returns tokens generated) after one warm-up call; one record (the
    warm-up's time is reported too: it is where CUDA graphs are captured)."""
    started = time.perf_counter()
    fn()
    sync(ctx["device"])
    first_pass = time.perf_counter() - started
    started = time.perf_counter()
    tokens = fn()
    sync(ctx["device"])
    seconds = time.perf_counter() - started
    tps = tokens / seconds
    record: dict[str, Any] = {
        "engine": label, "streams": streams, "tokens": tokens, "seconds": round(seconds, 3),
        "tokens_per_s": round(tps, 1), "per_stream_tokens_per_s": round(tps / streams, 1),
        "first_pass_seconds": round(first_pass, 3), **extra}
    if ctx.get("baseline"):
        record["speedup_vs_hf_generate"] = round(tps / ctx["baseline"], 2)
    if ctx.get("bound"):
        record["bandwidth_bound_tokens_per_s"] = round(ctx["bound"], 1)
        record["bandwidth_fraction"] = round(tps / streams / ctx["bound"], 3)
    return record


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def hf_generate(model: Any, prompt: torch.Tensor, new: int, **kwargs: Any) -> Any:
    def run() -> int:
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new,
                             min_new_tokens=new, do_sample=False, pad_token_id=0, **kwargs)
        return int(out.shape[1] - prompt.shape[1])
    return run


def serve_all(batcher: Batcher, prompts: list[list[int]], new: int) -> list[GenerationRequest]:
    """Send every prompt to the engine at once; the finished requests."""
    requests = [GenerationRequest(p, max_new_tokens=new, stop_token_ids=frozenset()) for p in prompts]
    threads = [threading.Thread(target=batcher.submit, args=(r,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in requests:
        if not r.done(600) or r.error:
            raise RuntimeError(r.error or "a request did not finish")
    return requests


def engine_runs(batcher: Batcher, prompts: list[list[int]], new: int) -> Any:
    """A function that sends every prompt to the engine at once and counts the tokens."""
    def run() -> int:
        return sum(len(r.generated) for r in serve_all(batcher, prompts, new))
    return run


def kernel_time(device: str, fn: Any) -> float | None:
    """Seconds the GPU spent inside kernels while `fn()` ran (None without a GPU)."""
    if not device.startswith("cuda"):
        return None
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        sync(device)
    total_us = sum(getattr(e, "self_device_time_total", 0.0) for e in prof.key_averages())
    return float(total_us) / 1e6


def run_engine(label: str, backend: Any, prompts: list[list[int]], streams: list[int], new: int,
               ctx: dict[str, Any], out: Any, left: Any) -> None:
    """One line per stream count: `backend` behind Mantle's batching engine."""
    batcher = Batcher(backend, name=label, max_batch_size=max(streams), max_wait_ms=5)
    try:
        for n in streams:
            if left() < 20:
                emit(out, {"engine": label, "streams": n, "skipped": "time budget"})
                continue
            runs = engine_runs(batcher, prompts[:n], new)
            emit(out, measure(label, runs, ctx, streams=n, backend=backend.name))
    finally:
        batcher.close()


def deepspeed_lines(backend: Any, prompts: list[list[int]], streams: list[int], new: int, ctx: dict[str, Any],
                    out: Any, left: Any) -> None:
    """The `deepspeed` backend with CUDA graphs (its default on a GPU), then eager (no graphs) as
    the same-run baseline; whether both give the same tokens; GPU kernel time per step of each."""
    graphed = backend.graphed
    eager_streams = [n for n in streams if n <= 8]
    if graphed:
        try:
            run_engine("mantle_deepspeed", backend, prompts, streams, new, ctx, out, left)
            emit(out, {"engine": "deepspeed_graphs", **backend.graph_stats, "kept": len(backend._graphs)})
        except Exception as exc:  # still measure the eager path
            emit(out, {"engine": "mantle_deepspeed", "error": repr(exc),
                       "trace": traceback.format_exc()[-3000:]})
            backend.max_graphs, backend.pad_rows, graphed = 0, False, False
    check = prompts[:8]
    batcher = Batcher(backend, name="check", max_batch_size=len(check), max_wait_ms=50)
    try:
        tokens_graphed = [r.generated for r in serve_all(batcher, check, min(new, 64))]
        steps = 32
        busy_graphed = kernel_time(ctx["device"], lambda: serve_all(batcher, check[:1], steps))
        backend.max_graphs, backend.pad_rows = 0, False  # eager: every step launched from Python
        tokens_eager = [r.generated for r in serve_all(batcher, check, min(new, 64))]
        busy_eager = kernel_time(ctx["device"], lambda: serve_all(batcher, check[:1], steps))
    finally:
        batcher.close()
    differing = sum(a != b for a, b in zip(tokens_graphed, tokens_eager, strict=True))
    record: dict[str, Any] = {"engine": "deepspeed_check", "graphed": graphed, "rows": len(check),
                              "rows_differing_graphed_vs_eager": differing}
    for label, busy in (("graphed", busy_graphed), ("eager", busy_eager)):
        if busy is not None:
            record[f"kernel_ms_per_step_{label}"] = round(busy / (steps + 1) * 1000, 3)
            if ctx.get("bound"):
                # what one stream could reach if the GPU never waited: kernel time alone, vs the bound
                record[f"kernel_only_fraction_{label}"] = round((steps + 1) / busy / ctx["bound"], 3)
    emit(out, record)
    run_engine("mantle_deepspeed_eager", backend, prompts, eager_streams, new, ctx, out, left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a tiny GPT-J (runs on a CPU)")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--streams", default="1,8,32")
    parser.add_argument("--budget-s", type=float, default=440, help="skip what would not finish in time")
    parser.add_argument("--out", type=Path, default=None, help="also append the JSON lines to this file")
    parser.add_argument("--skip", default="", help="comma-separated engines to leave out")
    args = parser.parse_args()
    out = args.out.open("a") if args.out else None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    skip = set(filter(None, args.skip.split(",")))
    streams = [int(s) for s in args.streams.split(",")]

    def left() -> float:
        return float(args.budget_s) - (time.monotonic() - START)

    import transformers
    emit(out, {"engine": "environment", "device": device, "torch": torch.__version__,
               "transformers": transformers.__version__, "cuda": torch.version.cuda, "tiny": args.tiny})
    model: Any = build(args.tiny, device)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    steps_bound, name = bound(device, weights)
    ctx: dict[str, Any] = {"device": device, "bound": steps_bound}
    emit(out, {"engine": "model", "device_name": name, "weight_bytes": weights,
               "bandwidth_bound_tokens_per_s": round(steps_bound, 1) if steps_bound else None})
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    prompts = [torch.randint(0, vocab, (args.prompt_tokens,), generator=gen).tolist()
               for _ in range(max(streams))]
    prompt = torch.tensor([prompts[0]], device=device)

    record = measure("hf_generate", hf_generate(model, prompt, args.new_tokens), ctx)
    ctx["baseline"] = record["tokens_per_s"]
    record["speedup_vs_hf_generate"] = 1.0
    emit(out, record)

    def engine_lines(label: str, backend: Any) -> None:
        run_engine(label, backend, prompts, streams, args.new_tokens, ctx, out, left)

    if "mantle_hf" not in skip:
        try:
            engine_lines("mantle_hf", HFBackend(model, NullTokenizer(), device=device, max_context=2048))  # type: ignore[arg-type]
        except Exception as exc:
            emit(out, {"engine": "mantle_hf", "error": repr(exc), "trace": traceback.format_exc()[-2000:]})

    if "mantle_deepspeed" not in skip:
        try:
            started = time.monotonic()
            if device == "cpu":
                from worker.inference.ds_cpu import emulate_kernels
                emulate_kernels()
            from worker.inference.ds_backend import deepspeed_backend
            backend: Any = deepspeed_backend(model, NullTokenizer(), device=device, dtype=model.dtype,  # type: ignore[arg-type]
                                             max_context=2048, inject=True)
            import deepspeed
            emit(out, {"engine": "deepspeed_init", "seconds": round(time.monotonic() - started, 1),
                       "backend": type(backend).__name__, "deepspeed": deepspeed.__version__,
                       "cuda_graphs": backend.graphed})
            deepspeed_lines(backend, prompts, streams, args.new_tokens, ctx, out, left)
            del backend
            gc.collect()
        except Exception as exc:
            emit(out, {"engine": "mantle_deepspeed", "error": repr(exc),
                       "trace": traceback.format_exc()[-3000:]})
        model = None  # injection replaced its blocks in place: build a fresh one for the next engine

    if "hf_static_compile" not in skip:
        if left() < 120:
            emit(out, {"engine": "hf_static_compile", "skipped": "time budget"})
        else:
            try:
                if model is None:
                    if device.startswith("cuda"):
                        torch.cuda.empty_cache()
                    model = build(args.tiny, device)
                from transformers import CompileConfig
                compile_config: Any = CompileConfig(fullgraph=False)
                compile_config._compile_all_devices = True  # compile on the CPU too (for --tiny)
                fn = hf_generate(model, prompt, args.new_tokens, cache_implementation="static",
                                 compile_config=compile_config)
                fn()  # the first call compiles
                emit(out, measure("hf_static_compile", fn, ctx))
            except Exception as exc:
                emit(out, {"engine": "hf_static_compile", "error": repr(exc),
                           "trace": traceback.format_exc()[-2000:]})
    emit(out, {"engine": "done", "pid": os.getpid()})


if __name__ == "__main__":
    main()
