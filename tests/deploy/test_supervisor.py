"""`mantle up`'s supervisor with real worker processes (tiny Python programs), on its own timings.

A worker that crashes before it was ever ready is given up on however long its start took; one
that was ready and then died is restarted however often that happens.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import supervisor as sup
from cli.supervisor import GIVE_UP_AFTER, Child, Supervisor, free_port
from tests.engine.conftest import wait_until

# Notes its start, answers one GET (its /readyz) with 200 if told to, then exits with status 1.
WORKER = """
import http.server, sys
with open(sys.argv[2], "a") as starts:
    starts.write("started\\n")
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
if sys.argv[3] == "ready":
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).handle_request()
sys.exit(1)
"""


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every crash counts as slow by the clock (FAST_CRASH_S 0), restarts come at once."""
    monkeypatch.setattr(sup, "FAST_CRASH_S", 0.0)
    monkeypatch.setattr(sup, "MAX_BACKOFF_S", 0.05)
    monkeypatch.setattr(sup, "_READY_PROBE_S", 0.05)


def supervised(tmp_path: Path, mode: str) -> tuple[Supervisor, Child, Path]:
    """A supervisor of one worker running WORKER in `mode`, and the file its starts are noted in."""
    starts = tmp_path / "starts"
    port = free_port()
    child = Child("run worker", [sys.executable, "-c", WORKER, str(port), str(starts), mode], port)
    return Supervisor([child], stop_timeout=5), child, starts


@pytest.fixture
def running() -> Iterator[list[Supervisor]]:
    """Supervisors started by the test, stopped when it ends."""
    started: list[Supervisor] = []
    yield started
    for each in started:
        each.stop()


def start_count(starts: Path) -> int:
    return len(starts.read_text().splitlines()) if starts.exists() else 0


def test_a_worker_that_crashes_before_it_is_ready_is_given_up_on_however_slow_its_start(
        tmp_path: Path, running: list[Supervisor]) -> None:
    supervisor, child, starts = supervised(tmp_path, "never ready")
    supervisor.start()
    running.append(supervisor)

    wait_until(lambda: child.gave_up, 60, "the supervisor giving up on the worker")

    assert start_count(starts) == GIVE_UP_AFTER
    reason = supervisor.probes()["run_worker"]()
    assert reason == f"run worker gave up after {GIVE_UP_AFTER} crashes in a row (last: exited with status 1)"


def test_a_worker_that_was_ready_before_it_died_is_restarted_every_time(
        tmp_path: Path, running: list[Supervisor]) -> None:
    supervisor, child, starts = supervised(tmp_path, "ready")
    supervisor.start()
    running.append(supervisor)

    wait_until(lambda: start_count(starts) > GIVE_UP_AFTER + 1, 60, "more restarts than a crash loop gets")

    assert not child.gave_up and child.fast_crashes == 1
