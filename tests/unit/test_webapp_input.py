"""`webapp.input`: the form's fields as ports, their limits checked on the server, and its config checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.public.tokens import Signer
from blocks.registry import default_registry
from blocks.webapp_input import WebAppInputBlock
from builder.graph import Graph
from builder.validation import analyze
from tests.webapps import FIELDS, webapp_graph


def _problems(payload: dict[str, Any]) -> dict[str, str]:
    block = WebAppInputBlock.from_config({"fields": FIELDS})
    with pytest.raises(ValidationError) as caught:
        block.accept(payload)
    return {str(e["loc"][0]): e["msg"] for e in caught.value.errors()}


def test_fields_become_typed_output_ports() -> None:
    block = WebAppInputBlock.from_config({"fields": FIELDS})
    ports = {name: port.type for name, port in block.output_ports().items()}
    assert ports == {"name": "string", "story": "string", "age": "integer", "tone": "string",
                     "loud": "boolean"}
    assert analyze(Graph.model_validate(webapp_graph()), default_registry()).problems == []


def test_accept_fills_defaults_and_normalises() -> None:
    block = WebAppInputBlock.from_config({"fields": FIELDS})
    accepted = block.accept({"name": "Ada", "age": "36"})
    assert accepted == {"name": "Ada", "story": "", "age": 36, "tone": "warm", "loud": False}
    assert block.accept(accepted) == accepted  # the worker checks the stored inputs again
    assert block.accept({"name": "Ada", "age": None, "loud": True})["age"] is None


def test_accept_names_every_problem() -> None:
    assert _problems({"name": "", "age": -1, "tone": "loud", "loud": "yes please", "x": 1}) == {
        "name": "is required", "age": "must be at least 0", "tone": "must be one of: warm, formal",
        "loud": "must be true or false", "x": "Extra inputs are not permitted",
    }
    assert _problems({"name": "a" * 41, "age": "many"}) == {
        "name": "must be at most 40 characters", "age": "must be a number"}
    assert _problems({"name": 7, "age": float("nan")}) == {"name": "must be text", "age": "must be a number"}
    assert _problems({"age": True}) == {"name": "Field required", "age": "must be a number"}


def test_a_required_checkbox_must_be_ticked() -> None:
    block = WebAppInputBlock.from_config({"fields": [{"name": "agree", "kind": "checkbox",
                                                      "required": True}]})
    with pytest.raises(ValidationError, match="must be ticked"):
        block.accept({"agree": False})
    assert block.accept({"agree": True}) == {"agree": True}
    optional = WebAppInputBlock.from_config({"fields": [{"name": "agree", "kind": "checkbox"}]})
    assert optional.accept({}) == {"agree": False}


@pytest.mark.parametrize(("field", "message"), [
    ({"name": "c", "kind": "choice"}, "needs at least one entry"),
    ({"name": "c", "kind": "choice", "choices": ["a", "a"]}, "twice"),
    ({"name": "t", "choices": ["a"]}, "only applies to choice"),
    ({"name": "n", "kind": "number", "minimum": 5, "maximum": 1}, "minimum is above maximum"),
    ({"name": "n", "kind": "number", "default": "lots"}, "default must be a number"),
    ({"name": "t", "max_length": 5, "default": "too long"}, "default must be at most 5"),
    ({"name": "t", "min_length": 9, "max_length": 5}, "min_length is above max_length"),
    ({"name": "bad name"}, "String should match pattern"),
    ({"name": "t", "kind": "date"}, "Input should be"),
])
def test_config_mistakes_are_explained(field: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebAppInputBlock.from_config({"fields": [field]})


def test_field_names_are_unique() -> None:
    with pytest.raises(ValidationError, match="used twice"):
        WebAppInputBlock.from_config({"fields": [{"name": "a"}, {"name": "a"}]})


def test_signed_tokens_refuse_tampering_expiry_and_other_purposes() -> None:
    page, run = Signer("secret", "page"), Signer("secret", "run")
    token = page.sign({"s": "share", "v": "visitor"}, ttl_s=60)
    assert page.unsign(token) is not None and page.unsign(token)["v"] == "visitor"  # type: ignore[index]
    body, mac = token.split(".")
    assert page.unsign(body[:-2] + "xx." + mac) is None
    assert run.unsign(token) is None and Signer("other", "page").unsign(token) is None
    assert page.unsign(page.sign({"s": "share"}, ttl_s=-1)) is None
    assert page.unsign(None) is None and page.unsign("no-dot") is None
