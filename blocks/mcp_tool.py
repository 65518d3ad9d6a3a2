"""`mcp.tool`: call a tool on an MCP server (another Mantle's `/mcp`, or any server that speaks MCP
over streamable HTTP) and emit what it answers.

Each name in `arguments` is an input port, sent as the tool's argument of that name. The server's
URL passes the SSRF guard (`blocks.net_guard`, with the deployment's allow-list), every request
of the exchange included; `credential` names a stored `bearer_token` of the organization, sent as
`Authorization: Bearer …` only to URLs its admin allowed (`allowed_urls`), never written to the
graph, the trace or an error. Like `http.request` the block runs inline, in the run worker, under
its own deadline (`timeout_s`, the whole exchange) and a bound on the answer's size; a tool that
runs long (another Mantle app waiting for a reviewer) holds the worker that long, so give it a
timeout that fits. A result the tool marks as an error fails the node unless `fail_on_error` is off.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.base import Block, BlockContext, Port, PortsFromConfig, port_values
from blocks.fields import IDENTIFIER
from blocks.http_request import CREDENTIAL_NAME, CredentialRefused, CredentialSource
from blocks.mcp_client import ToolCallFailed, call_tool
from blocks.net_guard import NetGuard
from core import url_scope
from core.errors import MantleError

TOOL_NAME = r"^[A-Za-z0-9_.\-/]{1,128}$"  # the MCP specification's tool name characters
_PORT_NAME = re.compile(IDENTIFIER)


class McpToolConfig(BaseModel):
    """Which server and tool, which arguments, how to authenticate, how patient to be."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="The server's streamable HTTP endpoint "
                     "(for another Mantle: https://host/mcp).")
    tool: str = Field(pattern=TOOL_NAME, description="The tool's name, as the server lists it.")
    arguments: list[str] = Field(default_factory=list, max_length=50, description=(
        "The tool's arguments; each is an input port, sent under its own name."))
    credential: str | None = Field(default=None, pattern=CREDENTIAL_NAME, description=(
        "A stored `bearer_token` credential's name (POST /v1/credentials), sent as `Authorization: Bearer`."))
    timeout_s: float = Field(default=60.0, gt=0, le=600, description="For the whole exchange.")
    max_response_bytes: int = Field(default=1_000_000, ge=1024, le=8_000_000, description=(
        "Longest answer accepted; the outputs must also fit the engine's MANTLE_MAX_VALUE_BYTES."))
    fail_on_error: bool = Field(default=True, description=(
        "A result the tool marks as an error fails the node."))

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, ValueError) as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("the server's URL must be http or https, with a host")
        return value

    @field_validator("arguments")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _PORT_NAME.match(name):
                raise ValueError(f"argument {name!r} is not a port name (letters, digits, underscore)")
        if len(set(value)) != len(value):
            raise ValueError("an argument is listed twice")
        return value


OUTPUT_PORTS = {
    "result": Port("result", "any", False, "The tool's structured result, emitted when it gives one."),
    "text": Port("text", "string", True, "The text the tool answered."),
    "is_error": Port("is_error", "boolean", True, "Whether the tool said its call failed."),
}


class McpToolInputs(PortsFromConfig):
    """The tool's arguments, one port per entry of config.arguments."""


class McpToolOutputs(PortsFromConfig):
    """The tool's answer: text, is_error, and result when it gives one (`OUTPUT_PORTS`)."""


class McpToolBlock(Block[McpToolConfig, McpToolInputs, McpToolOutputs]):
    """Calls one tool on an MCP server and emits its answer."""

    type = "mcp.tool"
    title = "MCP tool"
    description = ("Calls a tool on an MCP server (streamable HTTP): arguments from input ports, a stored "
                   "bearer credential, a timeout; private and internal addresses are refused.")
    category = "integrations"
    side_effects = True  # a tool may do anything
    dynamic_ports = "One input port per entry of config.arguments."

    def input_ports(self) -> dict[str, Port]:
        return {name: Port(name, "any", True) for name in self.config.arguments}

    def output_ports(self) -> dict[str, Port]:
        return dict(OUTPUT_PORTS)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The palette entry; the outputs are fixed even though the config has no defaults."""
        return {**super().describe(), "outputs": [p.as_dict() for p in OUTPUT_PORTS.values()]}

    def run(self, inputs: McpToolInputs, ctx: BlockContext) -> McpToolOutputs:
        cfg = self.config
        values = port_values(inputs)
        guard: NetGuard = ctx.services.get("net_guard") or NetGuard()
        headers, allowed = self._auth(ctx)
        url = httpx.URL(cfg.url)
        if headers and not url_scope.allows(allowed, url):
            where = ", ".join(allowed) if allowed else "nowhere (no allowed_urls)"
            raise CredentialRefused(
                f"the bearer_token credential {cfg.credential!r} may not be sent to {url.scheme}://"
                f"{url.netloc.decode('ascii', 'replace')}{url.path}; its admin allows {where} "
                "(PUT /v1/credentials/{id} with allowed_urls)", loc=["config", "credential"])
        answer = call_tool(cfg.url, cfg.tool, {name: values.get(name) for name in cfg.arguments}, guard=guard,
                           headers=headers, secret_allowed=lambda hop: url_scope.allows(allowed, hop),
                           timeout_s=cfg.timeout_s, max_bytes=cfg.max_response_bytes)
        if answer.is_error and cfg.fail_on_error:
            raise ToolCallFailed(f"the tool {cfg.tool!r} failed: {answer.text[:500]}")
        found: dict[str, Any] = {"text": answer.text, "is_error": answer.is_error}
        if answer.structured is not None:
            found["result"] = answer.structured
        return self.emit(found)

    def _auth(self, ctx: BlockContext) -> tuple[dict[str, str], list[str]]:
        """The header the credential adds, and the URLs it may be sent to."""
        name = self.config.credential
        if name is None:
            return {}, []
        source: CredentialSource | None = ctx.services.get("credentials")
        if source is None:
            raise MantleError("this worker has no credentials service (ctx.services['credentials'])")
        bound = source.bound(ctx.org_id, "bearer_token", name)
        if bound is None:
            raise MantleError(f"the organization has no bearer_token credential named {name!r} "
                              "(add it with POST /v1/credentials)", loc=["config", "credential"])
        found, allowed = bound
        return {"Authorization": f"Bearer {found['token']}"}, list(allowed)


BLOCKS = [McpToolBlock]
