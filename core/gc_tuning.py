"""Garbage collection in long-running processes (the API, run and inference workers).

A full collection (generation 2) walks every tracked object. With what the API imports
(FastAPI, pydantic, SQLAlchemy, Celery, the Twilio SDK...) one took 70-140 ms on this
project's 2-core reference machine, and every request in flight in that process waited: those
pauses were most of the slowest 1% of requests under `bench/load.py`. What exists when a
process has finished starting lives as long as the process, so it is moved out of the
collector's sight once (`gc.freeze`); later collections walk only what was made since. (A
frozen object that later becomes part of unreachable cycle is never freed: acceptable for the
start-up state of a server process, not for a test process that builds many apps.)
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect once, then leave every surviving object out of later collections."""
    gc.collect()
    gc.freeze()
