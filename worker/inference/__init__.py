"""Mantle's own model serving: the inference worker's side of `llm.prompt`.

* `deployments`: what a model deployment is (name, source, backend, dtype, device, batching
  limits, context, pinned) and the ones shipped in settings. No torch here: the API and the
  run worker import it to validate apps and to send requests.
* `sources`: turns a deployment's source (a local folder, a GGUF file, a hub id) into a local
  folder of safetensors, once (`mantle models pull NAME`).
* `backends`: `hf` (Transformers) and `deepspeed` (`deepspeed.init_inference`): prefill and
  decode steps over a batch, with the KV cache they own.
* `batcher`: the batching engine, one thread per resident model: padded, left-aligned
  batches; each request keeps its sampling parameters and stop sequences and leaves the
  batch when done; requests that arrive mid-batch join at the next step where the backend
  can reshape its cache.
* `registry`: the models resident in one worker process under a memory budget (LRU, pinned,
  preloaded, one load per model even when many requests want it).
* `tasks`: the `inference.generate` Celery task and the wait handler that sends it.

Only the inference worker process imports torch; it loads each model once per process.
"""
