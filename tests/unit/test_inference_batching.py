"""The batching engine: batched answers equal solo ones; stops, limits, streaming, cancelling."""

from __future__ import annotations

import pytest

from tests.inference import PROMPTS, alone, request, serve, tiny_backend
from worker.inference.backends import HFBackend
from worker.inference.batcher import Batcher
from worker.inference.sampling import SamplingParams


@pytest.fixture(scope="module")
def backend() -> HFBackend:
    return tiny_backend()


@pytest.fixture(scope="module")
def solo(backend: HFBackend) -> dict[str, list[int]]:
    return {p: alone(backend, p, max_new_tokens=24).generated for p in PROMPTS}


@pytest.fixture
def batcher(backend: HFBackend) -> Batcher:
    engine = Batcher(backend, max_batch_size=8, max_wait_ms=20)
    yield engine
    engine.close()


def test_a_padded_batch_gives_each_prompt_its_solo_answer(backend: HFBackend, batcher: Batcher,
                                                          solo: dict[str, list[int]]) -> None:
    done = serve(batcher, [request(backend, p, max_new_tokens=24) for p in PROMPTS])
    assert [r.generated for r in done] == [solo[p] for p in PROMPTS]
    assert all(r.finish_reason == "length" for r in done)


def test_requests_leave_and_join_a_running_batch_without_changing_answers(
        backend: HFBackend, solo: dict[str, list[int]]) -> None:
    engine = Batcher(backend, max_batch_size=8, max_wait_ms=0)
    try:
        first = serve(engine, [request(backend, PROMPTS[0], max_new_tokens=6)])[0]
        long = engine.submit(request(backend, PROMPTS[1], max_new_tokens=24))
        joiners = [engine.submit(request(backend, p, max_new_tokens=n))
                   for p, n in zip(PROMPTS[2:], (5, 24), strict=True)]
        serve(engine, [])
        assert long.done(60) and all(j.done(60) for j in joiners)
    finally:
        engine.close()
    assert first.generated == solo[PROMPTS[0]][:6]
    assert long.generated == solo[PROMPTS[1]]
    assert [j.generated for j in joiners] == [solo[PROMPTS[2]][:5], solo[PROMPTS[3]]]


def test_each_request_keeps_its_own_seeded_sampling(backend: HFBackend, batcher: Batcher) -> None:
    seeded = SamplingParams(temperature=0.9, top_p=0.9, top_k=40, seed=7)
    reference = alone(backend, PROMPTS[0], max_new_tokens=16, params=seeded).generated
    mixed = serve(batcher, [request(backend, PROMPTS[0], max_new_tokens=16, params=seeded),
                            request(backend, PROMPTS[1], max_new_tokens=16,
                                    params=SamplingParams(temperature=1.2)),
                            request(backend, PROMPTS[0], max_new_tokens=16)])
    assert mixed[0].generated == reference
    assert mixed[2].generated == alone(backend, PROMPTS[0], max_new_tokens=16).generated


def test_top_k_of_one_is_greedy(backend: HFBackend) -> None:
    greedy = alone(backend, PROMPTS[1], max_new_tokens=12).generated
    sampled = alone(backend, PROMPTS[1], max_new_tokens=12, params=SamplingParams(temperature=1.5, top_k=1))
    assert sampled.generated == greedy


def test_a_stop_sequence_ends_the_text_before_it(backend: HFBackend, batcher: Batcher,
                                                 solo: dict[str, list[int]]) -> None:
    full = backend.tokenizer.decode(solo[PROMPTS[0]])
    stop = full[5:8]
    done = serve(batcher, [request(backend, PROMPTS[0], max_new_tokens=24, stop=(stop,)),
                           request(backend, PROMPTS[1], max_new_tokens=24)])
    assert done[0].finish_reason == "stop" and done[0].text == full[:full.index(stop)]
    assert done[1].finish_reason == "length" and len(done[1].generated) == 24


def test_an_end_token_stops_a_request(backend: HFBackend, solo: dict[str, list[int]]) -> None:
    end = solo[PROMPTS[2]][3]
    done = alone(backend, PROMPTS[2], max_new_tokens=24, stop_token_ids=frozenset({end}))
    assert done.finish_reason == "stop" and done.generated == solo[PROMPTS[2]][:3]


def test_partial_text_streams_every_few_tokens_and_adds_up_to_the_answer(backend: HFBackend) -> None:
    done = alone(backend, PROMPTS[1], max_new_tokens=24, stream_every=4)
    parts = []
    while not done.updates.empty():
        parts.append(done.updates.get_nowait())
    assert len(parts) >= 3 and "".join(parts) == done.text
    timing = done.timings()
    assert timing["queue_wait_s"] is not None and timing["time_to_first_token_s"] is not None
    assert timing["generation_s"] >= timing["time_to_first_token_s"]


def test_a_cancelled_request_leaves_its_batch_and_the_others_finish(backend: HFBackend, batcher: Batcher,
                                                                    solo: dict[str, list[int]]) -> None:
    doomed = request(backend, PROMPTS[0], max_new_tokens=2000)
    other = request(backend, PROMPTS[1], max_new_tokens=24)
    batcher.submit(doomed)
    batcher.submit(other)
    assert other.done(60)
    doomed.cancel()
    assert doomed.done(60) and doomed.finish_reason == "cancelled" and len(doomed.generated) < 2000
    assert other.generated == solo[PROMPTS[1]]


def test_new_tokens_are_capped_by_the_context(backend: HFBackend) -> None:
    small = tiny_backend(max_context=20)
    done = alone(small, PROMPTS[2], max_new_tokens=100)
    assert len(done.prompt_ids) + len(done.generated) == 20 and done.finish_reason == "length"
