"""The MCP tools of an organization: its published apps marked as tools, listed and run.

A tool is an app whose builder set `tool` (PATCH /v1/apps/{id}); it is listed once it has a
published version whose trigger declares typed fields (`trigger.api`, `webapp.input`), and those
fields, as JSON Schema, are the tool's input schema. A call starts a run of the latest published
version through the same submission as `POST /v1/apps/{id}/runs` (recorded like any run, with
trigger `mcp`), then waits on the run watcher (no query loop) until it ends: a run waiting for a
model or a reviewer keeps the call open, and progress notifications (when the caller asked for
them with a progress token) say where it stands, at each change and every `MANTLE_MCP_PROGRESS_S`.
A run still going after `MANTLE_MCP_WAIT_S` is answered with its id and status rather than held.

Its outputs come back as structured content and as JSON text; a run that failed or was blocked,
or arguments the trigger refuses, are a result with `isError` and the reason, so the model that
called can see it. An unknown tool is a protocol error (invalid params), as the specification says.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import mcp_types as types
import structlog
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.requests import Request

from api.deps import Principal
from api.threads import starting_run
from api.watch import RunWatcher
from core.errors import InvalidInputs, MantleError
from core.statuses import TERMINAL, NodeStatus, RunStatus
from models import apps as app_store
from models.apps import AppVersion, ToolApp
from models.db import session_scope
from models.runs import NodeRun, Run
from worker.submit import Submitter

PRINCIPAL = "mantle.principal"  # where the endpoint leaves the authenticated caller in the scope
TRIGGER = "mcp"
DONE = frozenset({NodeStatus.succeeded.value, NodeStatus.skipped.value, NodeStatus.failed.value})

TOOL_CALLS = Counter("mantle_mcp_tool_calls_total", "MCP tool calls, by outcome (a run's final status, "
                     "`refused` arguments, `unknown` tool, or `pending` past the wait)", ["outcome"])
log = structlog.get_logger("mantle.mcp")

Context = ServerRequestContext[Any, Any]


def build_server() -> Server[Any]:
    """The low-level MCP server: tools only, each handler reading the caller from its request."""
    return Server("mantle", version="0.1.0", on_list_tools=list_tools, on_call_tool=call_tool,
                  instructions="Each tool runs one of your Mantle apps and answers with its outputs.")


def _caller(ctx: Context) -> tuple[Principal, State]:
    """The authenticated caller and the API's state, from the HTTP request the message came in."""
    request = ctx.request
    if not isinstance(request, Request) or not isinstance(request.scope.get(PRINCIPAL), Principal):
        raise MCPError(types.INTERNAL_ERROR, "the request reached the tools without an authenticated caller")
    state: State = request.app.state
    return request.scope[PRINCIPAL], state


async def list_tools(ctx: Context, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    """The caller's organization's tools (all of them: an organization has few enough for one page)."""
    principal, state = _caller(ctx)
    return types.ListToolsResult(tools=await run_in_threadpool(_tools, state, principal.org_id))


def _tools(state: State, org_id: uuid.UUID) -> list[types.Tool]:
    with state.read_sessions() as session:
        tools = []
        for tool in app_store.list_tools(session, org_id=org_id):
            schema = _input_schema(state.submitter, session, tool)
            if schema is not None:
                tools.append(types.Tool(name=tool.name, description=tool.description or None,
                                        input_schema=schema))
        return tools


def _input_schema(submitter: Submitter, session: Session, tool: ToolApp) -> dict[str, Any] | None:
    """The JSON Schema of the tool's trigger fields (None: its trigger takes no typed fields)."""
    version_id = tool.version.id
    analysis = submitter.analyses.get(version_id, lambda: session.get_one(AppVersion, version_id).graph)
    trigger = analysis.blocks.get(analysis.trigger or "")
    return trigger.payload_schema() if trigger is not None else None


class UnknownTool(Exception):
    """No published app of the caller's organization is a tool of that name."""


async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
    """Run the tool's app with the arguments as its inputs, wait for it, and return its outputs."""
    principal, state = _caller(ctx)
    try:
        arguments = dict(params.arguments or {})
        run_id = await starting_run(state, _start, state, principal.org_id, params.name, arguments)
    except UnknownTool:
        TOOL_CALLS.labels("unknown").inc()
        raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}") from None
    except MantleError as exc:  # arguments the trigger refuses, or over the size limit
        TOOL_CALLS.labels("refused").inc()
        return _failure(f"the arguments were refused: {_reason(exc)}")
    log.info("mcp_tool_called", tool=params.name, run_id=str(run_id), org_id=str(principal.org_id))
    settings = state.settings
    await _wait(ctx, state.watcher, state, run_id, settings.mcp_wait_s, settings.mcp_progress_s)
    result, outcome = await run_in_threadpool(_result, state, run_id)
    TOOL_CALLS.labels(outcome).inc()
    return result


def _start(state: State, org_id: uuid.UUID, name: str, arguments: dict[str, Any]) -> uuid.UUID:
    """A run of the tool's latest published version, committed: ended already when it could run here
    (`worker/direct.py`), else handed to a worker."""
    submitter: Submitter = state.submitter
    with session_scope(state.session_factory) as session:
        found = app_store.list_tools(session, org_id=org_id, name=name)
        if not found or _input_schema(submitter, session, found[0]) is None:
            raise UnknownTool(name)
        run, _ = submitter.create(session, org_id=org_id, app_id=found[0].app_id, inputs=arguments,
                                  published=found[0].version, trigger=TRIGGER,
                                  wait_s=state.settings.mcp_wait_s, commit=True)
        run_id, queue = run.id, submitter.needs_worker(run)
    if queue:
        submitter.enqueue(run_id)
    return run_id


def _reason(exc: MantleError) -> str:
    """What was wrong with the arguments, each problem named by its argument (not the API's body path)."""
    if not isinstance(exc, InvalidInputs):
        return exc.message
    return "; ".join(f"{'.'.join(map(str, item['loc'][2:])) or 'arguments'}: {item['msg']}"
                     for item in exc.items)


async def _wait(ctx: Context, watcher: RunWatcher, state: State, run_id: uuid.UUID, limit: float,
                every: float) -> None:
    """Return once the run has ended or `limit` seconds passed, reporting progress meanwhile."""
    wants_progress = bool(ctx.meta and ctx.meta.get("progress_token") is not None)
    start = time.monotonic()
    deadline, last_note, last_at = start + limit, "", start
    with watcher.subscribe(run_id) as changed:
        while True:  # look first: the run may have ended before this subscription
            if wants_progress:
                status, note = await run_in_threadpool(_snapshot, state, run_id)
            else:
                status, note = changed.status or await run_in_threadpool(_status, state, run_id), ""
            now = time.monotonic()
            if status is None or RunStatus(status) in TERMINAL or now >= deadline:
                return
            if wants_progress and (note != last_note or now - last_at >= every):
                await ctx.session.report_progress(round(now - start, 3), None, note)
                last_note, last_at = note, now
            await watcher.next_change(changed, min(deadline - now, every, watcher.poll_interval * 10))


def _status(state: State, run_id: uuid.UUID) -> str | None:
    with state.read_sessions() as session:
        found: str | None = session.scalar(select(Run.status).where(Run.id == run_id))
        return found


def _snapshot(state: State, run_id: uuid.UUID) -> tuple[str | None, str]:
    """The run's status and a line saying where it stands (what it waits for, how many nodes are done)."""
    with state.read_sessions() as session:
        status = session.scalar(select(Run.status).where(Run.id == run_id))
        nodes = session.execute(select(NodeRun.node_id, NodeRun.block_type, NodeRun.status)
                                .where(NodeRun.run_id == run_id).order_by(NodeRun.node_id)).all()
    done = sum(1 for node in nodes if node.status in DONE)
    waiting = [f"{node.node_id} ({node.block_type})" for node in nodes
               if node.status == NodeStatus.waiting.value]
    note = f"run {run_id} is {status}"
    if waiting:
        note += f", waiting on {', '.join(waiting)}"
    return status, f"{note}; {done} node(s) done"


def _result(state: State, run_id: uuid.UUID) -> tuple[types.CallToolResult, str]:
    """The call's result for the run as it stands, and the outcome counted for it."""
    with state.read_sessions() as session:
        run = session.get_one(Run, run_id)
        status, outputs, error = RunStatus(run.status), run.outputs or {}, run.error or {}
    if status is RunStatus.succeeded:
        text = json.dumps(outputs, ensure_ascii=False)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=outputs), status.value
    if status in TERMINAL:
        reason = error.get("message") or f"the run ended {status.value}"
        return _failure(f"the run {run_id} ended {status.value}: {reason}",
                        {"run_id": str(run_id), "status": status.value, "error": error}), status.value
    pending = {"run_id": str(run_id), "status": status.value}
    text = (f"the run {run_id} is still {status.value} after {state.settings.mcp_wait_s:g} s; "
            f"follow it at GET /v1/runs/{run_id}")
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                structured_content=pending), "pending"


def _failure(text: str, structured: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                structured_content=structured, is_error=True)
