"""Prometheus metrics of an inference worker (served on its health port, `mantle worker --health-port`).

Tokens per second is `rate(mantle_inference_tokens_total[1m])`; per request it is observed in
`mantle_inference_request_tokens_per_second`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Summed over the worker's live processes when metrics are merged (see worker/metrics_export.py).
MODELS_LOADED = Gauge("mantle_inference_models_loaded", "Models resident in this worker",
                      multiprocess_mode="livesum")
RESIDENT_BYTES = Gauge("mantle_inference_resident_bytes", "Bytes of weights resident in this worker",
                       multiprocess_mode="livesum")
LOAD_SECONDS = Histogram("mantle_inference_load_seconds", "Time to load a model", ["model"],
                         buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600))
CACHE = Counter("mantle_inference_model_cache_total", "Model lookups: hit (resident) or miss (loaded)",
                ["model", "result"])
EVICTIONS = Counter("mantle_inference_evictions_total", "Models evicted to stay within the memory budget",
                    ["model"])
QUEUE_WAIT = Histogram("mantle_inference_queue_wait_seconds", "Time a request waited for its batch",
                       ["model"], buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120))
BATCH_SIZE = Histogram("mantle_inference_batch_size", "Rows decoded together per step", ["model"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
TOKENS = Counter("mantle_inference_tokens_total", "Tokens generated", ["model"])
REQUEST_TPS = Histogram("mantle_inference_request_tokens_per_second", "Tokens per second of one request",
                        ["model"], buckets=(1, 5, 10, 20, 50, 100, 200, 500, 1000))

# What organizations' model calls consumed (the numbers of GET /v1/usage), counted when a call's
# usage is committed: from runs and from the OpenAI-compatible API alike.
USAGE_REQUESTS = Counter("mantle_model_requests_total", "Model calls answered", ["org", "model"])
USAGE_TOKENS = Counter("mantle_model_tokens_total", "Tokens of answered model calls",
                       ["org", "model", "kind"])
USAGE_COST = Counter("mantle_model_cost_total", "Cost of answered model calls (deployment prices)",
                     ["org", "model"])
