"""No block, config field or route runs code a user supplied, and no block fetches internal URLs.

* The product's source is scanned: no `eval`/`exec`/`compile`, no unpickling, no shell, no
  dynamic import except the few reviewed places below (each runs only what the operator
  configured, never what a request carries).
* Jinja2 environments that are not sandboxed render only the product's own page files.
* The broker accepts JSON only, so a message on the queue cannot carry a pickled object.
* Every registered block whose config takes a `url` refuses loopback, private, link-local and
  IPv4-mapped IPv6 addresses (in every spelling) and never connects to them.
"""

from __future__ import annotations

import ast
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from blocks.base import AnyBlock, BlockContext
from blocks.registry import default_registry
from core.errors import MantleError
from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ["api", "blocks", "builder", "core", "models", "worker", "governance", "twilio_sim", "migrations",
            "knowledge", "inference", "cli"]
CALLS = {"eval", "exec", "compile", "__import__", "breakpoint"}
ATTRIBUTE_CALLS = {("os", n) for n in ("system", "popen", "execv", "execvp", "execl", "spawnl", "fork")} | {
    ("subprocess", n) for n in ("run", "Popen", "call", "check_call", "check_output")} | {
    ("importlib", "import_module"), ("pickle", "loads"), ("pickle", "load"), ("marshal", "loads"),
    ("yaml", "load"), ("yaml", "unsafe_load"), ("jsonpickle", "decode")}
MODULES = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "ctypes", "jsonpickle", "subprocess"}
# Reviewed: what each of these runs comes from the operator (command line, settings), never a request.
ALLOWED = {
    ("cli/supervisor.py", "subprocess"), ("cli/supervisor.py", "subprocess.Popen"),  # `mantle up`'s workers
    ("blocks/registry.py", "importlib.import_module"),  # MANTLE_BLOCK_PLUGINS, set by the operator
    ("api/public/pages.py", "jinja2.Environment"),  # the share pages' own template files
    ("api/routes/review_page.py", "jinja2.Environment"),  # the reviewer pages' own template files
}


def findings(path: Path) -> set[str]:
    """What in one source file could run code: dangerous calls and imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Name) and fn.id in CALLS:
                found.add(fn.id)
            if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) \
                    and (fn.value.id, fn.attr) in ATTRIBUTE_CALLS:
                found.add(f"{fn.value.id}.{fn.attr}")
            if isinstance(fn, ast.Name) and fn.id in ("Environment", "Template"):
                found.add(f"jinja2.{fn.id}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.update(name.split(".")[0] for name in names if name.split(".")[0] in MODULES)
    return found


def test_no_source_file_can_run_supplied_code() -> None:
    files = [f for pkg in PACKAGES if (REPO / pkg).is_dir() for f in sorted((REPO / pkg).rglob("*.py"))]
    assert len(files) > 50
    unexpected = {(str(f.relative_to(REPO)), what) for f in files for what in findings(f)} - ALLOWED
    assert not unexpected, f"review these (allow them only if no request reaches them): {unexpected}"


def test_the_broker_only_accepts_json() -> None:
    from worker.transport import make_celery

    for broker in ("redis://127.0.0.1:6379/0", ""):
        conf = make_celery(Settings(broker_url=broker, secret_key="x")).conf
        assert set(conf.accept_content) <= {"json", "application/json"}, conf.accept_content
        assert conf.task_serializer == "json" and conf.result_serializer == "json"


class _Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802  (the http.server API)
        _Counting.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"internal secret")

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def internal_port() -> Any:
    """A server on loopback that records every request it gets (none may arrive)."""
    server = HTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def url_blocks() -> list[type[AnyBlock]]:
    """Every registered block type whose config names a URL to fetch."""
    return [b for b in default_registry() if "url" in b.Config.model_fields]


def internal_urls(port: int) -> list[str]:
    """One internal address in many spellings: the server above, and private networks."""
    loopback = [f"http://{host}:{port}/x" for host in (
        "127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "[::1]",
        "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]", "0.0.0.0", "127.0.0.1.")]
    elsewhere = ["http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/",
                 "http://[fe80::1]/", "http://[fd00::1]/", "http://100.64.0.1/", "http://[::ffff:10.0.0.1]/"]
    return loopback + elsewhere


def test_the_url_fetching_blocks_are_found() -> None:
    # The assertion below runs for each one; this one says which exist today.
    assert all("url" in b.Config.model_fields for b in url_blocks())
    assert ("http.request" in default_registry()) == any(b.type == "http.request" for b in url_blocks())


def test_blocks_that_fetch_urls_refuse_internal_addresses(internal_port: int, tmp_path: Path) -> None:
    import worker.tasks  # noqa: F401  (registers the services a run worker gives its blocks)
    from worker.hooks import build_services

    services = build_services(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/m.db",
                                       secret_key="x"))
    ctx = BlockContext(run_id=uuid.uuid4(), node_id="fetch", org_id=uuid.uuid4(), app_id=uuid.uuid4(),
                       services=services)
    fetched = []
    for block_type in url_blocks():
        for url in internal_urls(internal_port):
            try:
                block = block_type.from_config({"url": url})
            except (ValidationError, ValueError):
                continue  # refused when the app is saved: fine
            try:
                outputs = block.run(block.typed_inputs({}), ctx)
            except MantleError:
                continue  # the node fails with a clear reason: fine
            fetched.append(f"{block_type.type} fetched {url}: {str(outputs)[:100]}")
    assert not fetched, "\n".join(fetched)
    assert _Counting.hits == []
