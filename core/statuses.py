"""Where a run and its nodes stand: the status names every layer shares.

They live at the ground (core/ imports nothing of ours) because the pure executor decides them,
the stores (models/) write and query them, and the API and workers read them; each spells
`RunStatus.waiting`, never the string.
"""

from __future__ import annotations

import enum


class NodeStatus(enum.StrEnum):
    """Where one node of a run stands."""

    pending = "pending"
    running = "running"
    waiting = "waiting"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"


class RunStatus(enum.StrEnum):
    """Where a run stands; `waiting` means a deferred node (model, reviewer) holds it."""

    queued = "queued"
    running = "running"
    waiting = "waiting"
    succeeded = "succeeded"
    failed = "failed"
    blocked = "blocked"
    cancelled = "cancelled"


# A run in one of these has ended for good.
TERMINAL = frozenset({RunStatus.succeeded, RunStatus.failed, RunStatus.blocked, RunStatus.cancelled})
# A run in one of these may still change (the opposite of TERMINAL).
LIVE = frozenset({RunStatus.queued, RunStatus.running, RunStatus.waiting})
# A node in one of these has not finished (it is skipped when its run ends first).
UNFINISHED = frozenset({NodeStatus.pending, NodeStatus.running, NodeStatus.waiting})
