"""A worker's health endpoint: `/healthz`, `/readyz` and `/metrics` on `mantle worker --health-port`.

A Celery worker serves no HTTP of its own, so container health checks and Prometheus reach it
here: a small threaded WSGI server in the worker's main process (the one that consumes, where
Celery reports `worker_ready`). It starts before the worker loads models or connects, so
`/healthz` answers at once and `/readyz` says what the worker is still waiting for.

* `/healthz`: 200 while the process runs.
* `/readyz`: 200 once the worker consumes its queues and the database, the broker and (for an
  inference worker) its pinned models answer; else 503 naming each thing that is not ready, in
  the API's error shape.
* `/metrics`: this worker's process tree (see `worker/metrics_export.py`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery import signals

from worker.metrics_export import exposition
from worker.probes import Probe, run_probes

StartResponse = Any


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per request: a slow probe never holds up a liveness check."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log lines: the orchestrator polls these paths every few seconds."""

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the line."""


class WorkerHealth:
    """What the worker's health endpoint answers, from probes and Celery's lifecycle signals."""

    def __init__(self, probes: Mapping[str, Probe]) -> None:
        self.probes = dict(probes)
        self.consuming = threading.Event()
        signals.worker_ready.connect(self._ready, weak=False)
        signals.worker_shutting_down.connect(self._stopping, weak=False)

    def _ready(self, **_: Any) -> None:
        self.consuming.set()

    def _stopping(self, **_: Any) -> None:
        self.consuming.clear()

    def not_ready(self) -> dict[str, str]:
        """Component to reason, for everything that keeps this worker from doing its work."""
        down = {} if self.consuming.is_set() else {"worker": "not consuming its queues yet"}
        down.update(run_probes(self.probes))
        return down

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application."""
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, 200, {"status": "ok"})
        if path == "/readyz":
            down = self.not_ready()
            if down:
                detail = [{"loc": [name], "msg": reason, "type": "unavailable"}
                          for name, reason in down.items()]
                return _json(start_response, 503, {"detail": detail})
            return _json(start_response, 200, {"status": "ready", **dict.fromkeys(self.probes, "ok")})
        if path == "/metrics":
            body, content_type = exposition()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]
        return _json(start_response, 404, {"detail": [{"loc": ["path"], "msg": f"no such path: {path}",
                                                       "type": "not_found"}]})


def _json(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"),
                                           ("Content-Length", str(len(data)))])
    return [data]


def serve_health(port: int, probes: Mapping[str, Probe], host: str = "0.0.0.0") -> WorkerHealth:
    """Start the health endpoint on `host:port` in a daemon thread; returns its state."""
    health = WorkerHealth(probes)
    server = make_server(host, port, health, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="mantle-health", daemon=True).start()
    return health
