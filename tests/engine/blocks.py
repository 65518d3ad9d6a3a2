"""Block types for engine tests, loaded by the worker through `MANTLE_BLOCK_PLUGINS`.

`test.count` records every execution in a table of the test database, through its own
connection, so a test can prove how many times a node really ran.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, text

from blocks.base import Block, BlockContext, Execution, NoConfig, Suspend
from models.db import make_engine
from worker.hooks import WaitContext, on_wait

COUNTER_TABLE = "test_executions"


@lru_cache
def _engine(url: str) -> Engine:
    # Mantle's own engine factory: on SQLite it opens the file with the same SQLite library as
    # Mantle does in this process (sqlean). Two copies of SQLite in one process each keep their
    # own POSIX locks on the file, and one closing it drops the other's: the file was corrupted
    # ("database disk image is malformed") when both wrote at once.
    return make_engine(url)


def ensure_counter_table(url: str) -> None:
    """Create the executions table (not part of Mantle's schema)."""
    with _engine(url).begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {COUNTER_TABLE} "
                          "(run_id VARCHAR(64), node_id VARCHAR(64), attempt INTEGER)"))


def executions(url: str, run_id: str) -> dict[str, int]:
    """How many times each node of a run executed, by node id."""
    with _engine(url).connect() as conn:
        rows = conn.execute(text(f"SELECT node_id, COUNT(*) FROM {COUNTER_TABLE} WHERE run_id = :r "
                                 "GROUP BY node_id"), {"r": run_id.replace("-", "")}).all()
    return {r[0]: r[1] for r in rows}


class CountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    database_url: str = ""
    fail_times: int = 0
    hold_file: str = ""
    hold_seconds: float = 30.0
    fail_until_file: str = ""  # fail (after counting) while this file does not exist
    hold_values: list[Any] = []  # hold (as hold_file says) only for these input values; empty: always


class ValueIn(BaseModel):
    value: Any


class ValueOut(BaseModel):
    value: Any


class CountBlock(Block[CountConfig, ValueIn, ValueOut]):
    """Records its execution, optionally waits for a file to appear, optionally fails N times or
    until a file appears."""

    type = "test.count"
    description = "Counts its executions in the database (tests only)."
    category = "test"
    side_effects = True

    def run(self, inputs: ValueIn, ctx: BlockContext) -> ValueOut:
        cfg = self.config
        if cfg.hold_file and (not cfg.hold_values or inputs.value in cfg.hold_values):
            deadline = time.monotonic() + cfg.hold_seconds
            while not Path(cfg.hold_file).exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{cfg.hold_file} never appeared")
                time.sleep(0.02)
        with _engine(cfg.database_url).begin() as conn:
            conn.execute(text(f"INSERT INTO {COUNTER_TABLE} VALUES (:r, :n, :a)"),
                         {"r": ctx.run_id.hex, "n": ctx.node_id, "a": ctx.attempt})
        if ctx.attempt <= cfg.fail_times:
            raise RuntimeError(f"planned failure {ctx.attempt} of {cfg.fail_times}")
        if cfg.fail_until_file and not Path(cfg.fail_until_file).exists():
            raise RuntimeError(f"{cfg.fail_until_file} does not exist yet")
        return ValueOut(value=inputs.value)


class ExternalBlock(Block[NoConfig, ValueIn, ValueOut]):
    """A deferred block whose result a test delivers by hand (`runs.resume`)."""

    type = "test.external"
    description = "Waits for a result delivered from outside (tests only)."
    category = "test"
    execution = Execution.deferred

    def start(self, inputs: ValueIn, ctx: BlockContext) -> Suspend:
        return Suspend("external", {"question": inputs.value})

    def resume(self, inputs: ValueIn, result: Mapping[str, Any], ctx: BlockContext) -> ValueOut:
        return ValueOut(value=result["answer"])


class PauseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = 0.0
    started: str | None = None  # a file the block creates as it starts, for a test to wait on


class PauseBlock(Block[PauseConfig, ValueIn, ValueOut]):
    """A pure block that takes `seconds` to pass its value on: slower than a step's slice for pure
    blocks, it must be finished outside the step (and a direct run must go through the queue)."""

    type = "test.pause"
    description = "Passes its value on after a pause (tests only)."
    category = "test"
    pure = True

    def run(self, inputs: ValueIn, ctx: BlockContext) -> ValueOut:
        if self.config.started:
            Path(self.config.started).touch()
        time.sleep(self.config.seconds)  # the slow work this block stands for
        return ValueOut(value=inputs.value)


BLOCKS = [CountBlock, ExternalBlock, PauseBlock]


@on_wait("external")
def _external(ctx: WaitContext) -> None:
    """Nothing to hand over: the test delivers the result itself (`runs.resume`)."""
