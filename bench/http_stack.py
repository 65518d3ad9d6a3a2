"""A whole Mantle for the OpenAI-compatible benchmarks: a fresh database (SQLite and the filesystem
broker, or PostgreSQL and Redis with `production`), a run worker, an inference worker, and the
API over real HTTP on a loopback port, with an organization's admin key."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.inference import REPO, start_worker


@dataclass
class HttpStack:
    """The API's URL, an admin key and a client sending it."""

    url: str
    key: str
    client: httpx.Client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def http_stack(production: bool, settings_env: dict[str, str] | None = None) -> Iterator[HttpStack]:
    """Everything started, until the block ends; `settings_env` (`MANTLE_*`) reach every process."""
    import uvicorn

    from api.main import create_app
    from core.settings import Settings
    from migrations.run import upgrade
    from models.db import session_factory, session_scope
    from models.orgs import Role, create_key, create_org

    tmp = Path(tempfile.mkdtemp(prefix="mantle-bench-"))
    if production:
        import psycopg
        admin = os.environ.get("MANTLE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
        name = f"mantle_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        database_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        broker_url = os.environ.get("MANTLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    else:
        database_url, broker_url = f"sqlite:///{tmp / 'mantle.db'}", "filesystem://"
    upgrade(database_url)
    overrides = {"MANTLE_DATABASE_URL": database_url, "MANTLE_BROKER_URL": broker_url,
                 "MANTLE_DATA_DIR": str(tmp), "MANTLE_MODELS_DIR": str(REPO / ".mantle" / "models"),
                 "MANTLE_SECRET_KEY": "bench-secret", **(settings_env or {})}
    os.environ.update(overrides)  # this process's API reads the same settings
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with session_scope(session_factory(database_url)) as session:
        org = create_org(session, name="bench")
        _, key = create_key(session, org_id=org.id, name="bench", role=Role.admin)
    workers = [start_worker(env, "--queues", "runs", "--concurrency", "2")[0],
               start_worker(env, "--queues", "inference")[0]]
    port = _free_port()
    fields: dict[str, Any] = {k.removeprefix("MANTLE_").lower(): _value(v) for k, v in overrides.items()}
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(**fields)), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False, lifespan="on"))
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the openai client's line per request
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
            yield HttpStack(url, key, client)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for process in workers:
            process.terminate()
        for process in workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _value(raw: str) -> object:
    """A setting's value from its environment form (JSON where it parses)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw
