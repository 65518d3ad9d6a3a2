"""`http.request` against a real HTTP server on loopback, opened for the test by the guard's
allow-list: templating, redirects checked hop by hop, retries, timeouts and size limits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from blocks.base import BlockContext, port_values
from blocks.http_client import Fetcher, HttpFailed, ResponseTooLarge
from blocks.http_request import HttpRequestBlock
from blocks.net_guard import NetGuard, Refused
from blocks.registry import default_registry
from builder.problems import Code
from builder.validation import validate
from core.errors import MantleError
from tests.http_server import LocalServer, serving


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serving() as running:
        yield running


def names(*pairs: tuple[str, str]) -> tuple[list[str], Any]:
    """A resolver for test names (each to an address), and the list of names it was asked for."""
    asked: list[str] = []
    table = dict(pairs)

    def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return [table[host]] if host in table else []

    return asked, resolve


RUN_ID = uuid.uuid4()


def call(config: dict[str, Any], guard: NetGuard | None = None, **inputs: Any) -> dict[str, Any]:
    """Run an `http.request` node once with this config; returns its outputs."""
    block = HttpRequestBlock.from_config({"timeout_s": 5, "backoff_s": 0.01, **config})
    ctx = BlockContext(run_id=RUN_ID, node_id="http", org_id=uuid.uuid4(), app_id=uuid.uuid4(),
                       services={"net_guard": guard or NetGuard(allow=["127.0.0.1"])})
    return port_values(block.run(block.typed_inputs(inputs), ctx))


def test_a_get_renders_its_templates_and_emits_status_headers_json_and_text(server: LocalServer) -> None:
    out = call({"url": server.url + "/{{ path }}", "query": {"q": "{{ term }}", "n": "2"},
                "headers": {"X-Trace": "t-{{ n }}"}}, path="echo", term="a b&c", n=7)
    assert out["status"] == 200 and out["headers"]["content-type"] == "application/json"
    assert out["json"]["query"] == {"q": "a b&c", "n": "2"}  # encoded on the way, decoded by the server
    assert json.loads(out["text"]) == out["json"] and out["url"].startswith(server.url + "/echo?")
    assert server.seen("/echo")[-1].headers["x-trace"] == "t-7"


def test_json_and_form_bodies_keep_whole_variables_typed(server: LocalServer) -> None:
    out = call({"method": "POST", "url": server.url + "/echo", "body_type": "json",
                "body": {"count": "{{ n }}", "label": "n is {{ n }}", "tags": ["{{ tag }}"]}}, n=3, tag="x")
    assert json.loads(out["json"]["body"]) == {"count": 3, "label": "n is 3", "tags": ["x"]}
    assert out["json"]["content_type"] == "application/json"
    assert server.seen("/echo")[-1].headers["idempotency-key"] == f"{RUN_ID}:http"  # a retried node: same key
    form = call({"method": "POST", "url": server.url + "/echo", "body_type": "form",
                 "body": {"name": "{{ who }}", "note": "a&b"}}, who="Ada Lovelace")
    assert form["json"]["body"] == "name=Ada+Lovelace&note=a%26b"
    assert form["json"]["content_type"] == "application/x-www-form-urlencoded"


def test_a_name_is_resolved_once_and_the_checked_address_is_connected_with_the_name_as_host(
        server: LocalServer) -> None:
    asked, resolve = names(("api.test", "127.0.0.1"))
    out = call({"url": f"http://api.test:{server.port}/echo"}, NetGuard(allow=["api.test"], resolver=resolve))
    assert out["status"] == 200 and asked == ["api.test"]
    assert server.seen("/echo")[-1].headers["host"] == f"api.test:{server.port}"


def test_dns_rebinding_reaches_nothing_new(server: LocalServer) -> None:
    answers = iter(["127.0.0.1", "10.0.0.1", "10.0.0.1"])  # checked once, then "rebinds"
    asked: list[str] = []

    def rebinding(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return [next(answers)]

    guard = NetGuard(allow=["127.0.0.1"], resolver=rebinding)
    out = call({"url": f"http://rebind.test:{server.port}/json"}, guard)
    assert out["json"]["ok"] is True and asked == ["rebind.test"]


def test_a_name_that_resolves_to_a_private_address_is_refused_before_any_connection(
        server: LocalServer) -> None:
    _, resolve = names(("intranet.test", "192.168.10.10"))
    before = len(server.requests)
    with pytest.raises(Refused, match="intranet.test resolves to 192.168.10.10, which is a private address"):
        call({"url": "http://intranet.test/"}, NetGuard(resolver=resolve))
    with pytest.raises(Refused, match="IPv4-mapped"):
        call({"url": "http://[::ffff:169.254.169.254]/latest/meta-data/"})
    with pytest.raises(Refused, match="loopback"):
        call({"url": server.url + "/json"}, NetGuard())  # no allow-list: loopback is closed
    assert len(server.requests) == before


def test_every_redirect_hop_is_checked(server: LocalServer) -> None:
    _, resolve = names(("api.test", "127.0.0.1"))
    guard = NetGuard(allow=["api.test"], resolver=resolve)
    base = f"http://api.test:{server.port}"
    followed = call({"url": base + "/redirect?to=/json"}, guard)
    assert followed["status"] == 200 and followed["url"] == base + "/json"
    for target, reason in [(f"http://127.0.0.1:{server.port}/json", "loopback"),
                           ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
                           ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
                           ("file:///etc/passwd", "only http")]:
        with pytest.raises(Refused, match=reason):
            call({"url": base + "/redirect", "query": {"to": target}}, guard)
    with pytest.raises(HttpFailed, match="more than 1 redirects"):  # two hops: /redirect → /redirect → /json
        call({"url": base + "/redirect", "query": {"to": "/redirect?to=/json"}, "max_redirects": 1}, guard)


def test_a_303_turns_a_post_into_a_get_without_its_body(server: LocalServer) -> None:
    out = call({"method": "POST", "url": server.url + "/redirect?code=303&to=/echo", "body_type": "json",
                "body": {"a": 1}})
    assert out["json"]["method"] == "GET" and out["json"]["body"] == ""


def test_429_and_5xx_are_retried_until_they_clear(server: LocalServer) -> None:
    out = call({"url": server.url + "/flaky/a?code=429&times=2", "retries": 2})
    assert out["json"] == {"ok": True, "tries": 3}
    out = call({"url": server.url + "/flaky/b?code=503&times=1", "retries": 1})
    assert out["json"]["tries"] == 2
    with pytest.raises(MantleError, match="answered HTTP 429"):
        call({"url": server.url + "/flaky/c?code=429&times=5", "retries": 1})


def test_retry_after_is_honoured_within_the_timeout(server: LocalServer) -> None:
    waited: list[float] = []
    fetcher = Fetcher(NetGuard(allow=["127.0.0.1"]), timeout_s=10, retries=3, backoff_s=0.01,
                      sleep=waited.append)
    fetched = fetcher.fetch("GET", httpx.URL(server.url + "/flaky/d?times=2&retry_after=2"), {}, None, {})
    assert fetched.status == 200 and waited == [2.0, 2.0]
    waited.clear()
    short = Fetcher(NetGuard(allow=["127.0.0.1"]), timeout_s=3, retries=3, sleep=waited.append)
    fetched = short.fetch("GET", httpx.URL(server.url + "/flaky/e?times=9&retry_after=60"), {}, None, {})
    assert fetched.status == 429 and waited == []  # waiting a minute would pass the timeout: give up


def test_a_slow_answer_fails_at_the_timeout(server: LocalServer) -> None:
    with pytest.raises(HttpFailed, match="no answer from 127.0.0.1 within 0.3 s"):
        call({"url": server.url + "/slow?s=3", "timeout_s": 0.3, "retries": 0})


@pytest.mark.parametrize("path", ["/big?bytes=300000", "/big?bytes=300000&declared=0", "/bomb?bytes=5000000"])
def test_an_answer_over_the_size_limit_is_refused(server: LocalServer, path: str) -> None:
    with pytest.raises(ResponseTooLarge, match="larger than 100000 bytes"):
        call({"url": server.url + path, "max_response_bytes": 100_000})


def test_a_text_answer_has_no_json_port_and_is_decoded_by_its_charset(server: LocalServer) -> None:
    out = call({"url": server.url + "/text"})
    assert "json" not in out and out["text"] == "plain café"


def test_an_error_status_fails_the_node_unless_told_otherwise(server: LocalServer) -> None:
    with pytest.raises(MantleError, match="answered HTTP 404"):
        call({"url": server.url + "/status?code=404"})
    out = call({"url": server.url + "/status?code=404", "fail_on_status": False})
    assert out["status"] == 404 and out["json"] == {"error": "as asked"}


def test_a_url_that_renders_to_another_scheme_is_refused(server: LocalServer) -> None:
    with pytest.raises(MantleError, match="not an http or https URL"):
        call({"url": "{{ target }}"}, target="ftp://127.0.0.1/x")


def test_config_problems_are_found_when_the_graph_is_validated() -> None:
    templated = HttpRequestBlock.from_config({"url": "https://x.test/{{ a }}", "headers": {"X": "{{ b }}"},
                                              "body_type": "json", "body": {"c": ["{{ c }}"]}})
    assert templated.input_ports().keys() == {"a", "b", "c"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"url": "https://x.test/", "headers": {"Authorization": "Bearer x"}},
         "use `auth` with a stored credential"),
        ({"url": "ftp://x.test/"}, "not an http or https URL"),
        ({"url": "https://x.test/{{ a"}, "template syntax error"),
        ({"url": "https://x.test/", "body": {"a": 1}}, "body_type")]
    for config, message in cases:
        with pytest.raises(ValidationError, match=message):
            HttpRequestBlock.from_config(config)
    graph = {"nodes": [{"id": "in", "type": "trigger.api"},
                       {"id": "http", "type": "http.request", "config": {"url": "gopher://x.test/"}}],
             "edges": []}
    (problem,) = validate(graph, default_registry())
    assert (problem.code, problem.node_id) == (Code.invalid_config, "http")
