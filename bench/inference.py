"""The default model (SmolLM2-135M-Instruct, CPU): plain `generate` beside Mantle serving it.

Prints one JSON line per measurement, all from one run on the same machine:

1. `hf_sequential`: the baseline, 16 chat requests one after another, each a plain
   `model.generate` (greedy, up to 64 new tokens);
2. `hf_continuous_batching`: the same 16 through Transformers' continuous batching
   (`generate_batch`), to decide between it and Mantle's padded batching on this device;
3. `mantle_first_request`: the first run after the inference worker said it is ready (its pinned
   model was loaded before it took work, so this is not a cold load);
4. `mantle_single`: one run alone (a full 64-token answer), end to end (API → run worker →
   Celery → inference worker → run worker), beside one plain `generate` of the same prompt
   (goal: within 15%);
5. `mantle_concurrent`: the 16 requests as 16 concurrent runs, the inference worker batching them
   (goal: >= 5x the sequential baseline's tokens/s).

It starts its own run and inference workers on a fresh embedded stack (SQLite and the
filesystem broker), or on PostgreSQL and Redis with `--production`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUESTIONS = [
    "What is the capital of France?", "Name three primary colours.", "How many legs does a spider have?",
    "What does a bee make?", "Say hello in Spanish.", "What is 12 times 12?", "Who wrote Hamlet?",
    "What is the boiling point of water?", "Give me a synonym for happy.",
    "What planet is closest to the sun?", "What is the largest ocean?", "Translate 'thank you' into French.",
    "What gas do plants absorb?", "What is the opposite of cold?", "How many days are in a leap year?",
    "What colour is the sky on a clear day?",
]


STORY = "Tell me a short story about a robot who learns to paint."  # a full-length answer
ENDED = ("succeeded", "failed", "cancelled", "blocked")


def gen_of(run: dict[str, Any]) -> dict[str, Any]:
    """The trace entry of the run's `llm.prompt` node."""
    found: dict[str, Any] = next(n for n in run["trace"] if n["node_id"] == "gen")
    return found


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def baseline(folder: Path, dtype: Any, new_tokens: int, continuous: bool) -> dict[str, Any]:
    """Plain Transformers on this process (the deployment's dtype): one generate per request, then
    continuous batching."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    # Mantle's engine threads flush denormal floats to zero (faster on a CPU): the baseline too.
    torch.set_flush_denormal(True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    chats = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                           add_generation_prompt=True) for q in QUESTIONS]
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in chats]

    def generate(prompt: list[int]) -> tuple[int, float]:
        started = time.perf_counter()
        mask = torch.ones(1, len(prompt), dtype=torch.long)
        out = model.generate(torch.tensor([prompt]), attention_mask=mask, max_new_tokens=new_tokens,
                             do_sample=False)
        return int(out.shape[1] - len(prompt)), time.perf_counter() - started

    generate(ids[0][:8])  # warm up
    story = tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": STORY}], tokenize=False,
                                                    add_generation_prompt=True), add_special_tokens=False)
    found: dict[str, Any] = {"single": generate(story["input_ids"])}
    started = time.perf_counter()
    tokens = sum(generate(p)[0] for p in ids)
    seconds = time.perf_counter() - started
    found["sequential"] = (tokens, seconds)
    emit({"bench": "hf_sequential", "requests": len(ids), "tokens": tokens, "seconds": round(seconds, 2),
          "tokens_per_s": round(tokens / seconds, 1), "dtype": str(dtype).removeprefix("torch.")})
    if continuous:
        try:
            config = GenerationConfig(max_new_tokens=new_tokens, do_sample=False,
                                      eos_token_id=tokenizer.eos_token_id,
                                      pad_token_id=tokenizer.pad_token_id)
            started = time.perf_counter()
            results = model.generate_batch(inputs=ids, generation_config=config)
            seconds = time.perf_counter() - started
            tokens = sum(len(r.generated_tokens) for r in results.values())
            emit({"bench": "hf_continuous_batching", "requests": len(ids), "tokens": tokens,
                  "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)})
        except Exception as exc:  # an API that moved must not stop the comparison that matters
            emit({"bench": "hf_continuous_batching", "error": repr(exc)[:300]})
    model.to("meta")  # free the weights before the workers load their own copy
    gc.collect()
    return found


def start_worker(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], float]:
    """A worker process and the time it reported ready (it consumes from then on)."""
    process = subprocess.Popen([sys.executable, "-m", "cli", "worker", *args], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if " ready." in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(180):
        process.kill()
        raise SystemExit(f"worker {args} did not start")
    return process, time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--production", action="store_true", help="PostgreSQL and Redis instead of embedded")
    parser.add_argument("--skip-continuous", action="store_true")
    args = parser.parse_args()

    from core.settings import Settings
    from inference.deployments import DEFAULT_MODEL, configured
    from worker.inference.backends import torch_dtype
    from worker.inference.sources import ensure_local

    tmp = Path(tempfile.mkdtemp(prefix="mantle-bench-"))
    extra = {"MANTLE_MODELS_DIR": str(REPO / ".mantle" / "models")}
    models = Settings(models_dir=REPO / ".mantle" / "models")
    deployment = configured(models)[DEFAULT_MODEL]
    folder = ensure_local(deployment, models, progress=True)
    plain = baseline(folder, torch_dtype(deployment.dtype, deployment.device), args.new_tokens,
                     not args.skip_continuous)

    from fastapi.testclient import TestClient

    from api.main import create_app
    from migrations.run import upgrade
    from models.db import session_factory, session_scope
    from models.orgs import Role, create_key, create_org

    if args.production:
        import psycopg
        admin = os.environ.get("MANTLE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
        name = f"mantle_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        database_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        broker_url = os.environ.get("MANTLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    else:
        database_url, broker_url = f"sqlite:///{tmp / 'mantle.db'}", "filesystem://"
    upgrade(database_url)
    env = {**os.environ, "MANTLE_DATABASE_URL": database_url, "MANTLE_BROKER_URL": broker_url,
           "MANTLE_DATA_DIR": str(tmp), "PYTHONPATH": str(REPO), **extra}
    settings = Settings(database_url=database_url, broker_url=broker_url, data_dir=tmp,
                        models_dir=REPO / ".mantle" / "models")
    with session_scope(session_factory(database_url)) as session:
        org = create_org(session, name="bench")
        _, key = create_key(session, org_id=org.id, name="bench", role=Role.admin)
    client = TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"})
    client.__enter__()  # runs the app's lifespan: on PostgreSQL, waits wake on NOTIFY
    workers = [start_worker(env, "--queues", "runs", "--concurrency", "2")[0]]
    inference, ready_at = start_worker(env, "--queues", "inference")
    workers.append(inference)
    try:
        graph = {"nodes": [
            {"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "q"}]}},
            {"id": "gen", "type": "llm.prompt", "config": {"template": "{{ q }}", "temperature": 0,
                                                           "max_new_tokens": args.new_tokens}},
            {"id": "out", "type": "output"}],
            "edges": [{"source": "in", "source_port": "q", "target": "gen", "target_port": "q"},
                      {"source": "gen", "source_port": "text", "target": "out", "target_port": "text"}]}
        app_id = client.post("/v1/apps", json={"name": "bench", "graph": graph}).json()["id"]
        assert client.post(f"/v1/apps/{app_id}/publish").status_code == 201

        def run(question: str) -> tuple[dict[str, Any], float]:
            """One run, the request held open until the run ends (its latency, exactly)."""
            started = time.perf_counter()
            body = client.post(f"/v1/apps/{app_id}/runs", params={"wait": 30},
                               json={"inputs": {"q": question}}).json()
            while body["status"] not in ENDED:
                body = client.get(f"/v1/runs/{body['id']}").json()
            return gen_of(client.get(f"/v1/runs/{body['id']}").json()), time.perf_counter() - started

        first, seconds = run(QUESTIONS[0])
        emit({"bench": "mantle_first_request", "seconds": round(seconds, 2),
              "since_worker_ready_s": round(time.perf_counter() - ready_at, 2),
              "timing": first["result"]["timing"]})
        single, seconds = run(STORY)
        tokens, plain_seconds = plain["single"]
        emit({"bench": "mantle_single", "seconds": round(seconds, 3),
              "tokens": single["outputs"]["completion_tokens"],
              "hf_generate_seconds": round(plain_seconds, 3), "hf_tokens": tokens,
              "latency_ratio": round(seconds / plain_seconds, 3), "timing": single["result"]["timing"]})

        # All 16 at once; the client then looks once a second (on two cores a busier client would
        # take CPU from the model), and the wall time comes from the runs' own timestamps.
        ids = [client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"q": q}}).json()["id"]
               for q in QUESTIONS]
        runs: dict[str, dict[str, Any]] = {}
        while len(runs) < len(ids):
            time.sleep(1)
            for run_id in ids:
                body = runs.get(run_id) or client.get(f"/v1/runs/{run_id}").json()
                if body["status"] in ENDED:
                    runs[run_id] = body
        began = min(datetime.fromisoformat(r["created_at"]) for r in runs.values())
        ended = max(datetime.fromisoformat(r["finished_at"]) for r in runs.values())
        seconds = (ended - began).total_seconds()
        results = [gen_of(r) | {"status": r["status"]} for r in runs.values()]
        tokens = sum(r["outputs"]["completion_tokens"] for r in results if r.get("outputs"))
        base_tokens, base_seconds = plain["sequential"]
        base_tps = base_tokens / base_seconds
        def median(key: str) -> float | None:
            values = sorted(r["result"]["timing"][key] for r in results if r.get("result"))
            return values[len(values) // 2] if values else None

        succeeded = len([r for r in results if r["status"] == "succeeded"])
        emit({"bench": "mantle_concurrent", "requests": len(QUESTIONS), "succeeded": succeeded,
              "tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
              "baseline_tokens_per_s": round(base_tps, 1), "ratio": round(tokens / seconds / base_tps, 2),
              "queue_wait_p50_s": median("queue_wait_s"),
              "time_to_first_token_p50_s": median("time_to_first_token_s"),
              "generation_p50_s": median("generation_s"),
              "stack": "production" if args.production else "embedded"})
    finally:
        client.__exit__(None, None, None)
        for process in workers:
            process.terminate()
        for process in workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
