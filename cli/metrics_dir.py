"""A private Prometheus multiprocess folder for one `mantle api` or `mantle worker` process tree.

prometheus_client decides how it stores values when it is first imported, so this runs before
anything imports it. Each command gets a fresh folder (removed when it exits): two workers on
one machine, or a restarted one, never merge or inherit each other's counters. An operator who
sets `PROMETHEUS_MULTIPROC_DIR` keeps their own folder and its lifecycle.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def use_private_metrics_dir(service: str) -> Path | None:
    """Point this process and its children at a fresh metrics folder; None if it is too late."""
    existing = os.environ.get(VARIABLE)
    if existing:
        Path(existing).mkdir(parents=True, exist_ok=True)
        return Path(existing)
    if "prometheus_client" in sys.modules:
        return None  # values already live in this process's memory; a folder would hide them
    folder = Path(tempfile.mkdtemp(prefix=f"mantle-metrics-{service}-"))
    os.environ[VARIABLE] = str(folder)
    owner = os.getpid()

    def _remove() -> None:
        # Forked children inherit this hook; only the process that made the folder removes it.
        if os.getpid() == owner:
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(_remove)
    return folder
