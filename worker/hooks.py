"""Where features plug into the run engine without the engine knowing them.

* **Wait handlers**, by suspend kind (`blocks/suspends.py`): when a deferred node suspends, its
  handler hands the work to whoever does it. Mantle's own are listed in `builtin_handlers`; a
  plug-in adds its with `on_wait`. A handler `in_transaction` runs inside the same transaction
  that marks the node waiting (so a review item, say, exists exactly when the node waits); the
  others run after the commit (sending a message to another queue). Kinds the run engine serves
  itself (timers, child runs) need none. `missing_handlers` names every kind a block may suspend
  with that nothing takes: a run worker refuses to start with one.
* **Services**: objects blocks may use through `ctx.services[name]` (an SMS sender, a
  credentials store), built once per worker process. Blocks never import them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from blocks.base import AnyBlock, Suspend
from blocks.suspends import InferenceRequest, ReviewRequest
from core.settings import Settings


@dataclass(frozen=True)
class WaitContext:
    """What a wait handler knows: the run, the node, what it waits for, and (if transactional) the session."""

    run_id: uuid.UUID
    org_id: uuid.UUID
    app_id: uuid.UUID
    node_id: str
    suspend: Suspend
    session: Session | None
    settings: Settings


WaitHandler = Callable[[WaitContext], None]
ServiceFactory = Callable[[Settings], Any]

_handlers: dict[str, tuple[WaitHandler, bool]] = {}
_services: dict[str, ServiceFactory] = {}


def on_wait(kind: str, *, in_transaction: bool = False) -> Callable[[WaitHandler], WaitHandler]:
    """Register the handler of deferred nodes that suspend with `kind`."""

    def register(handler: WaitHandler) -> WaitHandler:
        _handlers[kind] = (handler, in_transaction)
        return handler

    return register


@lru_cache
def builtin_handlers() -> dict[str, tuple[WaitHandler, bool]]:
    """Mantle's wait handlers by suspend kind, and whether each runs in the step's transaction."""
    from worker.inference.tasks import send_inference
    from worker.reviews import open_review

    return {ReviewRequest.kind: (open_review, True), InferenceRequest.kind: (send_inference, False)}


def wait_handler(kind: str) -> tuple[WaitHandler, bool] | None:
    """The handler of `kind` (a plug-in's first), and whether it runs in the transaction."""
    return _handlers.get(kind) or builtin_handlers().get(kind)


def handled_kinds(served: Iterable[str] = ()) -> frozenset[str]:
    """Every suspend kind with a handler, and `served` (the kinds the engine serves itself)."""
    return frozenset(_handlers) | frozenset(builtin_handlers()) | frozenset(served)


def missing_handlers(block_types: Iterable[type[AnyBlock]], served: Iterable[str] = ()) -> list[str]:
    """`block type: kind` for each kind a block may suspend with that no handler takes."""
    handled = handled_kinds(served)
    return [f"{b.type}: {m.kind}" for b in block_types for m in b.suspends if m.kind not in handled]


def service(name: str) -> Callable[[ServiceFactory], ServiceFactory]:
    """Register a factory for the service blocks find at `ctx.services[name]`."""

    def register(factory: ServiceFactory) -> ServiceFactory:
        _services[name] = factory
        return factory

    return register


def build_services(settings: Settings) -> dict[str, Any]:
    """Every registered service, built for this process."""
    return {name: factory(settings) for name, factory in _services.items()}
