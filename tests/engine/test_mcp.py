"""Apps as MCP tools, driven by the official MCP SDK's client against a running Mantle (the API over
real HTTP on loopback, real run workers) on both stacks: listing, calling, failing, waiting for a
reviewer with progress, keys, and another organization's tools; and the `mcp.tool` block calling an
app of its own organization through that endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from api.main import create_app
from tests.conftest import serve
from tests.engine.conftest import Stack, running_stack, wait_until
from tests.factories import edge, node
from tests.reviews import review_graph


@dataclass
class Served:
    """The stack, its API over HTTP, and its admin key."""

    stack: Stack
    url: str
    key: str


@pytest.fixture(scope="module", params=["embedded", "production"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose blocks may reach loopback (Mantle's own `/mcp`), with two run workers: a run whose
    `mcp.tool` calls an app of the same Mantle holds one while the other runs the app it called."""
    loopback = {"http_allow_hosts": ["127.0.0.1"]}
    with running_stack(request.param, tmp_path_factory.mktemp("mcp"), loopback) as built:
        built.start_worker(beat=False)
        yield built


@pytest.fixture(scope="module")
def served(stack: Stack) -> Iterator[Served]:
    """The stack's API served on a loopback port (the MCP endpoint needs the app's lifespan)."""
    key = stack.client.headers["Authorization"].removeprefix("Bearer ")
    with serve(create_app(stack.settings)) as server:
        yield Served(stack, server.url, key)


@contextlib.asynccontextmanager
async def connect(url: str, key: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session on Mantle's `/mcp`, sending `key`."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http, \
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


def publish_tool(stack: Stack, graph: dict[str, Any], *, tool: bool = True, publish: bool = True,
                 **patch: Any) -> tuple[str, str]:
    """Create an app (published unless told), mark it as a tool; returns (app id, tool name)."""
    created = stack.client.post("/v1/apps", json={"name": f"Ask {uuid.uuid4().hex[:6]}", "graph": graph})
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    if publish:
        assert stack.client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    marked = stack.client.patch(f"/v1/apps/{app_id}", json={"tool": tool, **patch})
    assert marked.status_code == 200, marked.text
    return app_id, marked.json()["tool_name"]


def greeter(**field: Any) -> dict[str, Any]:
    """trigger.api(name, times) → template → output `greeting`."""
    return {"nodes": [
        node("in", "trigger.api", fields=[
            {"name": "name", "description": "Who to greet", **field},
            {"name": "times", "type": "integer", "required": False, "default": 1}]),
        node("t", "text.template", template="Hello {{ name }} x{{ times }}"),
        node("out", "output", fields=[{"name": "greeting", "type": "string"}]),
    ], "edges": [edge("in", "name", "t", "name"), edge("in", "times", "t", "times"),
                 edge("t", "text", "out", "greeting")]}


def test_the_sdk_client_lists_the_tools_and_calls_one(served: Served) -> None:
    stack = served.stack
    app_id, name = publish_tool(stack, greeter(), tool_name=f"greet_{uuid.uuid4().hex[:6]}",
                                tool_description="Greets someone")
    _, unmarked = publish_tool(stack, greeter(), tool=False)
    _, unpublished = publish_tool(stack, greeter(), publish=False)
    form = {"nodes": [node("in", "webapp.input", fields=[
        {"name": "topic", "kind": "choice", "choices": ["a", "b"]},
        {"name": "words", "kind": "number", "step": 1, "minimum": 1, "maximum": 9, "required": False}]),
        node("out", "output", fields=[{"name": "topic", "type": "string"}])],
        "edges": [edge("in", "topic", "out", "topic")]}
    _, form_tool = publish_tool(stack, form)

    async def scenario() -> tuple[types.ListToolsResult, types.CallToolResult]:
        async with connect(served.url, served.key) as session:
            return await session.list_tools(), await session.call_tool(name, {"name": "Ada", "times": 2})

    listed, called = asyncio.run(scenario())
    tools = {t.name: t for t in listed.tools}
    assert name in tools and form_tool in tools and unmarked not in tools and unpublished not in tools
    assert tools[name].description == "Greets someone"
    assert tools[name].input_schema == {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "description": "Who to greet"},
                       "times": {"type": "integer", "default": 1}}}
    assert tools[form_tool].input_schema["properties"] == {
        "topic": {"type": "string", "enum": ["a", "b"]},
        "words": {"type": "integer", "minimum": 1, "maximum": 9}}
    assert tools[form_tool].input_schema["required"] == ["topic"]

    assert not called.is_error and called.structured_content == {"greeting": "Hello Ada x2"}
    assert isinstance(called.content[0], types.TextContent) and "Hello Ada x2" in called.content[0].text
    runs = stack.client.get(f"/v1/apps/{app_id}/runs").json()["items"]
    assert [(r["trigger"], r["status"]) for r in runs] == [("mcp", "succeeded")]


def test_a_failing_run_bad_arguments_and_an_unknown_tool(served: Served) -> None:
    stack = served.stack
    failing = {"nodes": [node("in", "trigger.api", fields=[{"name": "value"}]),
                         node("boom", "test.count", database_url=stack.database_url, fail_times=9),
                         node("out", "output", fields=[{"name": "value"}])],
               "edges": [edge("in", "value", "boom", "value"), edge("boom", "value", "out", "value")]}
    _, broken = publish_tool(stack, failing)
    _, greet = publish_tool(stack, greeter())

    async def scenario() -> tuple[types.CallToolResult, types.CallToolResult, MCPError]:
        async with connect(served.url, served.key) as session:
            failed = await session.call_tool(broken, {"value": "x"})
            refused = await session.call_tool(greet, {"times": "many"})
            with pytest.raises(MCPError) as unknown:
                await session.call_tool("no_such_tool", {})
            return failed, refused, unknown.value

    failed, refused, unknown = asyncio.run(scenario())
    assert failed.is_error and isinstance(failed.content[0], types.TextContent)
    assert "ended failed" in failed.content[0].text and "planned failure 1 of 9" in failed.content[0].text
    assert isinstance(failed.structured_content, dict) and failed.structured_content["status"] == "failed"
    assert refused.is_error and isinstance(refused.content[0], types.TextContent)
    assert "name: Field required" in refused.content[0].text and "times:" in refused.content[0].text
    assert unknown.code == types.INVALID_PARAMS and "no_such_tool" in unknown.message


def test_a_run_waiting_for_a_reviewer_reports_progress_and_answers_once_approved(served: Served) -> None:
    stack = served.stack
    app_id, name = publish_tool(stack, review_graph())
    notes: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(message or "")

    def approve() -> None:
        # As a reviewer told by the tool's progress: a quick approval could otherwise come before
        # the progress note was sent, and the note would rightly never say it was waiting.
        wait_until(lambda: any("waiting on review (human.review)" in note for note in notes), 30,
                   "the progress note saying the run waits on a review")
        item = wait_until(lambda: stack.client.get("/v1/reviews", params={"app_id": app_id}).json()["items"],
                          30, "the review item")[0]
        decided = stack.client.post(f"/v1/reviews/{item['id']}/decision", json={"action": "approve"})
        assert decided.status_code == 200, decided.text

    async def scenario() -> types.CallToolResult:
        async with connect(served.url, served.key) as session:
            call = asyncio.ensure_future(session.call_tool(name, {"message": "where is it?"},
                                                           progress_callback=on_progress))
            await asyncio.to_thread(approve)
            return await call

    answered = asyncio.run(scenario())
    assert not answered.is_error and answered.structured_content == {"text": "Reply to: where is it?"}
    assert any("waiting on review (human.review)" in note for note in notes), notes


def test_a_run_longer_than_the_wait_is_answered_with_its_id(served: Served) -> None:
    stack = served.stack
    _, name = publish_tool(stack, review_graph())
    impatient = create_app(stack.settings.model_copy(update={"mcp_wait_s": 0.5}))

    async def scenario(url: str) -> types.CallToolResult:
        async with connect(url, served.key) as session:
            return await session.call_tool(name, {"message": "hello"})

    with serve(impatient) as server:
        pending = asyncio.run(scenario(server.url))
    assert not pending.is_error and isinstance(pending.structured_content, dict)
    assert pending.structured_content["status"] == "waiting"
    run = stack.get_run(pending.structured_content["run_id"])
    assert run["status"] == "waiting" and run["trigger"] == "mcp"


def test_keys_decide_who_calls_and_which_tools_they_see(served: Served) -> None:
    stack = served.stack
    _, mine = publish_tool(stack, greeter())
    missing = httpx.post(f"{served.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["detail"][0]["loc"] == ["header", "Authorization"]
    bad = httpx.post(f"{served.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                     headers={"Authorization": "Bearer mk_not-a-key"})
    assert bad.status_code == 401 and bad.json()["detail"][0]["msg"] == "invalid or revoked API key"
    reviewer = stack.client.post("/v1/keys", json={"name": "rita", "role": "reviewer"}).json()["key"]
    refused = httpx.post(f"{served.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                         headers={"Authorization": f"Bearer {reviewer}"})
    assert refused.status_code == 403 and refused.json()["detail"][0]["type"] == "forbidden"

    async def with_bad_key() -> None:
        async with connect(served.url, "mk_not-a-key"):
            pass

    with pytest.raises(ExceptionGroup) as failed:  # the SDK's client fails to initialize
        asyncio.run(with_bad_key())
    assert failed.group_contains(MCPError, match="Server returned an error response")

    async def as_other_org() -> tuple[list[str], MCPError]:
        async with connect(served.url, stack.new_org_key()) as session:
            listed = [t.name for t in (await session.list_tools()).tools]
            with pytest.raises(MCPError) as unknown:
                await session.call_tool(mine, {"name": "Eve"})
            return listed, unknown.value

    listed, unknown = asyncio.run(as_other_org())
    assert listed == [] and unknown.code == types.INVALID_PARAMS


def caller_graph(url: str, tool: str, **config: Any) -> dict[str, Any]:
    """trigger.api(who) → mcp.tool(name=who) → output `answer` (the tool's structured result)."""
    return {"nodes": [node("in", "trigger.api", fields=[{"name": "who"}]),
                      node("call", "mcp.tool", url=url, tool=tool, arguments=["name"], **config),
                      node("out", "output", fields=[{"name": "answer", "type": "any"}])],
            "edges": [edge("in", "who", "call", "name"), edge("call", "result", "out", "answer")]}


def test_the_mcp_tool_block_calls_an_app_of_the_organization_through_mantles_endpoint(served: Served) -> None:
    stack = served.stack
    callee, greet = publish_tool(stack, greeter())
    credential = f"mantle-{uuid.uuid4().hex[:6]}"
    stored = stack.client.post("/v1/credentials", json={"type": "bearer_token", "name": credential,
                                                        "data": {"token": served.key},
                                                        "allowed_urls": [served.url]})
    assert stored.status_code == 201, stored.text
    app_id = stack.publish(caller_graph(f"{served.url}/mcp", greet, credential=credential), name="caller")
    run = stack.wait_run(stack.run(app_id, {"who": "Grace"})["id"], timeout=60)
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"answer": {"greeting": "Hello Grace x1"}}
    call = next(n for n in run["trace"] if n["node_id"] == "call")
    assert call["outputs"]["is_error"] is False and "Hello Grace x1" in call["outputs"]["text"]
    assert served.key not in stack.client.get(f"/v1/runs/{run['id']}").text
    called = stack.client.get(f"/v1/apps/{callee}/runs").json()["items"]
    assert [(r["trigger"], r["status"]) for r in called] == [("mcp", "succeeded")]


def test_the_mcp_tool_block_refuses_a_metadata_address_a_credential_out_of_bounds_and_a_failed_tool(
        served: Served) -> None:
    stack = served.stack
    failing = {"nodes": [node("in", "trigger.api", fields=[{"name": "name"}]),
                         node("boom", "test.count", database_url=stack.database_url, fail_times=9),
                         node("out", "output", fields=[{"name": "value"}])],
               "edges": [edge("in", "name", "boom", "value"), edge("boom", "value", "out", "value")]}
    _, broken = publish_tool(stack, failing)
    suffix = uuid.uuid4().hex[:6]
    for name, allowed in ((f"here-{suffix}", served.url), (f"elsewhere-{suffix}", "https://tools.example.com")):
        assert stack.client.post("/v1/credentials", json={"type": "bearer_token", "name": name,
                                                          "data": {"token": served.key},
                                                          "allowed_urls": [allowed]}).status_code == 201
    url = f"{served.url}/mcp"
    graphs = {"metadata": caller_graph("http://169.254.169.254/mcp", "any"),
              "bounds": caller_graph(url, broken, credential=f"elsewhere-{suffix}"),
              "keyless": caller_graph(url, broken),
              "failed": caller_graph(url, broken, credential=f"here-{suffix}")}
    runs = {name: stack.run(stack.publish(graph, name=name), {"who": "x"})["id"]
            for name, graph in graphs.items()}
    errors = {}
    for name, run_id in runs.items():
        run = stack.wait_run(run_id, timeout=60)
        assert run["status"] == "failed", run
        errors[name] = next(n for n in run["trace"] if n["node_id"] == "call")["error"]
    assert "cloud metadata" in errors["metadata"], errors
    assert f"'elsewhere-{suffix}' may not be sent" in errors["bounds"], errors
    assert "refused the tool call" in errors["keyless"], errors
    assert f"the tool {broken!r} failed" in errors["failed"], errors
    assert "planned failure 1 of 9" in errors["failed"], errors
