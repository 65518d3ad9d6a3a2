"""The templated parts of an HTTP request (URL, headers, query, body) and their rendering.

Each template is compiled by the sandboxed, bounded Jinja2 environment of `text.template`, so
a syntax error is a validation problem of the graph and a template cannot exhaust a worker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from jinja2 import TemplateSyntaxError
from pydantic import BaseModel, Field, model_validator

from blocks.text_template import TemplateError, compile_template

# A JSON body string that is one whole `{{ name }}` is replaced by the value itself, typed.
WHOLE_VARIABLE = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")
MAX_BODY_DEPTH = 20


def _strings(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON value, with its path (for error messages)."""
    if depth > MAX_BODY_DEPTH:
        raise ValueError(f"{path} is nested more than {MAX_BODY_DEPTH} levels deep")
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]", depth + 1)


class HttpTemplates(BaseModel):
    """URL, headers, query and body; every string in them is a template."""

    url: str = Field(min_length=1, max_length=4000, examples=["https://api.example.com/items/{{ id }}"],
                     description="http(s) URL template; `{{ x | urlencode }}` escapes a path part.")
    headers: dict[str, str] = Field(default_factory=dict, max_length=50,
                                    description="Header name to value template.")
    query: dict[str, str] = Field(default_factory=dict, max_length=100,
                                  description="Query parameter to value template (encoded for you).")
    body_type: Literal["none", "json", "form"] = Field(default="none", description="What `body` is sent as.")
    body: Any = Field(default=None, description="JSON body (strings are templates) or form fields.")

    @model_validator(mode="after")
    def _templates_parse(self) -> HttpTemplates:
        for where, source in self._templates():
            try:
                compile_template(source)
            except TemplateSyntaxError as exc:
                raise ValueError(f"{where}: template syntax error on line {exc.lineno}: "
                                 f"{exc.message}") from None
        if not compile_template(self.url)[1]:  # no variables: the URL can be checked now
            _http_url(self.url, ValueError)
        if self.body is not None and self.body_type == "none":
            raise ValueError("`body` is set but `body_type` is none; say json or form")
        if self.body_type == "form" and self.body is not None and not (
                isinstance(self.body, dict) and all(isinstance(v, str) for v in self.body.values())):
            raise ValueError("a form body is an object of field names to (templated) text values")
        return self

    def _templates(self) -> Iterator[tuple[str, str]]:
        yield "url", self.url
        yield from ((f"headers.{k}", v) for k, v in self.headers.items())
        yield from ((f"query.{k}", v) for k, v in self.query.items())
        yield from _strings(self.body, "body")

    def variables(self) -> list[str]:
        """Every variable the templates read, sorted: the block's input ports."""
        names: set[str] = set()
        for _, source in self._templates():
            names.update(compile_template(source)[1])
        return sorted(names)

    def render(self, values: Mapping[str, Any]) -> tuple[httpx.URL, dict[str, str], bytes | None, str | None]:
        """The URL (query added), headers, body bytes and body content type for these values."""
        url = _http_url(_render(self.url, values, "url").strip(), TemplateError)
        if self.query:
            url = url.copy_merge_params({k: _render(v, values, f"query.{k}") for k, v in self.query.items()})
        headers = {k: _render(v, values, f"headers.{k}") for k, v in self.headers.items()}
        for name, value in headers.items():
            if "\n" in value or "\r" in value:
                raise TemplateError(f"header {name} renders to a value with a line break")
        if self.body_type == "json":
            body = json.dumps(_render_json(self.body, values, "body"), separators=(",", ":"))
            return url, headers, body.encode(), "application/json"
        if self.body_type == "form":
            form = {k: _render(v, values, f"body.{k}") for k, v in (self.body or {}).items()}
            return url, headers, urlencode(form).encode(), "application/x-www-form-urlencoded"
        return url, headers, None, None


def _http_url(text: str, error: type[Exception]) -> httpx.URL:
    """`text` as an http(s) URL with a host, or `error` saying what is wrong with it."""
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as exc:
        raise error(f"url {text[:200]!r} is not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise error(f"url {text[:200]!r} is not an http or https URL with a host")
    return url


def _render(source: str, values: Mapping[str, Any], where: str) -> str:
    template, _ = compile_template(source)
    try:
        return template.render(values)
    except TemplateError:
        raise
    except Exception as exc:  # undefined values, refused operations: the node fails, naming the part
        raise TemplateError(f"{where}: template failed: {type(exc).__name__}: {exc}") from None


def _render_json(value: Any, values: Mapping[str, Any], path: str) -> Any:
    if isinstance(value, str):
        whole = WHOLE_VARIABLE.match(value)
        if whole is not None and whole.group(1) in values:
            return values[whole.group(1)]
        return _render(value, values, path)
    if isinstance(value, dict):
        return {k: _render_json(v, values, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, values, f"{path}[{i}]") for i, v in enumerate(value)]
    return value
