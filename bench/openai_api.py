"""Mantle's OpenAI-compatible API on the default model (SmolLM2-135M-Instruct, CPU), driven by the
official `openai` client, beside plain `generate` in the same process.

Prints one JSON line per measurement:

1. `hf_sequential`: the baseline, the 16 chat questions of `bench/inference.py` one after another,
   each a plain `model.generate` (greedy, up to 64 new tokens);
2. `openai_concurrent_streams`: the same 16 as 16 concurrent streaming clients
   (`stream=True`, usage included) against `/openai/v1/chat/completions`: tokens per second over
   the wall time of all 16 (goal: >= 5x the baseline), and each client's time to its first
   content chunk (p50, p95).

It starts a fresh embedded stack (or PostgreSQL and Redis with `--production`): a run worker, an
inference worker, and the API over HTTP on loopback.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.http_stack import http_stack  # noqa: E402  (after the path is set)
from bench.inference import QUESTIONS, baseline, emit  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--production", action="store_true", help="PostgreSQL and Redis instead of embedded")
    args = parser.parse_args()

    import openai

    from core.settings import Settings
    from inference.deployments import DEFAULT_MODEL, configured
    from worker.inference.backends import torch_dtype
    from worker.inference.sources import ensure_local

    models = Settings(models_dir=REPO / ".mantle" / "models")
    deployment = configured(models)[DEFAULT_MODEL]
    folder = ensure_local(deployment, models, progress=True)
    plain = baseline(folder, torch_dtype(deployment.dtype, deployment.device), args.new_tokens, False)
    base_tokens, base_seconds = plain["sequential"]

    with http_stack(args.production) as stack:
        client = openai.OpenAI(base_url=f"{stack.url}/openai/v1", api_key=stack.key, max_retries=0,
                               timeout=300)
        client.chat.completions.create(model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Hi"}],
                                       max_tokens=2)  # the path is warm, as for the baseline
        found: list[dict[str, Any]] = []
        barrier = threading.Barrier(len(QUESTIONS))

        def ask(question: str) -> None:
            barrier.wait()
            started = time.perf_counter()
            first: float | None = None
            usage = None
            stream = client.chat.completions.create(
                model=DEFAULT_MODEL, messages=[{"role": "user", "content": question}], temperature=0,
                max_tokens=args.new_tokens, stream=True, stream_options={"include_usage": True})
            for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter()
                usage = chunk.usage or usage
            ended = time.perf_counter()
            found.append({"started": started, "ended": ended, "ttft": (first or ended) - started,
                          "tokens": usage.completion_tokens if usage else 0})

        threads = [threading.Thread(target=ask, args=(q,)) for q in QUESTIONS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = max(f["ended"] for f in found) - min(f["started"] for f in found)
        tokens = sum(f["tokens"] for f in found)
        ttft = [f["ttft"] for f in found]
        emit({"bench": "openai_concurrent_streams", "clients": len(found), "tokens": tokens,
              "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
              "baseline_tokens_per_s": round(base_tokens / base_seconds, 1),
              "ratio": round(tokens / seconds / (base_tokens / base_seconds), 2),
              "ttft_p50_s": round(percentile(ttft, 0.5), 3), "ttft_p95_s": round(percentile(ttft, 0.95), 3),
              "stack": "production" if args.production else "embedded"})


if __name__ == "__main__":
    main()
