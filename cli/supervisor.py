"""`mantle up`'s workers: started with it, watched, restarted when they die, stopped with it.

`mantle up` is one command a person runs in a terminal, under systemd or in a container, so the
workers it starts must never outlive it, whatever ends it:

* SIGTERM, SIGHUP and SIGINT (`kill`, a closed terminal, Ctrl-C) end the API, then `stop()` asks
  each worker for a warm shutdown (SIGTERM to its main process, which stops its own pool and
  scheduler) and kills the worker's whole process group after a deadline.
* SIGKILL of `mantle up` cannot be handled, so each worker asks the kernel for a signal when its
  parent dies (`PR_SET_PDEATHSIG`, see `die_with_supervisor`): the same warm shutdown.
* A worker that dies on its own (killed, out of memory) is noticed by the monitor thread, which
  says so, kills what is left of its process group (the scheduler, prefork children) and starts
  it again, at once the first time, then with backoff; after `GIVE_UP_AFTER` fast crashes in a
  row (each before the worker was ready, or within `FAST_CRASH_S` of its start) it gives up
  loudly and `/readyz` names it.

Each worker gets its own process group (a dead group leader cannot be replaced inside a shared
group), and its health endpoint on a free loopback port: the API's `/readyz` asks it, so a
missing or still-warming worker makes `mantle up` not ready.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from worker.probes import Probe

log = structlog.get_logger("mantle.up")

SUPERVISOR_ENV = "MANTLE_SUPERVISOR_PID"
# A worker that dies before its /readyz ever answered 200, or within this many seconds of
# starting, crashed "fast"; this many in a row and the supervisor stops restarting it (a broken
# install or a full disk will not heal itself). Readiness counts too: on a slow machine under load
# a worker's start alone can take longer than FAST_CRASH_S, and one that crashed there every time
# was restarted at once, forever.
FAST_CRASH_S = 30.0
GIVE_UP_AFTER = 5
MAX_BACKOFF_S = 30.0
_TICK_S = 0.2
_READY_PROBE_S = 1.0  # how often a started worker that has not been ready yet is asked


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exit_reason(returncode: int) -> str:
    """How a process ended, in words: "killed by SIGKILL" or "exited with status 1"."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def die_with_supervisor() -> bool:
    """In a worker started by `mantle up`: get SIGTERM when `mantle up` dies, even by SIGKILL.

    Set here, in the worker itself, rather than in Popen's `preexec_fn`, which Python documents
    as unsafe in a process with threads (the API's). If `mantle up` died before this ran, the
    worker is already an orphan and leaves at once. True when `mantle up` started this process.
    """
    expected = os.environ.get(SUPERVISOR_ENV)
    if not expected:
        return False
    from billiard.util import set_pdeathsig  # Celery's own prctl wrapper (its pool children use it)

    set_pdeathsig(signal.SIGTERM)
    if os.getppid() != int(expected):
        raise SystemExit(f"mantle up (pid {expected}) is gone; not starting")
    return True


@dataclass
class Child:
    """One supervised worker: how to start it and what happened to it."""

    name: str
    argv: list[str]
    health_port: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready: bool = False  # its /readyz answered 200 since it was last started
    probe_at: float = 0.0
    fast_crashes: int = 0
    restart_at: float | None = None
    last_exit: str = ""
    gave_up: bool = False
    exits: deque[str] = field(default_factory=lambda: deque(maxlen=GIVE_UP_AFTER))

    def alive(self) -> bool:
        """The worker's main process is running."""
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Starts, watches, restarts and stops `mantle up`'s workers from one monitor thread.

    One thread does all of it: the kernel's parent-death signal follows the thread that started
    a child, so the children are started by the thread that outlives them.
    """

    def __init__(self, children: list[Child], *, stop_timeout: float = 20.0,
                 env: Mapping[str, str] | None = None, on_ready: Callable[[], None] | None = None) -> None:
        self.children = children
        self.on_ready = on_ready  # called once, the first time every worker is ready
        self.stop_timeout = stop_timeout
        self.env = {**(env if env is not None else os.environ), SUPERVISOR_ENV: str(os.getpid())}
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._monitor, name="mantle-supervisor", daemon=True)

    def start(self) -> None:
        """Start every worker (returns once they are spawned) and watch them."""
        self._thread.start()
        self._started.wait()

    def stop(self) -> None:
        """Stop watching; warm-stop every worker, killing any that outlive the deadline."""
        self._stopping.set()
        self._thread.join()

    def probes(self) -> dict[str, Probe]:
        """A readiness probe per worker, for the API's `/readyz`."""
        return {child.name.replace(" ", "_"): self._probe(child) for child in self.children}

    def _probe(self, child: Child) -> Probe:
        def probe() -> str | None:
            if child.gave_up:
                return (f"{child.name} gave up after {GIVE_UP_AFTER} crashes in a row "
                        f"(last: {child.last_exit})")
            if not child.alive():
                return f"{child.name} is restarting ({child.last_exit})" if child.last_exit \
                    else f"{child.name} is not running"
            # urllib rather than httpx: httpx logs a line per request, and this runs per /readyz.
            url = f"http://127.0.0.1:{child.health_port}/readyz"
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return None
            except urllib.error.HTTPError as answer:
                try:
                    reasons = "; ".join(item["msg"] for item in json.load(answer)["detail"])
                except (ValueError, KeyError, TypeError):
                    reasons = f"its /readyz answered {answer.code}"
                return f"{child.name} is not ready: {reasons}"
            except OSError:
                return f"{child.name} is starting"

        return probe

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(child.argv, env=self.env, start_new_session=True)
        child.started_at = child.probe_at = time.monotonic()
        child.ready = False
        child.restart_at = None

    def _monitor(self) -> None:
        try:
            for child in self.children:
                self._spawn(child)
                log.info(f"{child.name} started (pid {child.process.pid if child.process else '?'})")
        finally:
            self._started.set()
        announced = False
        while not self._stopping.wait(_TICK_S):
            if not announced and self.on_ready is not None and not any(p() for p in self.probes().values()):
                announced = True
                self.on_ready()
            for child in self.children:
                try:
                    self._watch(child)
                except Exception:  # the monitor must outlive any one failure, or nothing restarts
                    log.exception(f"supervising the {child.name} failed", worker=child.name)
        self._terminate_all()

    def _watch(self, child: Child) -> None:
        now = time.monotonic()
        if child.gave_up:
            return
        if child.restart_at is not None:
            if now >= child.restart_at:
                self._spawn(child)
                log.info(f"{child.name} restarted (pid {child.process.pid if child.process else '?'})")
            return
        if child.process is None:
            return
        if child.process.poll() is None:
            if not child.ready and now >= child.probe_at:
                child.probe_at = now + _READY_PROBE_S
                child.ready = self._probe(child)() is None
            return
        child.last_exit = exit_reason(child.process.returncode)
        _kill_group(child.process.pid)  # its scheduler and pool children must not outlive it
        fast = not child.ready or now - child.started_at < FAST_CRASH_S
        child.fast_crashes = child.fast_crashes + 1 if fast else 1
        if child.fast_crashes >= GIVE_UP_AFTER:
            child.gave_up = True
            log.error(f"{child.name} exited ({child.last_exit}); it crashed {child.fast_crashes} times "
                      f"in a row before it was ready or within {FAST_CRASH_S:g} s of starting, so it is "
                      "not restarted again: see its errors above, then restart mantle up",
                      worker=child.name, reason=child.last_exit)
            return
        delay = 0.0 if child.fast_crashes <= 1 else min(2.0 ** (child.fast_crashes - 1), MAX_BACKOFF_S)
        child.restart_at = now + delay
        then = "restarting" if delay == 0 else f"restarting in {delay:g} s"
        log.warning(f"{child.name} exited ({child.last_exit}); {then}", worker=child.name,
                    reason=child.last_exit, restart_in_s=delay)

    def _terminate_all(self) -> None:
        running = [c for c in self.children if c.process is not None]
        for child in running:
            if child.alive() and child.process is not None:
                child.process.send_signal(signal.SIGTERM)  # the main process: a warm shutdown of its pool
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                log.warning(f"{child.name} did not stop within {self.stop_timeout:g} s; killing it",
                            worker=child.name)
            _kill_group(child.process.pid)
            child.process.wait()
            log.info(f"{child.name} stopped")


def _kill_group(pgid: int) -> None:
    """SIGKILL every process left in a worker's process group."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
