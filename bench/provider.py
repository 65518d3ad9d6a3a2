"""The overhead of a provider hop: a run whose `llm.prompt` uses a provider deployment pointing at
Mantle's own OpenAI-compatible endpoint, beside the same run on the hosted deployment directly.

Both apps ask the default model (SmolLM2-135M-Instruct, CPU) for the same 64-token answer
(greedy); the provider one goes run worker → inference worker → the provider call through the
`openai` SDK and the SSRF guard (loopback allow-listed) → Mantle's `/openai/v1` → the inference
worker again → the stream back. Runs alternate, one at a time; prints one JSON line with the
median latency of each and their ratio (goal: <= 1.15x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.http_stack import http_stack  # noqa: E402  (after the path is set)
from bench.inference import ENDED, STORY, emit, gen_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="Runs of each app (alternating).")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--production", action="store_true", help="PostgreSQL and Redis instead of embedded")
    args = parser.parse_args()

    from inference.deployments import DEFAULT_MODEL

    with http_stack(args.production, {"MANTLE_HTTP_ALLOW_HOSTS": '["127.0.0.1"]'}) as stack:
        client, endpoint = stack.client, f"{stack.url}/openai/v1"
        assert client.post("/v1/credentials", json={"type": "bearer_token", "name": "self", "data": {
            "token": stack.key}, "allowed_urls": [endpoint]}).status_code == 201
        assert client.post("/v1/models", json={
            "name": "via-mantle", "backend": "provider", "base_url": endpoint,
            "provider_model": DEFAULT_MODEL, "credential": "self"}).status_code == 201

        def app(model: str) -> str:
            graph = {"nodes": [
                {"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "q"}]}},
                {"id": "gen", "type": "llm.prompt", "config": {
                    "model": model, "template": "{{ q }}", "temperature": 0,
                    "max_new_tokens": args.new_tokens}},
                {"id": "out", "type": "output"}],
                "edges": [{"source": "in", "source_port": "q", "target": "gen", "target_port": "q"},
                          {"source": "gen", "source_port": "text", "target": "out", "target_port": "text"}]}
            app_id: str = client.post("/v1/apps", json={"name": model, "graph": graph}).json()["id"]
            assert client.post(f"/v1/apps/{app_id}/publish").status_code == 201
            return app_id

        def run(app_id: str) -> tuple[dict[str, Any], float]:
            """One run, the request held open until the run ends (its latency, exactly)."""
            started = time.perf_counter()
            body = client.post(f"/v1/apps/{app_id}/runs", params={"wait": 30},
                               json={"inputs": {"q": STORY}}).json()
            while body["status"] not in ENDED:
                body = client.get(f"/v1/runs/{body['id']}").json()
            seconds = time.perf_counter() - started
            assert body["status"] == "succeeded", body
            return gen_of(client.get(f"/v1/runs/{body['id']}").json()), seconds

        hosted, provider = app(DEFAULT_MODEL), app("via-mantle")
        run(hosted), run(provider)  # warm both paths
        times: dict[str, list[float]] = {"hosted": [], "provider": []}
        tokens: dict[str, list[int]] = {"hosted": [], "provider": []}
        for _ in range(args.rounds):
            for name, app_id in (("hosted", hosted), ("provider", provider)):
                gen, seconds = run(app_id)
                times[name].append(seconds)
                tokens[name].append(gen["outputs"]["completion_tokens"])
        hosted_s, provider_s = statistics.median(times["hosted"]), statistics.median(times["provider"])
        emit({"bench": "provider_hop", "rounds": args.rounds, "completion_tokens": tokens["provider"],
              "hosted_median_s": round(hosted_s, 3), "provider_median_s": round(provider_s, 3),
              "latency_ratio": round(provider_s / hosted_s, 3), "hosted_tokens": tokens["hosted"],
              "stack": "production" if args.production else "embedded"})


if __name__ == "__main__":
    main()
