"""Models resident in a worker: one load however many ask, LRU eviction within the budget, pinned
models kept, models in use kept."""

from __future__ import annotations

import threading
from typing import Any

from core.settings import Settings
from inference.deployments import Deployment
from tests.inference import tiny_backend
from worker.inference.registry import ModelRegistry


class CountingLoader:
    """Loads the tiny model, counting loads per deployment (a slow load, to let requests pile up)."""

    def __init__(self) -> None:
        self.loads: dict[str, int] = {}
        self.gate = threading.Event()

    def __call__(self, deployment: Deployment, settings: Settings) -> Any:
        self.gate.wait(10)
        self.loads[deployment.name] = self.loads.get(deployment.name, 0) + 1
        return tiny_backend()


def deployment(name: str, **options: Any) -> Deployment:
    return Deployment(**{"name": name, "source": f"/models/{name}", **options})


def registry(budget_models: float) -> tuple[ModelRegistry, CountingLoader]:
    loader = CountingLoader()
    size = tiny_backend().weights_bytes
    return ModelRegistry(Settings(), loader=loader, budget_bytes=int(budget_models * size)), loader


def test_concurrent_requests_for_a_loading_model_share_one_load() -> None:
    models, loader = registry(4)
    engines: list[Any] = []

    def use() -> None:
        with models.use(deployment("a")) as engine:
            engines.append(engine)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    loader.gate.set()
    for t in threads:
        t.join(30)
    assert loader.loads == {"a": 1} and len({id(e) for e in engines}) == 1 and len(engines) == 6
    models.close()


def test_the_least_recently_used_unpinned_idle_model_is_evicted() -> None:
    models, loader = registry(2.5)
    loader.gate.set()
    for name in ("pinned", "a", "b"):
        with models.use(deployment(name, pinned=name == "pinned")):
            pass
    assert models.resident == ["pinned", "b"]  # "a" was the least recently used unpinned one
    with models.use(deployment("b")):
        with models.use(deployment("c")):  # "b" is in use: over budget rather than evicting it
            pass
    assert set(models.resident) == {"pinned", "b", "c"}
    with models.use(deployment("a")):
        pass
    assert models.resident[0] == "pinned" and "a" in models.resident and loader.loads["a"] == 2
    models.close()


def test_deployments_differing_only_in_batching_share_weights() -> None:
    models, loader = registry(4)
    loader.gate.set()
    with models.use(deployment("a", max_batch_size=4)), models.use(deployment("b", source="/models/a")):
        pass
    assert sum(loader.loads.values()) == 1
    models.close()
