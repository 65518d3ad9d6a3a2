"""Mantle side by side with n8n: the same webhook app, the same load tool, the same machine, one run.

n8n is the most used self-hosted workflow engine; its webhook → set workflow
(`bench/data/n8n-bench-workflow.json`) is the closest thing to the Mantle app
`trigger.webhook (respond: output) → text.template → output`. Both get the JSON body
`{"text": "bench"}` and answer with "Hello bench!" (n8n: `{"text": "Hello bench!"}`; Mantle:
the run id, its status and `outputs: {"text": "Hello bench!"}`). Figures of one system alone move
a lot between machines of the same kind, so only the ratios of one run mean anything: they are
what this script is for.

Three systems, each started fresh, measured, then stopped before the next one starts (so an idle
system never shares the cores with a measured one), in turn, `--rounds` times (default 2:
n8n, Mantle-pg, Mantle-embedded, n8n, Mantle-pg, Mantle-embedded):

* `n8n`: `n8n start` on its defaults (SQLite, executions saved), the workflow imported and published
  into a fresh user folder;
* `mantle-pg`: PostgreSQL + Redis, `api --workers 2` and one run worker (`worker --queues runs
  --concurrency 2`), on a private PostgreSQL (fsync on, as in production) and Redis started for the
  round (bench/services.py), migrated, with an organization and an API key made by the CLI;
* `mantle-embedded`: `mantle up` as a person runs it (SQLite, the folder broker, its run and
  inference workers) on a fresh data folder.

Each is warmed up (`--warmup-s` of wrk, not reported) once its processes are quiet, then loaded with
wrk (Debian's) as the recipe says: 1 client for 10 s, then 50 clients for 20 s with a 10 s timeout,
the body sent by `bench/data/wrk-post.lua`. Each load prints one JSON line: requests/s, p50/p75/
p90/p99 from wrk's `--latency` distribution, errors (non-2xx answers plus socket errors), and CPU
per request over all the system's processes (psutil: the process trees of n8n, of the API and run
worker with PostgreSQL's and Redis's processes, of `mantle up`; user + system time over the wrk run,
divided by the requests answered), split by process, beside wrk's own. A last line sums up: medians
over the rounds, Mantle / n8n ratios, and the goals (Mantle on PostgreSQL: 1 client p50 ≤ 0.5× n8n's;
50 clients ≥ 3× n8n's requests/s with 0 errors and p99 ≤ 300 ms; embedded: n8n's figures or better,
p50 at 1 client, requests/s and p99 at 50, errors at both).

n8n is not part of the repository: install it once (the message printed without it says how, about
5 minutes and 2.3 GB) and pass `--n8n-dir` or set MANTLE_BENCH_N8N_DIR. Without n8n or wrk the
script says how to get them and prints a `skipped` line (exit status 0); `--systems mantle-pg`
measures Mantle alone (for bench/ab.py). Every process it starts is stopped when it ends, however
it ends (SIGTERM and SIGHUP included). Run from the repository root: `.venv/bin/python bench/peers.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.services import PrivatePostgres, PrivateRedis, free_port  # noqa: E402

DATA = REPO / "bench" / "data"
WORKFLOW = DATA / "n8n-bench-workflow.json"
WORKFLOW_ID = "benchWebhook0001"
POST_LUA = DATA / "wrk-post.lua"
BODY = {"text": "bench"}
ANSWER = "Hello bench!"
N8N_VERSION = "2.8.4"
SYSTEMS = ("n8n", "mantle-pg", "mantle-embedded")
INSTALL = """n8n is not installed{where}. Install it once (npm registry only; its `xlsx` dependency
points at a CDN, so it is overridden; about 5 minutes and 2.3 GB), outside the repository:

    mkdir -p DIR && cd DIR && cat > package.json <<'EOF'
    {{"name": "peer-n8n", "private": true, "dependencies": {{"n8n": "{version}"}},
     "overrides": {{"xlsx": "0.18.5"}}}}
    EOF
    npm install --no-audit --no-fund

then run this again with --n8n-dir DIR (or MANTLE_BENCH_N8N_DIR=DIR).
"""

# What Mantle runs: the webhook waits for the run's end (30 s, longer than wrk's 10 s timeout, so a
# slow run shows as a wrk timeout rather than as a 202 that wrk would count as a success).
MANTLE_APP = {
    "nodes": [{"id": "hook", "type": "trigger.webhook", "config": {"respond": "output", "wait_s": 30}},
              {"id": "greet", "type": "text.template", "config": {"template": "Hello {{ body.text }}!"}},
              {"id": "out", "type": "output"}],
    "edges": [{"source": "hook", "source_port": "body", "target": "greet", "target_port": "body"},
              {"source": "greet", "source_port": "text", "target": "out", "target_port": "text"}]}


@dataclass(frozen=True)
class Load:
    """One wrk run: connections, seconds, and wrk's --timeout (None: wrk's default, 2 s)."""

    clients: int
    seconds: int
    timeout_s: int | None = None


# A component of a system: a function giving the processes whose trees it covers (found afresh at
# each reading, so processes that start during a run, such as PostgreSQL backends, count).
Component = Callable[[], list[psutil.Process]]


@dataclass
class Target:
    """A started system: the URL wrk loads, its components, and what it says it is."""

    system: str
    url: str
    components: dict[str, Component]
    describe: dict[str, Any] = field(default_factory=dict)


class Failed(RuntimeError):
    """A system did not start or did not answer as expected."""


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the `with` blocks, which stop what they started


# -- processes ---------------------------------------------------------------------------------


def family(pid: int) -> list[psutil.Process]:
    """Process `pid` and all its descendants (empty once it is gone)."""
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def tree_of(*pids: int) -> Component:
    """A component: the trees of these processes."""
    return lambda: [p for pid in pids for p in family(pid)]


@contextlib.contextmanager
def started(command: list[str], *, env: dict[str, str], cwd: Path,
            log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`command` in its own session, its output in `log`; stopped with its whole tree at the end."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM to the process's group, SIGKILL after `timeout`; then the same for any descendant
    left (`mantle up` gives each worker its own process group)."""
    descendants = family(process.pid)[1:]  # read before it exits: orphans lose their parent link
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    _, alive = psutil.wait_procs(descendants, timeout=timeout)
    for leftover in alive:
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(leftover.pid) == leftover.pid:  # a group leader: its group goes with it
                os.killpg(leftover.pid, signal.SIGKILL)
            else:
                leftover.kill()
    psutil.wait_procs(alive, timeout=10)


def cpu_reading(components: dict[str, Component]) -> dict[str, dict[tuple[int, float], float]]:
    """User + system CPU seconds of each component's processes, keyed by (pid, start time)."""
    reading: dict[str, dict[tuple[int, float], float]] = {}
    for name, component in components.items():
        seen: dict[tuple[int, float], float] = {}
        for proc in component():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                seen[(proc.pid, proc.create_time())] = times.user + times.system
        reading[name] = seen
    return reading


def cpu_used(before: dict[str, dict[tuple[int, float], float]],
             after: dict[str, dict[tuple[int, float], float]]) -> dict[str, float]:
    """CPU seconds per component between two readings (a process started in between counts whole)."""
    return {name: sum(cpu - before.get(name, {}).get(key, 0.0) for key, cpu in procs.items())
            for name, procs in after.items()}


def settle(components: dict[str, Component], *, quiet_cores: float = 0.15, window_s: float = 2.0,
           deadline_s: float = 300) -> float:
    """Wait until the system's processes use under `quiet_cores` over `window_s` (start-up work, such
    as `mantle up` indexing its docs, done); seconds waited (the deadline, if they never were)."""
    started_at = time.monotonic()
    while time.monotonic() - started_at < deadline_s:
        before = cpu_reading(components)
        time.sleep(window_s)
        if sum(cpu_used(before, cpu_reading(components)).values()) / window_s < quiet_cores:
            break
    return round(time.monotonic() - started_at, 1)


def wait_load_average(limit: float, max_wait_s: float) -> float:
    """Wait (at most `max_wait_s`) for the 1-minute load average to drop to `limit`; the last reading."""
    deadline = time.monotonic() + max_wait_s
    while (load := os.getloadavg()[0]) > limit and time.monotonic() < deadline:
        print(f"load average {load:.2f} > {limit}: waiting (the machine is shared)", file=sys.stderr)
        time.sleep(min(30.0, max(1.0, deadline - time.monotonic())))
    return round(load, 2)


# -- wrk ---------------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def _ms(value: str, unit: str) -> float:
    return round(float(value) * _UNITS_MS[unit], 2)


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests, requests/s, latency percentiles (ms) and errors from wrk's `--latency` output."""
    found = re.search(rf"(\d+) requests in {_TIME}", text)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if found is None or rate is None:
        raise Failed(f"wrk's output has no totals:\n{text}")
    result: dict[str, Any] = {"requests": int(found.group(1)),
                              "duration_s": round(_ms(found.group(2), found.group(3)) / 1000, 2),
                              "requests_per_s": float(rate.group(1))}
    for q, value, unit in re.findall(rf"^\s+(50|75|90|99)%\s+{_TIME}\s*$", text, re.M):
        result[f"p{q}_ms"] = _ms(value, unit)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    counts = [int(n) for n in sockets.groups()] if sockets else [0, 0, 0, 0]  # printed only when any
    socket_errors = dict(zip(("connect", "read", "write", "timeout"), counts, strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    result["socket_errors"] = socket_errors
    result["errors"] = result["non_2xx"] + sum(socket_errors.values())
    return result


def run_wrk(url: str, load: Load) -> tuple[dict[str, Any], float]:
    """One wrk run as the recipe says; its parsed figures and the CPU seconds wrk itself used."""
    command = ["wrk", "-t1", f"-c{load.clients}", f"-d{load.seconds}s", "--latency"]
    if load.timeout_s is not None:
        command += ["--timeout", f"{load.timeout_s}s"]
    command += ["-s", str(POST_LUA), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # only wrk ends while this waits
    done = subprocess.run(command, capture_output=True, text=True, timeout=load.seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise Failed(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout), (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


# -- the systems -------------------------------------------------------------------------------


def answered(text: str) -> bool:
    """Whether a webhook answer carries the expected greeting (n8n's body or Mantle's outputs)."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        body = json.loads(text)
        if isinstance(body, dict) and body.get("status") not in (None, "succeeded"):
            return False
        return bool((body.get("outputs") or body).get("text") == ANSWER)
    return False


def wait_answer(url: str, processes: list[subprocess.Popen[bytes]], log: Path, timeout: float) -> None:
    """POST the body until the webhook answers the greeting (the system is up)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise Failed(f"a process exited while starting; {log}:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.post(url, json=BODY, timeout=30)
            if answer.status_code == 200 and answered(answer.text):
                return
            last = f"{answer.status_code} {answer.text[:300]}"
        time.sleep(0.5)
    raise Failed(f"{url} did not answer {ANSWER!r} within {timeout:.0f} s (last: {last}); "
                 f"{log}:\n{_tail(log)}")


def _tail(log: Path, chars: int = 3000) -> str:
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace")[-chars:]
    return ""


def cli_module(repo: Path) -> str:
    """The module of the `mantle` command (pyproject's entry point), run as `python -m`."""
    scripts = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["scripts"]
    return str(scripts["mantle"]).split(":", 1)[0]


def mantle_env(**extra: str) -> dict[str, str]:
    """This environment without any MANTLE_ setting, the repository on the path, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANTLE_")}
    env.update(PYTHONPATH=str(REPO), **extra)
    return env


def publish_mantle_app(base: str, key: str) -> str:
    """Publish the bench app with a webhook; the webhook's URL on `base`."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        made = client.post("/v1/apps", json={"name": "peers bench", "graph": MANTLE_APP})
        if made.status_code != 201:
            raise Failed(f"the bench app was refused: {made.status_code} {made.text}")
        app_id = made.json()["id"]
        published = client.post(f"/v1/apps/{app_id}/publish")
        hook = client.post(f"/v1/apps/{app_id}/webhook")
        if published.status_code != 201 or hook.status_code != 201:
            raise Failed(f"publishing the bench app failed: {published.text} {hook.text}")
    return base + "/hooks/" + str(hook.json()["url"]).rsplit("/hooks/", 1)[1]


class DurablePostgres(PrivatePostgres):
    """A private PostgreSQL that syncs its writes as a production one does (bench/services.py's
    turns fsync off, which suits tests that crash it, not a comparison with n8n's SQLite)."""

    def start(self) -> None:
        """Start the server (fsync on) and wait until it accepts connections."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                   "-c max_connections=300")
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
                 "-w", "-t", "60", "start")


@contextlib.contextmanager
def n8n_system(n8n_dir: Path, prepared: Path, folder: Path) -> Iterator[Target]:
    """`n8n start` on a copy of the prepared user folder (the workflow imported and published)."""
    home = folder / "n8n-home"
    shutil.copytree(prepared, home)
    port = free_port()
    log = folder / "n8n.log"
    with started([str(n8n_dir / "node_modules" / ".bin" / "n8n"), "start"], env=n8n_env(home, port),
                 cwd=n8n_dir, log=log) as process:
        url = f"http://127.0.0.1:{port}/webhook/bench"
        wait_answer(url, [process], log, timeout=300)
        yield Target("n8n", url, {"n8n": tree_of(process.pid)},
                     {"stack": f"n8n {N8N_VERSION}, SQLite, executions saved", "node": _node_version()})


def n8n_env(home: Path, port: int) -> dict[str, str]:
    """The recipe's environment: a user folder, a port, no diagnostics (and a free task broker port)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("N8N_")}
    env.update(N8N_USER_FOLDER=str(home), N8N_PORT=str(port), N8N_LISTEN_ADDRESS="127.0.0.1",
               N8N_DIAGNOSTICS_ENABLED="false", N8N_RUNNERS_BROKER_PORT=str(free_port()))
    return env


def prepare_n8n(n8n_dir: Path, folder: Path) -> Path:
    """A user folder with the bench workflow imported and published; made once per invocation."""
    home = folder / "n8n-prepared"
    n8n = str(n8n_dir / "node_modules" / ".bin" / "n8n")
    env = n8n_env(home, free_port())
    for step in ([n8n, "import:workflow", f"--input={WORKFLOW}"],
                 [n8n, "publish:workflow", f"--id={WORKFLOW_ID}"]):
        done = subprocess.run(step, cwd=n8n_dir, env=env, capture_output=True, text=True, timeout=600,
                              start_new_session=True)
        if done.returncode != 0:
            raise Failed(f"{' '.join(step[1:])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return home


def _node_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30)
        return done.stdout.strip()
    return "?"


@contextlib.contextmanager
def mantle_pg_system(folder: Path) -> Iterator[Target]:
    """Mantle on a private PostgreSQL and Redis: `api --workers 2` and one run worker."""
    postgres, redis_server = DurablePostgres(), PrivateRedis()
    try:
        postgres.start()
        redis_server.start()
        database = postgres.url.rsplit("/", 1)[0] + "/mantle"
        _create_database(postgres.url, "mantle")
        env = mantle_env(MANTLE_DATABASE_URL=database, MANTLE_BROKER_URL=redis_server.url,
                         MANTLE_DATA_DIR=str(folder / "data"))
        cli = [sys.executable, "-m", cli_module(REPO)]
        log = folder / "mantle-pg.log"
        for step in (["db", "upgrade"], ["orgs", "create", "bench"]):
            _cli(cli + step, env, log)
        key = _cli([*cli, "keys", "create", "--org", "bench"], env, log).strip().splitlines()[-1]
        port = free_port()
        with started([*cli, "api", "--port", str(port), "--workers", "2"], env=env, cwd=REPO,
                     log=log) as api, \
                started([*cli, "worker", "--queues", "runs", "--concurrency", "2"], env=env, cwd=REPO,
                        log=folder / "mantle-pg-worker.log") as worker:
            base = f"http://127.0.0.1:{port}"
            _wait_http(f"{base}/healthz", [api, worker], log, timeout=300)
            url = publish_mantle_app(base, key)
            wait_answer(url, [api, worker], folder / "mantle-pg-worker.log", timeout=300)
            yield Target("mantle-pg", url, {"api": tree_of(api.pid), "run worker": tree_of(worker.pid),
                                            "postgresql": tree_of(postgres.pid),
                                            "redis": tree_of(redis_server.pid)},
                         {"stack": "PostgreSQL + Redis (private, fsync on); api --workers 2; "
                                   "1 run worker, --concurrency 2"})
    finally:
        redis_server.close()
        postgres.close()


def _create_database(admin_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def _cli(command: list[str], env: dict[str, str], log: Path) -> str:
    """Run a `mantle` command to its end; its standard output."""
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    with log.open("a") as out:
        out.write(f"$ {' '.join(command[2:])}\n{done.stderr}")
    if done.returncode != 0:
        raise Failed(f"{' '.join(command[2:])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def _wait_http(url: str, processes: list[subprocess.Popen[bytes]], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise Failed(f"a process exited while starting; {log}:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        time.sleep(0.3)
    raise Failed(f"{url} did not answer 200 within {timeout:.0f} s; {log}:\n{_tail(log)}")


@contextlib.contextmanager
def mantle_embedded_system(folder: Path) -> Iterator[Target]:
    """`mantle up` on a fresh data folder (the default model's converted weights are shared)."""
    models = os.environ.get("MANTLE_MODELS_DIR", str(REPO / ".mantle" / "models"))
    env = mantle_env(MANTLE_DATA_DIR=str(folder / "data"), MANTLE_MODELS_DIR=models)
    port = free_port()
    log = folder / "mantle-up.log"
    with started([sys.executable, "-m", cli_module(REPO), "up", "--port", str(port)], env=env, cwd=REPO,
                 log=log) as up:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/readyz", [up], log, timeout=600)
        key = next(line.split()[-1] for line in _tail(log, 10**7).splitlines() if line.startswith("API key:"))
        url = publish_mantle_app(base, key)
        wait_answer(url, [up], log, timeout=300)
        yield Target("mantle-embedded", url, _up_components(up.pid),
                     {"stack": "mantle up: SQLite + folder broker; the API, a run worker and an inference "
                               "worker"})


def _up_components(pid: int) -> dict[str, Component]:
    """`mantle up`'s process alone (the API), and each worker's tree, named by its queues."""
    def api() -> list[psutil.Process]:
        return family(pid)[:1]

    def worker(queue: str) -> Component:
        def select() -> list[psutil.Process]:
            procs: list[psutil.Process] = []
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(pid).children():
                    argv = child.cmdline()
                    queues = argv[argv.index("--queues") + 1] if "--queues" in argv else ""
                    if queues.split(",")[0] == queue:
                        procs += family(child.pid)
            return procs
        return select

    return {"api": api, "run worker": worker("runs"), "inference worker": worker("inference")}


# -- measuring ---------------------------------------------------------------------------------


def measure(target: Target, load: Load, round_number: int) -> dict[str, Any]:
    """One wrk run against `target`, with the CPU its processes used; one JSON-ready line."""
    load_average = round(os.getloadavg()[0], 2)
    before = cpu_reading(target.components)
    figures, wrk_cpu = run_wrk(target.url, load)
    cpu = cpu_used(before, cpu_reading(target.components))
    per_request = 1000 / figures["requests"] if figures["requests"] else None

    def ms(seconds: float) -> float | None:
        return round(seconds * per_request, 3) if per_request is not None else None

    return {"bench": "peers", "system": target.system, "round": round_number, "clients": load.clients,
            "seconds": load.seconds, "timeout_s": load.timeout_s or 2, **figures,
            "cpu_ms_per_request": ms(sum(cpu.values())),
            "cpu_ms_per_request_by_process": {name: ms(v) for name, v in cpu.items()},
            "load_generator_cpu_ms_per_request": ms(wrk_cpu),
            "load_average_1m": load_average, **target.describe}


def warm_up(target: Target, seconds: int) -> None:
    """Unreported load before the measured runs (JIT, connection pools, caches)."""
    if seconds > 0:
        run_wrk(target.url, Load(clients=4, seconds=seconds, timeout_s=10))


def check_answer(target: Target) -> bool:
    """Whether the webhook still answers the greeting (after a load)."""
    with contextlib.suppress(httpx.HTTPError):
        answer = httpx.post(target.url, json=BODY, timeout=30)
        return answer.status_code == 200 and answered(answer.text)
    return False


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


FIGURES = ("p50_ms", "p99_ms", "requests_per_s", "cpu_ms_per_request")


def summary(lines: list[dict[str, Any]], rounds: int, start_load: float) -> dict[str, Any]:
    """Medians over the rounds per system and load, Mantle / n8n ratios, and the goals."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for line in lines:
        grouped.setdefault(line["system"], {}).setdefault(str(line["clients"]), []).append(line)
    medians = {system: {clients: {**{f: _median([g[f] for g in got]) for f in FIGURES},
                                  "errors": sum(g["errors"] for g in got), "runs": len(got)}
                        for clients, got in per_load.items()}
               for system, per_load in grouped.items()}
    result: dict[str, Any] = {"bench": "peers_summary", "rounds": rounds,
                              "load_average_1m_at_start": start_load, "medians": medians}
    n8n = medians.get("n8n")
    if not n8n:
        return result
    result["ratios_mantle_over_n8n"] = {
        system: {clients: {f: _ratio(medians[system].get(clients, {}).get(f), n8n[clients][f])
                           for f in FIGURES} for clients in n8n}
        for system in ("mantle-pg", "mantle-embedded") if system in medians}
    goals: dict[str, dict[str, Any]] = {}

    def goal(name: str, value: float | None, met: bool) -> None:
        goals[name] = {"value": value, "met": met}

    pg, emb = medians.get("mantle-pg", {}), medians.get("mantle-embedded", {})
    top = max(n8n, key=int)  # the many-client load
    one, many = n8n.get("1", {}), n8n[top]
    if pg.get("1"):
        r = _ratio(pg["1"]["p50_ms"], one.get("p50_ms"))
        goal("mantle-pg 1 client p50 <= 0.5x n8n's", r, r is not None and r <= 0.5)
    if pg_many := pg.get(top):
        r = _ratio(pg_many["requests_per_s"], many.get("requests_per_s"))
        goal(f"mantle-pg {top} clients requests/s >= 3x n8n's", r, r is not None and r >= 3)
        goal(f"mantle-pg {top} clients 0 errors", pg_many["errors"], pg_many["errors"] == 0)
        p99 = pg_many["p99_ms"]
        goal(f"mantle-pg {top} clients p99 <= 300 ms", p99, p99 is not None and p99 <= 300)
    if emb.get("1"):
        r = _ratio(emb["1"]["p50_ms"], one.get("p50_ms"))
        goal("mantle-embedded 1 client p50 <= n8n's", r, r is not None and r <= 1)
        goal("mantle-embedded 1 client errors <= n8n's", emb["1"]["errors"],
             emb["1"]["errors"] <= one.get("errors", 0))
    if emb_many := emb.get(top):
        r = _ratio(emb_many["requests_per_s"], many.get("requests_per_s"))
        goal(f"mantle-embedded {top} clients requests/s >= n8n's", r, r is not None and r >= 1)
        r99 = _ratio(emb_many["p99_ms"], many.get("p99_ms"))
        goal(f"mantle-embedded {top} clients p99 <= n8n's", r99, r99 is not None and r99 <= 1)
        goal(f"mantle-embedded {top} clients errors <= n8n's", emb_many["errors"],
             emb_many["errors"] <= many.get("errors", 0))
    result["goals"] = goals
    result["goals_met"] = all(g["met"] for g in goals.values())
    return result


def code_version() -> dict[str, Any]:
    """The commit measured, and whether tracked files differed from it."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, timeout=30).stdout

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return {"commit": git("rev-parse", "--short=10", "HEAD").strip(),
                "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no").strip())}
    return {}


def skipped(reason: str, message: str) -> None:
    """Say how to get what is missing, and print the `skipped` line."""
    print(message, file=sys.stderr)
    print(json.dumps({"bench": "peers", "skipped": reason}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n8n-dir", type=Path, default=os.environ.get("MANTLE_BENCH_N8N_DIR"),
                        help="Where n8n is installed (node_modules/.bin/n8n under it); default "
                             "$MANTLE_BENCH_N8N_DIR.")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"Comma-separated, in the order measured (default {','.join(SYSTEMS)}).")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--one-client-s", type=int, default=10, help="Seconds of the 1-client load.")
    parser.add_argument("--many-clients", type=int, default=50)
    parser.add_argument("--many-clients-s", type=int, default=20, help="Seconds of the many-client load.")
    parser.add_argument("--warmup-s", type=int, default=3, help="Seconds of unreported load first (0: none).")
    parser.add_argument("--max-load", type=float, default=3.0,
                        help="Wait first until the 1-minute load average is at most this (0: do not wait).")
    parser.add_argument("--max-wait-s", type=float, default=600)
    args = parser.parse_args()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := set(systems) - set(SYSTEMS):
        parser.error(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    if shutil.which("wrk") is None:
        return skipped("wrk is not installed",
                       "wrk is not installed: apt-get install -y wrk (Debian's wrk 4).")
    n8n_dir = args.n8n_dir.resolve() if args.n8n_dir else None
    if "n8n" in systems and (n8n_dir is None or not (n8n_dir / "node_modules" / ".bin" / "n8n").exists()):
        where = f" in {n8n_dir}" if n8n_dir else " (no --n8n-dir, no MANTLE_BENCH_N8N_DIR)"
        return skipped("n8n is not installed", INSTALL.format(where=where, version=N8N_VERSION))

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    loads = [Load(1, args.one_client_s), Load(args.many_clients, args.many_clients_s, timeout_s=10)]
    start_load = wait_load_average(args.max_load, args.max_wait_s) if args.max_load > 0 else \
        round(os.getloadavg()[0], 2)
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mantle-peers-") as tmp:
        folder = Path(tmp)
        prepared = prepare_n8n(n8n_dir, folder) if "n8n" in systems and n8n_dir else None
        for round_number in range(1, args.rounds + 1):
            for system in systems:
                run_folder = folder / f"{system}-{round_number}"
                run_folder.mkdir()
                if system == "n8n":
                    assert n8n_dir is not None and prepared is not None
                    context = n8n_system(n8n_dir, prepared, run_folder)
                elif system == "mantle-pg":
                    context = mantle_pg_system(run_folder)
                else:
                    context = mantle_embedded_system(run_folder)
                with context as target:
                    settled = settle(target.components)
                    warm_up(target, args.warmup_s)
                    for load in loads:
                        line = measure(target, load, round_number)
                        line["settled_after_s"] = settled
                        line["answer_ok_after"] = check_answer(target)
                        lines.append(line)
                        print(json.dumps(line), flush=True)
    print(json.dumps({**summary(lines, args.rounds, start_load), **code_version()}), flush=True)


if __name__ == "__main__":
    main()
