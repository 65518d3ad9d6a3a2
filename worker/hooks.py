"""Where features plug into the run engine without the engine knowing them.

* **Wait handlers**, by `Suspend.kind`: when a deferred node suspends, its handler hands the
  work to whoever does it. A handler registered `in_transaction=True` runs inside the same
  transaction that marks the node waiting (so a review item, say, exists exactly when the
  node waits); the others run after the commit (sending a message to another queue).
* **Services**: objects blocks may use through `ctx.services[name]` (an SMS sender, a
  credentials store), built once per worker process. Blocks never import them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from blocks.base import Suspend
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


def wait_handler(kind: str) -> tuple[WaitHandler, bool] | None:
    """The handler registered for `kind`, and whether it runs in the transaction."""
    return _handlers.get(kind)


def service(name: str) -> Callable[[ServiceFactory], ServiceFactory]:
    """Register a factory for the service blocks find at `ctx.services[name]`."""

    def register(factory: ServiceFactory) -> ServiceFactory:
        _services[name] = factory
        return factory

    return register


def build_services(settings: Settings) -> dict[str, Any]:
    """Every registered service, built for this process."""
    return {name: factory(settings) for name, factory in _services.items()}
