"""The models resident in one inference worker process, within a memory budget.

A model is loaded on first use (or at start, if pinned) and stays until room is needed: then
the least recently used one that is neither pinned nor serving a request is evicted. While a
model loads, every other request for it waits on the same load instead of starting a second.
Deployments that differ only in batching settings share one copy of the weights.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
import torch

from core.settings import Settings
from inference.deployments import Deployment
from worker.inference import metrics
from worker.inference.backends import HFBackend, torch_dtype
from worker.inference.batcher import Batcher
from worker.inference.sources import ModelUnavailable, ensure_local, local_folder
from worker.inference.tokens import Tokenizer

log = structlog.get_logger("mantle.inference")

Loader = Callable[[Deployment, Settings], Any]


def load_backend(deployment: Deployment, settings: Settings) -> Any:
    """Load a deployment's weights and tokenizer from its local folder (never from a hub)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if deployment.device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable(f"model {deployment.name!r} runs on {deployment.device}, and this inference "
                               "worker has no GPU")
    folder = ensure_local(deployment, settings)
    dtype = torch_dtype(deployment.dtype, deployment.device)
    hf_tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
    model = model.to(deployment.device).eval()
    tokenizer = Tokenizer.for_model(hf_tokenizer, model)
    if deployment.backend == "deepspeed":
        from worker.inference.ds_backend import deepspeed_backend

        return deepspeed_backend(model, tokenizer, device=deployment.device, dtype=dtype,
                                 max_context=deployment.max_context)
    return HFBackend(model, tokenizer, device=deployment.device, max_context=deployment.max_context)


def estimate_bytes(deployment: Deployment, settings: Settings) -> int:
    """Roughly what loading the deployment will take: the size of its weight files."""
    folder = local_folder(deployment, settings)
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for pattern in ("*.safetensors", "pytorch_model*.bin")
               for f in folder.glob(pattern))


@dataclass
class Resident:
    """A loaded model and who is using it."""

    deployment: Deployment
    batcher: Batcher
    bytes: int
    in_use: int = 0
    loaded_at: float = field(default_factory=time.monotonic)


class ModelRegistry:
    """Loads, shares and evicts models for one worker process."""

    def __init__(self, settings: Settings, loader: Loader = load_backend,
                 budget_bytes: int | None = None) -> None:
        self.settings = settings
        self.loader = loader
        default = int(settings.inference_memory_budget_gb * 2**30)
        self.budget = default if budget_bytes is None else budget_bytes
        self._lock = threading.Lock()
        self._resident: OrderedDict[str, Resident] = OrderedDict()
        self._loading: dict[str, Future[Resident]] = {}
        self.load_errors: dict[str, str] = {}  # why a preload failed, by deployment name

    @property
    def resident(self) -> list[str]:
        """Names of the loaded models, least recently used first."""
        with self._lock:
            return [r.deployment.name for r in self._resident.values()]

    @contextmanager
    def use(self, deployment: Deployment) -> Iterator[Batcher]:
        """The deployment's batching engine, loading the model if needed; not evicted while held."""
        resident = self._acquire(deployment)
        try:
            yield resident.batcher
        finally:
            with self._lock:
                resident.in_use -= 1

    def _acquire(self, deployment: Deployment) -> Resident:
        key = deployment.weights_key
        with self._lock:
            found = self._resident.get(key)
            if found is not None:
                self._resident.move_to_end(key)
                found.in_use += 1
                metrics.CACHE.labels(deployment.name, "hit").inc()
                return found
            future = self._loading.get(key)
            owner = future is None
            if owner:
                future = self._loading[key] = Future()
        assert future is not None
        if not owner:
            resident = future.result()  # a load in progress: wait for it, never load twice
            with self._lock:
                resident.in_use += 1
            metrics.CACHE.labels(deployment.name, "hit").inc()
            return resident
        metrics.CACHE.labels(deployment.name, "miss").inc()
        try:
            resident = self._load(deployment)
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            future.set_exception(exc)
            raise
        with self._lock:
            resident.in_use += 1
            self._resident[key] = resident
            del self._loading[key]
            self._update_gauges()
        future.set_result(resident)
        return resident

    def _load(self, deployment: Deployment) -> Resident:
        self._make_room(estimate_bytes(deployment, self.settings), deployment)
        started = time.monotonic()
        backend = self.loader(deployment, self.settings)
        seconds = time.monotonic() - started
        metrics.LOAD_SECONDS.labels(deployment.name).observe(seconds)
        self._make_room(backend.weights_bytes, deployment)  # the estimate can be off (or unknown)
        log.info("model_loaded", model=deployment.name, backend=backend.name, seconds=round(seconds, 2),
                 bytes=backend.weights_bytes)
        batcher = Batcher(backend, name=deployment.name, max_batch_size=deployment.max_batch_size,
                          max_wait_ms=deployment.max_wait_ms, join_running=deployment.join_running)
        batcher.warm_up()
        return Resident(deployment, batcher, backend.weights_bytes)

    def _make_room(self, needed: int, incoming: Deployment) -> None:
        """Evict least recently used, unpinned, idle models until `needed` more bytes fit."""
        evicted: list[Resident] = []
        with self._lock:
            used = sum(r.bytes for r in self._resident.values())
            for key, resident in list(self._resident.items()):
                if used + needed <= self.budget:
                    break
                if resident.deployment.pinned or resident.in_use:
                    continue
                del self._resident[key]
                used -= resident.bytes
                evicted.append(resident)
            self._update_gauges()
            if used + needed > self.budget:
                log.warning("memory_budget_exceeded", model=incoming.name, needed=needed, used=used,
                            budget=self.budget)
        for resident in evicted:
            resident.batcher.close()
            metrics.EVICTIONS.labels(resident.deployment.name).inc()
            log.info("model_evicted", model=resident.deployment.name, bytes=resident.bytes)
        if evicted:
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _update_gauges(self) -> None:
        metrics.MODELS_LOADED.set(len(self._resident))
        metrics.RESIDENT_BYTES.set(sum(r.bytes for r in self._resident.values()))

    def preload(self, deployments: Iterable[Deployment]) -> None:
        """Load pinned models now, so their first request is not a cold start."""
        for deployment in deployments:
            try:
                with self.use(deployment):
                    pass
            except Exception as exc:  # a missing model must not stop the worker serving others
                log.error("preload_failed", model=deployment.name, error=str(exc))
                self.load_errors[deployment.name] = str(exc).splitlines()[0][:300] if str(exc) else repr(exc)

    def close(self) -> None:
        """Stop every engine thread."""
        with self._lock:
            residents = list(self._resident.values())
            self._resident.clear()
        for resident in residents:
            resident.batcher.close()
