"""`http.request`: call an outside HTTP API, safely.

The URL, header values, query values and body are templates (the sandboxed Jinja2 of
`text.template`); every variable they read is an input port. In a JSON body a string that is
one whole `{{ variable }}` keeps the value's own type (a number stays a number). Authentication
names a stored credential of the organization (`bearer_token`, `basic_auth`, `api_key_header`):
the secret never appears in the graph, the node's inputs or outputs, or an error message. It is
sent only to a URL its admin allowed (`allowed_urls`, `core/url_scope.py`): any other is refused
before anything is sent, with an error saying so, and a redirect gets it only if it stays on the
request's own origin and inside what is allowed. POST and PATCH carry
`Idempotency-Key: <run id>:<node id>`, so a node run again after a crash is recognisable as the
same request by any API that honours the header.

Every request goes through the SSRF guard (`blocks.net_guard`) that the worker provides at
`ctx.services["net_guard"]` (a strict guard without an allow-list when there is none);
redirects, retries and limits are `blocks.http_client`'s.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from email.message import Message
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.base import Block, BlockContext, Port, PortsFromConfig, port_values
from blocks.http_client import Fetched, Fetcher
from blocks.http_template import HttpTemplates
from blocks.net_guard import NetGuard
from core import url_scope
from core.errors import MantleError

HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"
CREDENTIAL_NAME = r"^[A-Za-z0-9_.-]{1,100}$"
# Set by the transport, or secrets: a secret in a graph is readable by every builder of the app.
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
                               "authorization", "proxy-authorization"})


class CredentialSource(Protocol):
    """What the worker provides at `ctx.services["credentials"]`."""

    def bound(self, org_id: Any, type_: str, name: str) -> tuple[Mapping[str, Any], Sequence[str]] | None:
        """The decrypted fields of the organization's credential and the URLs it may be sent to, or None."""
        ...


class CredentialRefused(MantleError):
    """The URL is not one the credential's admin allowed it to be sent to."""

    type = "credential_refused"


class AuthConfig(BaseModel):
    """Which stored credential authenticates the request."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["bearer_token", "basic_auth", "api_key_header"]
    credential: str = Field(default="default", pattern=CREDENTIAL_NAME,
                            description="The credential's name (POST /v1/credentials).")


class HttpRequestConfig(HttpTemplates):
    """What to send, how to authenticate, and how patient to be."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    auth: AuthConfig | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="For everything: retries, redirects.")
    retries: int = Field(default=2, ge=0, le=5, description="Tries again on 429, 5xx and connection errors.")
    backoff_s: float = Field(default=0.5, ge=0, le=30, description="First wait between tries; doubles.")
    max_redirects: int = Field(default=5, ge=0, le=10)
    max_response_bytes: int = Field(default=256 * 1024, ge=1, le=8_000_000, description=(
        "Longest body accepted (decompressed); the outputs (text and json) must also fit the engine's "
        "MANTLE_MAX_VALUE_BYTES."))
    fail_on_status: bool = Field(default=True, description="A final 4xx/5xx answer fails the node.")
    idempotency_key: bool = Field(default=True, description=(
        "Send `Idempotency-Key: <run id>:<node id>` with POST and PATCH: a server that honours it acts "
        "once even when a crashed node is run again."))

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.match(HEADER_NAME, name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in FORBIDDEN_HEADERS:
                hint = " (use `auth` with a stored credential)" if "authorization" in name.lower() else ""
                raise ValueError(f"header {name!r} may not be set here{hint}")
        return value


OUTPUT_PORTS = {
    "status": Port("status", "integer", True, "The final HTTP status."),
    "headers": Port("headers", "object", True, "Response headers, lower-case names."),
    "json": Port("json", "any", False, "The parsed body, emitted only when the answer is JSON."),
    "text": Port("text", "string", True, "The body as text."),
    "url": Port("url", "string", True, "The URL that answered (after redirects)."),
}


class HttpRequestInputs(PortsFromConfig):
    """The values the URL, header, query and body templates read, one port per variable."""


class HttpRequestOutputs(PortsFromConfig):
    """The answer: status, headers, text, url, and json when the body is JSON (`OUTPUT_PORTS`)."""


class HttpRequestBlock(Block[HttpRequestConfig, HttpRequestInputs, HttpRequestOutputs]):
    """Sends one HTTP request and emits the answer."""

    type = "http.request"
    title = "HTTP request"
    description = ("Calls an HTTP API: templated URL, headers, query and body, stored-credential auth, "
                   "retries, limits; private and internal addresses are refused.")
    category = "integrations"
    side_effects = True
    dynamic_ports = "One input port per variable read by the URL, header, query or body templates."

    def input_ports(self) -> dict[str, Port]:
        return {name: Port(name, "any", True) for name in self.config.variables()}

    def output_ports(self) -> dict[str, Port]:
        return dict(OUTPUT_PORTS)

    def has_side_effects(self) -> bool:
        """GET and HEAD only read (HTTP's safe methods); any other method may change something."""
        return self.config.method not in ("GET", "HEAD")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The palette entry; the outputs are fixed even though the config has no defaults."""
        return {**super().describe(), "outputs": [p.as_dict() for p in OUTPUT_PORTS.values()]}

    def run(self, inputs: HttpRequestInputs, ctx: BlockContext) -> HttpRequestOutputs:
        cfg = self.config
        url, headers, content, content_type = cfg.render(port_values(inputs))
        named = {k.lower() for k in headers}
        if content_type and "content-type" not in named:
            headers["Content-Type"] = content_type
        if cfg.idempotency_key and cfg.method in ("POST", "PATCH") and "idempotency-key" not in named:
            headers["Idempotency-Key"] = ctx.idempotency_key
        guard: NetGuard = ctx.services.get("net_guard") or NetGuard()
        fetcher = Fetcher(guard, timeout_s=cfg.timeout_s, retries=cfg.retries, backoff_s=cfg.backoff_s,
                          max_redirects=cfg.max_redirects, max_bytes=cfg.max_response_bytes)
        secret, allowed = self._auth(ctx)
        if secret and not url_scope.allows(allowed, url):
            auth = cfg.auth
            assert auth is not None
            where = ", ".join(allowed) if allowed else "nowhere (no allowed_urls)"
            raise CredentialRefused(
                f"the {auth.type} credential {auth.credential!r} may not be sent to {url.scheme}://"
                f"{url.netloc.decode('ascii', 'replace')}{url.path}; its admin allows {where} "
                "(PUT /v1/credentials/{id} with allowed_urls)", loc=["config", "auth"])
        fetched = fetcher.fetch(cfg.method, url, headers, content, secret,
                                secret_allowed=lambda hop: url_scope.allows(allowed, hop))
        if cfg.fail_on_status and fetched.status >= 400:
            snippet = fetched.content[:200].decode("utf-8", "replace")
            raise MantleError(f"{url.host} answered HTTP {fetched.status}: {snippet}")
        return self.emit(outputs(fetched))

    def _auth(self, ctx: BlockContext) -> tuple[dict[str, str], Sequence[str]]:
        """The headers the configured credential adds, and the URLs it may be sent to."""
        auth = self.config.auth
        if auth is None:
            return {}, ()
        source: CredentialSource | None = ctx.services.get("credentials")
        if source is None:
            raise MantleError("this worker has no credentials service (ctx.services['credentials'])")
        bound = source.bound(ctx.org_id, auth.type, auth.credential)
        if bound is None:
            raise MantleError(f"the organization has no {auth.type} credential named {auth.credential!r} "
                              "(add it with POST /v1/credentials)", loc=["config", "auth"])
        found, allowed = bound
        if auth.type == "bearer_token":
            return {"Authorization": f"Bearer {found['token']}"}, allowed
        if auth.type == "basic_auth":
            pair = f"{found['username']}:{found['password']}".encode()
            return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}, allowed
        return {str(found["header"]): str(found["value"])}, allowed


def outputs(fetched: Fetched) -> dict[str, Any]:
    """The block's output ports for an answer: `json` only when the body is JSON."""
    content_type = fetched.headers.get("content-type", "")
    parsed = Message()
    parsed["content-type"] = content_type
    charset = parsed.get_content_charset()
    try:
        text = fetched.content.decode(charset or "utf-8", "replace")
    except LookupError:  # an unknown charset name
        text = fetched.content.decode("utf-8", "replace")
    found: dict[str, Any] = {"status": fetched.status, "headers": fetched.headers, "text": text,
                             "url": fetched.url}
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            found["json"] = json.loads(text)
        except ValueError:
            pass  # says JSON, is not: the text is still there
    return found


BLOCKS = [HttpRequestBlock]
