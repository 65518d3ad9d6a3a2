"""The `deepspeed` backend on the CPU: `init_inference` without kernel injection, and the injected
GPT-J layers (DeepSpeed's Python fallbacks standing in for its CUDA kernels) driven by our loop.
Both must give the `hf` backend's answers, padded batches included."""

from __future__ import annotations

import pytest
import torch

from tests.inference import PROMPTS, alone, request, serve, tiny_backend
from worker.inference.batcher import Batcher
from worker.inference.ds_backend import InjectedGPTJ, deepspeed_backend
from worker.inference.tiny import tiny_gptj


@pytest.fixture(scope="module")
def solo() -> dict[str, list[int]]:
    backend = tiny_backend()
    return {p: alone(backend, p, max_new_tokens=16).generated for p in PROMPTS}


def test_init_inference_without_injection_serves_the_same_answers(solo: dict[str, list[int]]) -> None:
    tokenizer = tiny_backend().tokenizer
    backend = deepspeed_backend(tiny_gptj(), tokenizer, device="cpu", dtype=torch.float32, max_context=4096)
    assert backend.name == "deepspeed" and backend.reshapable
    engine = Batcher(backend, max_batch_size=8, max_wait_ms=20)
    try:
        done = serve(engine, [request(backend, p, max_new_tokens=16) for p in PROMPTS])
    finally:
        engine.close()
    assert [r.generated for r in done] == [solo[p] for p in PROMPTS]


def test_injected_gptj_layers_serve_the_same_answers_in_padded_batches(solo: dict[str, list[int]]) -> None:
    from worker.inference.ds_cpu import emulate_kernels

    emulate_kernels()
    tokenizer = tiny_backend().tokenizer
    backend = deepspeed_backend(tiny_gptj(), tokenizer, device="cpu", dtype=torch.float32, max_context=512,
                                inject=True)
    assert isinstance(backend, InjectedGPTJ) and not backend.reshapable
    assert type(backend.layers[0]).__name__ == "DeepSpeedGPTInference"
    engine = Batcher(backend, max_batch_size=8, max_wait_ms=20)
    try:
        single = serve(engine, [request(backend, PROMPTS[2], max_new_tokens=16)])  # a one-row workspace first
        # Then a bigger batch (the workspace grows), whose rows finish at different steps.
        batch = serve(engine, [request(backend, p, max_new_tokens=16 - 2 * i) for i, p in enumerate(PROMPTS)])
    finally:
        engine.close()
    assert single[0].generated == solo[PROMPTS[2]]
    assert [r.generated for r in batch] == [solo[p][:16 - 2 * i] for i, p in enumerate(PROMPTS)]


def test_batches_rounded_up_to_a_power_of_two_answer_for_their_real_rows(solo: dict[str, list[int]]) -> None:
    """On a GPU batches are padded to 1, 2, 4, 8… rows (fewer CUDA graphs); the extra rows must
    never leak into the answers. Exercised here on the eager path, which pads the same way."""
    from worker.inference.ds_backend import bucket
    from worker.inference.ds_cpu import emulate_kernels

    emulate_kernels()
    FIVE = [*PROMPTS, PROMPTS[1]]  # noqa: N806 (five rows: padded to eight)
    assert [bucket(n) for n in (1, 2, 3, 5, 8, 9, 32)] == [1, 2, 4, 8, 8, 16, 32]
    tokenizer = tiny_backend().tokenizer
    backend = deepspeed_backend(tiny_gptj(), tokenizer, device="cpu", dtype=torch.float32, max_context=512,
                                inject=True)
    assert isinstance(backend, InjectedGPTJ) and not backend.graphed  # no CUDA graphs on a CPU
    backend.pad_rows = True
    engine = Batcher(backend, max_batch_size=8, max_wait_ms=20)
    try:
        three = serve(engine, [request(backend, p, max_new_tokens=12) for p in PROMPTS[:3]])
        five = serve(engine, [request(backend, p, max_new_tokens=12 - i) for i, p in enumerate(FIVE)])
    finally:
        engine.close()
    assert [r.generated for r in three] == [solo[p][:12] for p in PROMPTS[:3]]
    assert [r.generated for r in five] == [solo[p][:12 - i] for i, p in enumerate(FIVE)]
    assert backend.graph_stats["eager"] > 0 and backend.graph_stats["captured"] == 0


def test_a_fixed_shape_batch_run_ahead_still_stops_samples_and_streams_like_alone(
        solo: dict[str, list[int]]) -> None:
    """DeepSpeed's batches cannot change shape, so the engine queues each step before reading the
    previous one back; stops, end tokens, seeded sampling and streaming must not notice."""
    from worker.inference.ds_cpu import emulate_kernels
    from worker.inference.sampling import SamplingParams

    emulate_kernels()
    reference = tiny_backend()
    seeded = SamplingParams(temperature=0.9, top_p=0.9, top_k=40, seed=7)
    sampled_alone = alone(reference, PROMPTS[3], max_new_tokens=16, params=seeded).generated
    full = reference.tokenizer.decode(solo[PROMPTS[0]])
    stop = full[5:8]
    end = solo[PROMPTS[2]][3]
    backend = deepspeed_backend(tiny_gptj(), reference.tokenizer, device="cpu", dtype=torch.float32,
                                max_context=512, inject=True)
    engine = Batcher(backend, max_batch_size=8, max_wait_ms=50)
    try:
        done = serve(engine, [
            request(backend, PROMPTS[0], max_new_tokens=16, stop=(stop,)),
            request(backend, PROMPTS[1], max_new_tokens=16, stream_every=4),
            request(backend, PROMPTS[2], max_new_tokens=16, stop_token_ids=frozenset({end})),
            request(backend, PROMPTS[3], max_new_tokens=16, params=seeded)])
    finally:
        engine.close()
    assert done[0].finish_reason == "stop" and done[0].text == full[:full.index(stop)]
    parts = []
    while not done[1].updates.empty():
        parts.append(done[1].updates.get_nowait())
    assert done[1].generated == solo[PROMPTS[1]] and "".join(parts) == done[1].text and len(parts) >= 3
    assert done[2].finish_reason == "stop" and done[2].generated == solo[PROMPTS[2]][:3]
    assert done[3].generated == sampled_alone


def test_one_injected_model_per_process_and_a_reload_after_eviction_works(solo: dict[str, list[int]]) -> None:
    """DeepSpeed keeps one KV-cache workspace per process and numbers injected layers process-wide:
    a second live injected model is refused clearly, and one loaded after the first is gone
    starts its layer numbering afresh (so it allocates and uses its own workspace)."""
    from worker.inference.ds_cpu import emulate_kernels
    from worker.inference.sources import ModelUnavailable

    emulate_kernels()
    tokenizer = tiny_backend().tokenizer

    def load() -> InjectedGPTJ:
        backend = deepspeed_backend(tiny_gptj(), tokenizer, device="cpu", dtype=torch.float32,
                                    max_context=512, inject=True)
        assert isinstance(backend, InjectedGPTJ)
        return backend

    first = load()
    with pytest.raises(ModelUnavailable, match="one per process"):
        load()
    del first  # evicted
    second = load()
    assert [layer.config.layer_id for layer in second.layers] == list(range(len(second.layers)))
    engine = Batcher(second, max_batch_size=4, max_wait_ms=20)
    try:
        done = serve(engine, [request(second, p, max_new_tokens=16) for p in PROMPTS[:2]])
    finally:
        engine.close()
    assert [r.generated for r in done] == [solo[p] for p in PROMPTS[:2]]
