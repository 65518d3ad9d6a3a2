"""A small real HTTP server on loopback for `http.request` tests: JSON, echo, slow answers,
redirects, 429s and 5xx that clear after a few tries, and oversized bodies (declared, undeclared
and gzip-compressed). It records every request it receives, headers included, and when.

It also stands in for a rate-limiting provider in front of an OpenAI-compatible model (a gateway
such as LiteLLM or OpenAI itself under load): `/openai-flaky/{code}/{times}/{retry_after}/{tag}/`
answers Chat Completions with `code` and `Retry-After` the first `times` times, then streams an
answer with its usage, as OpenAI streams it."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEATHER = {"current_condition": [{"temp_C": "14", "humidity": "71",
                                  "weatherDesc": [{"value": "Light rain"}]}],
           "nearest_area": [{"areaName": [{"value": "Lyon"}], "country": [{"value": "France"}]}]}


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class LocalServer:
    """The running server: its base URL, port and what it received."""

    url: str
    port: int
    requests: list[Seen] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)

    def seen(self, path: str) -> list[Seen]:
        """The requests received for `path` (without query)."""
        return [r for r in self.requests if r.path == path]


class _Handler(BaseHTTPRequestHandler):
    server_state: LocalServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _reply(self, status: int, body: bytes, content_type: str = "application/json",
               headers: dict[str, str] | None = None, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._reply(status, json.dumps(value).encode(), headers=headers)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size) if size else b""
        state = self.server_state
        state.requests.append(Seen(self.command, parts.path, {k.lower(): v for k, v in self.headers.items()},
                                   body))
        path = parts.path
        if path == "/json":
            self._json(200, {"ok": True, "items": [{"id": 1, "name": "first"}, {"id": 2, "name": "second"}]})
        elif path.startswith("/weather"):
            self._json(200, {**WEATHER, "request": {"query": query}})
        elif path == "/echo":
            self._json(200, {"method": self.command, "query": query, "body": body.decode(),
                             "content_type": self.headers.get("Content-Type")})
        elif path == "/text":
            self._reply(200, "plain café".encode("latin-1"), "text/plain; charset=latin-1")
        elif path == "/slow":
            time.sleep(float(query.get("s", "2")))  # the server is slow, not the test
            self._json(200, {"slow": True})
        elif path == "/redirect":
            self._reply(int(query.get("code", "302")), b"", headers={"Location": query["to"]})
        elif path.startswith("/flaky/"):
            state.counters[path] += 1
            if state.counters[path] <= int(query.get("times", "2")):
                extra = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
                self._json(int(query.get("code", "429")), {"error": "try later"}, headers=extra)
            else:
                self._json(200, {"ok": True, "tries": state.counters[path]})
        elif path.startswith("/openai-flaky/"):
            self._openai_flaky(path, body)
        elif path == "/big":
            self._reply(200, b"x" * int(query.get("bytes", "2000000")), "text/plain",
                        length=query.get("declared", "1") == "1")
            self.close_connection = True
        elif path == "/bomb":
            packed = gzip.compress(b"0" * int(query.get("bytes", "5000000")))
            self._reply(200, packed, "text/plain", headers={"Content-Encoding": "gzip"})
        elif path == "/status":
            self._json(int(query.get("code", "404")), {"error": "as asked"})
        else:
            self._json(404, {"error": "no such path"})

    def _openai_flaky(self, path: str, body: bytes) -> None:
        _, _, code, times, retry_after, tag = path.split("/")[:6]
        state = self.server_state
        state.counters[tag] += 1
        if state.counters[tag] <= int(times):
            self._json(int(code), {"error": {"message": "slow down", "type": "rate_limit_exceeded",
                                             "code": None, "param": None}},
                       headers={"Retry-After": retry_after})
            return
        model = json.loads(body or b"{}").get("model", "gateway-model")
        base = {"id": f"chatcmpl-{tag}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model}
        pieces = ("Hello", " from", " the gateway")
        events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece},
                                        "finish_reason": None}]} for piece in pieces]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        events.append({**base, "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3,
                                                        "total_tokens": 10}})
        stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        self._reply(200, stream.encode(), "text/event-stream")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


@contextmanager
def serving(port: int = 0) -> Iterator[LocalServer]:
    """Serve on 127.0.0.1 (on `port`, or a free one) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    state = LocalServer(url=f"http://127.0.0.1:{port}", port=port)
    server.RequestHandlerClass = type("Handler", (_Handler,), {"server_state": state})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
