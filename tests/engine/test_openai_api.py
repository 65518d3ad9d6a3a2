"""Mantle's OpenAI-compatible API through the official `openai` client, and provider deployments
that call it: a running Mantle (the API over real HTTP on loopback, a run worker, an inference
worker serving the tiny model) on both stacks, nothing of ours mocked. Usage and quotas are
checked on the way. A stand-in rate-limiting gateway (tests/http_server.py) plays a provider that
answers 429 and 503 with Retry-After, which Mantle's own endpoint does only at a minute's end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.chat import ChatCompletionMessageParam

from api.main import create_app
from tests.conftest import serve
from tests.engine.conftest import Stack, running_stack, wait_until
from tests.http_server import LocalServer, serving
from worker.inference.tiny import save_tiny

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hi to Ada"}]
# The tiny random model's answer to this runs past 400 tokens without an end token.
LONG: list[ChatCompletionMessageParam] = [{"role": "user",
                                           "content": "A much longer prompt, with many more bytes"}]


@dataclass
class Served:
    """The stack, its API over HTTP, and an `openai` client with the stack's key."""

    stack: Stack
    url: str
    key: str
    client: openai.OpenAI
    waiting: QuotaWait

    def client_for(self, key: str, **options: Any) -> openai.OpenAI:
        """An `openai` client sending `key`."""
        return openai.OpenAI(base_url=f"{self.url}/openai/v1", api_key=key, **options)


@dataclass
class QuotaWait:
    """Two runs of an organization allowed one model request a minute, whose quota says wait."""

    client: TestClient
    run_ids: list[str]


def start_runs_over_a_waiting_quota(stack: Stack) -> QuotaWait:
    """Started when the module starts, so that the minute the second run waits for passes while
    the other tests run; `test_a_run_over_a_waiting_quota_goes_on_when_the_minute_reopens` ends it."""
    key = stack.new_org_key()
    client = TestClient(stack.client.app, headers={"Authorization": f"Bearer {key}"})
    quota = {"requests_per_minute": 1, "on_exceed": "wait"}
    assert client.put("/v1/org/quota", json=quota).status_code == 200
    app_id = client.post("/v1/apps", json={"name": "patient", "graph": tiny_graph()}).json()["id"]
    assert client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    runs = [client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": name}}).json()["id"]
            for name in ("Ada", "Grace")]
    return QuotaWait(client, runs)


def tiny_graph() -> dict[str, Any]:
    return {"nodes": [{"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "name"}]}},
                      {"id": "gen", "type": "llm.prompt", "config": {"model": "tiny", "max_new_tokens": 4}},
                      {"id": "out", "type": "output"}],
            "edges": [{"source": "in", "source_port": "name", "target": "gen", "target_port": "text"},
                      {"source": "gen", "source_port": "text", "target": "out", "target_port": "text"}]}


@pytest.fixture(scope="module", params=["embedded", "production"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A stack serving `tiny`, its API on a loopback port (open to provider calls)."""
    tiny = save_tiny(tmp_path_factory.mktemp("tiny") / "model")
    extra = {
        "model_deployments": [{"name": "tiny", "source": str(tiny), "dtype": "float32", "max_batch_size": 8,
                               "max_context": 4096, "pinned": True}],
        "http_allow_hosts": ["127.0.0.1"], "inference_stream_every": 2, "inference_concurrency": 16,
    }
    with running_stack(request.param, tmp_path_factory.mktemp("openai"), extra) as stack:
        stack.start_worker(queues="inference", pool="threads", beat=False, timeout=120)
        key = stack.client.headers["Authorization"].removeprefix("Bearer ")
        with serve(create_app(stack.settings)) as server:
            client = openai.OpenAI(base_url=f"{server.url}/openai/v1", api_key=key, max_retries=0, timeout=60)
            yield Served(stack, server.url, key, client, start_runs_over_a_waiting_quota(stack))


def usage_rows(stack: Stack, **params: str) -> dict[str, Any]:
    answer = stack.client.get("/v1/usage", params={"group_by": "model", **params})
    assert answer.status_code == 200, answer.text
    return {g["key"]: g for g in answer.json()["groups"]}


def test_the_openai_client_gets_answers_plain_and_streamed_with_usage(served: Served) -> None:
    listed = {m.id: m.owned_by for m in served.client.models.list()}
    assert listed["tiny"] == "mantle" and "smollm2-135m-instruct" in listed
    before = usage_rows(served.stack).get("tiny", {}).get("requests", 0)

    plain = served.client.chat.completions.create(model="tiny", messages=LONG, max_tokens=600, temperature=0)
    text = plain.choices[0].message.content
    assert plain.object == "chat.completion" and plain.model == "tiny" and text
    assert plain.choices[0].finish_reason in ("stop", "length") and plain.usage is not None
    assert 0 < plain.usage.completion_tokens <= 600 and plain.usage.prompt_tokens > 0

    stream = served.client.chat.completions.create(model="tiny", messages=LONG, max_tokens=600, temperature=0,
                                                   stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text  # greedy: the same answer, in pieces
    # The role comes first, as OpenAI sends it, then the text. How many pieces the text comes in
    # depends on the model's pace against the worker's writes (every 0.1 s) and the reader's: the
    # tiny model can finish its 600 tokens within one write on a busy machine, so the count is
    # not asserted (a clean-clone CI once got the whole text in one piece).
    assert chunks[0].choices[0].delta.role == "assistant"
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason

    counted = usage_rows(served.stack)["tiny"]
    assert counted["requests"] == before + 2
    assert counted["completion_tokens"] >= 2 * plain.usage.completion_tokens


def test_stop_sequences_and_max_tokens_end_the_answer(served: Served) -> None:
    long = served.client.chat.completions.create(model="tiny", messages=LONG, max_tokens=40, temperature=0)
    text = long.choices[0].message.content or ""
    assert long.usage is not None and long.usage.completion_tokens == 40
    assert long.choices[0].finish_reason == "length"
    stop = text[20:23]
    stopped = served.client.chat.completions.create(model="tiny", messages=LONG, max_tokens=40, temperature=0,
                                                    stop=[stop])
    assert stopped.choices[0].message.content == text[:text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"
    short = served.client.chat.completions.create(model="tiny", messages=LONG, max_tokens=3, temperature=0)
    assert short.usage is not None and short.usage.completion_tokens == 3


def test_concurrent_requests_are_all_answered(served: Served) -> None:
    answers: list[str | None] = []
    # Eight at once share one inference worker with the rest of a busy suite: allow them time.
    patient = served.client_for(served.key, max_retries=0, timeout=300)

    def ask(n: int) -> None:
        question: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"Question {n}"}]
        found = patient.chat.completions.create(model="tiny", messages=question, max_tokens=8)
        # The tiny random model may stop at its first token: an empty message is still an answer.
        answers.append(found.choices[0].finish_reason)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 8 and set(answers) <= {"stop", "length"}, answers


def test_bad_key_unknown_model_and_bad_input_get_openai_errors(served: Served) -> None:
    with pytest.raises(openai.AuthenticationError) as bad_key:
        served.client_for("mk_not-a-key", max_retries=0).models.list()
    assert bad_key.value.status_code == 401 and bad_key.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as unknown:
        served.client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        served.client.chat.completions.create(model="tiny", messages=HELLO, temperature=5)
    assert bad.value.param == "temperature" and "less than or equal to 2" in bad.value.message
    raw = httpx.post(f"{served.url}/openai/v1/chat/completions", json={"model": "tiny", "messages": []},
                     headers={"Authorization": f"Bearer {served.key}"})
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert raw.json()["error"]["type"] == "invalid_request_error"
    assert raw.json()["error"]["param"] == "messages"
    reviewer = served.stack.client.post("/v1/keys", json={"name": "rita", "role": "reviewer"}).json()["key"]
    with pytest.raises(openai.PermissionDeniedError):
        served.client_for(reviewer, max_retries=0).models.list()


def test_over_quota_only_one_of_two_concurrent_requests_passes_and_the_other_gets_429(served: Served) -> None:
    key = served.stack.new_org_key()
    admin = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {key}"})
    assert admin.put("/v1/org/quota", json={"requests_per_minute": 1}).status_code == 200
    client = served.client_for(key, max_retries=0, timeout=60)
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def ask() -> None:
        barrier.wait()
        try:
            outcomes.append(client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=2))
        except openai.RateLimitError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
    assert len(refused) == 1 and len(outcomes) == 2, outcomes
    assert 1 <= int(refused[0].response.headers["retry-after"]) <= 60
    assert "1 model requests per minute" in refused[0].message
    assert admin.get("/v1/usage").json()["totals"]["requests"] == 1  # the refused one cost nothing


def provider_app(stack: Stack, model: str, fallbacks: list[str] | None = None) -> str:
    return stack.publish({
        "nodes": [
            {"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "name"}]}},
            {"id": "gen", "type": "llm.prompt",
             "config": {"model": model, "fallbacks": fallbacks or [], "template": "Say hi to {{ name }}",
                        "temperature": 0, "max_new_tokens": 16}},
            {"id": "out", "type": "output"},
        ],
        "edges": [
            {"source": "in", "source_port": "name", "target": "gen", "target_port": "name"},
            {"source": "gen", "source_port": "text", "target": "out", "target_port": "text"},
        ],
    }, name=f"provider {model}")


def add_provider(stack: Stack, name: str, base_url: str, **fields: Any) -> None:
    made = stack.client.post("/v1/models", json={"name": name, "backend": "provider", "base_url": base_url,
                                                 "provider_model": "tiny", **fields})
    assert made.status_code == 201, made.text


def gen_node(run: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in run["trace"] if n["node_id"] == "gen")
    return found


@pytest.fixture(scope="module")
def providers(served: Served) -> Served:
    """Provider deployments on Mantle's own endpoint: one with the stack's key (allowed there), one
    with a wrong key, one with a model the endpoint does not know, one on a metadata address, one
    whose model is itself."""
    stack, endpoint = served.stack, f"{served.url}/openai/v1"
    for name, token in (("mantle", served.key), ("wrong", "mk_wrong")):
        made = stack.client.post("/v1/credentials", json={
            "type": "bearer_token", "name": name, "data": {"token": token}, "allowed_urls": [endpoint]})
        assert made.status_code == 201, made.text
    add_provider(stack, "via-mantle", endpoint, credential="mantle", input_price=2.0, output_price=4.0)
    add_provider(stack, "bad-key", endpoint, credential="wrong", max_retries=0)
    add_provider(stack, "no-such", endpoint, credential="mantle", provider_model="nothing-here",
                 max_retries=0)
    add_provider(stack, "metadata", "http://169.254.169.254/v1", max_retries=0)
    add_provider(stack, "loop", endpoint, credential="mantle", provider_model="loop", max_retries=0)
    return served


def test_a_run_calls_a_provider_deployment_and_counts_its_usage(providers: Served) -> None:
    stack = providers.stack
    app_id = provider_app(stack, "via-mantle")
    run = stack.wait_run(stack.run(app_id, {"name": "Ada"})["id"], timeout=60)
    assert run["status"] == "succeeded", run
    gen = gen_node(run)
    assert gen["result"]["backend"] == "provider" and gen["result"]["provider_model"] == "tiny"
    assert gen["result"]["usage_reported"] is True and 0 < gen["outputs"]["completion_tokens"] <= 16
    assert run["outputs"]["text"] == gen["outputs"]["text"]
    # The run's call (priced) and the call it made to Mantle's own endpoint, each counted once.
    rows = usage_rows(stack, app_id=app_id)
    assert set(rows) == {"via-mantle"} and rows["via-mantle"]["requests"] == 1
    tokens = gen["outputs"]["prompt_tokens"], gen["outputs"]["completion_tokens"]
    assert rows["via-mantle"]["cost"] == pytest.approx((tokens[0] * 2 + tokens[1] * 4) / 1e6)
    progress = [e for e in stack.events(run["id"]) if e["type"] == "node_progress"]
    assert "".join(e["data"]["delta"] for e in progress) == run["outputs"]["text"]


def test_fallbacks_answer_when_providers_fail_and_the_trace_says_why(providers: Served) -> None:
    stack = providers.stack
    app_id = provider_app(stack, "bad-key", fallbacks=["metadata", "tiny"])
    run = stack.wait_run(stack.run(app_id, {"name": "Ada"})["id"], timeout=60)
    assert run["status"] == "succeeded", run
    result = gen_node(run)["result"]
    assert result["model"] == "tiny" and result["backend"] == "hf"
    assert [(f["model"], f["error_type"]) for f in result["fallback_from"]] == [
        ("bad-key", "provider_auth"), ("metadata", "url_refused")]
    assert "credential 'wrong'" in result["fallback_from"][0]["error"]
    assert "cloud metadata" in result["fallback_from"][1]["error"]

    lost = stack.wait_run(stack.run(provider_app(stack, "no-such"), {"name": "Ada"})["id"], timeout=60)
    assert lost["status"] == "failed"
    failed = gen_node(lost)
    assert "has no model 'nothing-here'" in failed["error"]
    assert failed["result"]["error_type"] == "unknown_model"

    # A provider deployment calling itself through Mantle ends after a few hops.
    looped = stack.wait_run(stack.run(provider_app(stack, "loop"), {"name": "Ada"})["id"], timeout=60)
    assert looped["status"] == "failed" and "X-Mantle-Hops" in gen_node(looped)["error"]


def test_the_models_api_lists_provider_deployments_and_refuses_incomplete_ones(providers: Served) -> None:
    listed = {m["name"]: m for m in providers.stack.client.get("/v1/models").json()["items"]}
    assert listed["via-mantle"]["backend"] == "provider" and listed["via-mantle"]["available"] is True
    assert listed["via-mantle"]["input_price"] == 2.0 and listed["via-mantle"]["credential"] == "mantle"
    incomplete = providers.stack.client.post("/v1/models", json={"name": "p", "backend": "provider"})
    assert incomplete.status_code == 422 and "base_url and provider_model" in incomplete.text


def test_a_runs_model_node_over_quota_fails_with_the_reason(served: Served) -> None:
    key = served.stack.new_org_key()
    other = TestClient(served.stack.client.app, headers={"Authorization": f"Bearer {key}"})
    assert other.put("/v1/org/quota", json={"requests_per_minute": 0}).status_code == 200
    app_id = other.post("/v1/apps", json={"name": "capped", "graph": tiny_graph()}).json()["id"]
    assert other.post(f"/v1/apps/{app_id}/publish").status_code == 201
    run_id = other.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": "Ada"}}).json()["id"]

    def ended() -> dict[str, Any] | None:
        found: dict[str, Any] = other.get(f"/v1/runs/{run_id}").json()
        return found if found["status"] in ("succeeded", "failed") else None

    run = wait_until(ended, 30, "the capped run to end")
    assert run["status"] == "failed" and "0 model requests per minute is used up" in gen_node(run)["error"]
    assert other.get("/v1/usage").json()["totals"]["requests"] == 0


def test_a_retry_with_its_idempotency_key_gets_the_first_answer_billed_once(served: Served) -> None:
    key = served.stack.new_org_key()
    client = served.client_for(key, max_retries=0, timeout=60)
    first = client.chat.completions.create(model="tiny", messages=LONG, max_tokens=6,
                                           extra_headers={"Idempotency-Key": "order-42"})
    again = client.chat.completions.create(model="tiny", messages=LONG, max_tokens=6,
                                           extra_headers={"Idempotency-Key": "order-42"})
    assert again.id == first.id and again.choices[0].message.content == first.choices[0].message.content
    with pytest.raises(openai.ConflictError):
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=6,
                                       extra_headers={"Idempotency-Key": "order-42"})
    usage = httpx.get(f"{served.url}/v1/usage", headers={"Authorization": f"Bearer {key}"}).json()
    assert usage["totals"]["requests"] == 1


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalServer]:
    """The stand-in rate-limiting gateway, on loopback."""
    with serving() as server:
        yield server


def test_a_provider_that_rate_limits_is_retried_after_what_it_asks(providers: Served,
                                                                    gateway: LocalServer) -> None:
    stack = providers.stack
    tag = f"busy-{stack.name}"
    add_provider(stack, tag, f"{gateway.url}/openai-flaky/429/2/2/{tag}", max_retries=2)
    run = stack.wait_run(stack.run(provider_app(stack, tag), {"name": "Ada"})["id"], timeout=60)
    assert run["status"] == "succeeded", run
    assert run["outputs"]["text"] == "Hello from the gateway"
    calls = [seen for seen in gateway.requests if f"/{tag}/" in seen.path]
    assert len(calls) == 3  # two 429s, then the answer
    # Each retry waited the 2 s the gateway asked for (the SDK's own backoff starts at 0.5 s).
    assert all(later.at - earlier.at >= 1.9 for earlier, later in zip(calls, calls[1:], strict=False))
    assert gen_node(run)["outputs"]["completion_tokens"] == 3  # the gateway's usage, not a count of ours

    down = f"down-{stack.name}"
    add_provider(stack, down, f"{gateway.url}/openai-flaky/503/9/1/{down}", max_retries=1)
    failed = stack.wait_run(stack.run(provider_app(stack, down), {"name": "Ada"})["id"], timeout=60)
    assert failed["status"] == "failed"
    assert "failed (503 after 1 retries)" in gen_node(failed)["error"]
    assert len([seen for seen in gateway.requests if f"/{down}/" in seen.path]) == 2


def test_a_run_over_a_waiting_quota_goes_on_when_the_minute_reopens(served: Served) -> None:
    client = served.waiting.client

    def ended() -> list[dict[str, Any]] | None:
        runs = [client.get(f"/v1/runs/{run_id}").json() for run_id in served.waiting.run_ids]
        return runs if all(r["status"] in ("succeeded", "failed") for r in runs) else None

    runs = wait_until(ended, 90, "both runs of the waiting quota to end")
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"], runs
    # One model request a minute: the second run's model call waited for the next minute.
    minutes = sorted(gen_node(r)["finished_at"][:16] for r in runs)
    assert minutes[0] != minutes[1], minutes
    assert client.get("/v1/usage").json()["totals"]["requests"] == 2
