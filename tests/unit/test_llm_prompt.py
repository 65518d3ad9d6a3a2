"""`llm.prompt` as the builder and the engine see it: ports, config checks, the request it sends,
the outputs it emits, and how a prompt is fitted into the model's context."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from blocks.base import BlockContext, port_values
from blocks.llm_prompt import PromptBlock
from blocks.registry import default_registry
from builder.graph import Graph
from builder.validation import Limits, analyze
from core.settings import Settings
from inference.deployments import Deployment, check_api_source, configured
from tests.inference import tiny_backend
from worker.inference.service import PromptTooLong, prompt_ids

CTX = BlockContext(run_id=uuid.uuid4(), node_id="gen", org_id=uuid.uuid4(), app_id=uuid.uuid4())


def graph(model: str) -> Graph:
    return Graph.model_validate({
        "nodes": [{"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "q"}]}},
                  {"id": "gen", "type": "llm.prompt", "config": {"model": model, "template": "Q: {{ q }}"}},
                  {"id": "out", "type": "output"}],
        "edges": [{"source": "in", "source_port": "q", "target": "gen", "target_port": "q"},
                  {"source": "gen", "source_port": "text", "target": "out", "target_port": "text"}]})


def test_template_variables_become_input_ports() -> None:
    block = PromptBlock.from_config({"template": "{{ tone }} reply to {{ message }}"})
    assert sorted(block.input_ports()) == ["message", "tone"]
    assert set(block.output_ports()) == {"text", "finish_reason", "prompt_tokens", "completion_tokens"}


def test_an_unknown_model_is_a_validation_problem_naming_the_known_ones() -> None:
    known = Limits(models=frozenset(configured(Settings())))
    problems = analyze(graph("gpt-5"), default_registry(), known).problems
    assert len(problems) == 1 and problems[0].node_id == "gen" and problems[0].path == "config.model"
    assert "unknown model deployment 'gpt-5'" in problems[0].message
    assert "smollm2-135m-instruct" in problems[0].message
    assert analyze(graph("gpt-j-6b"), default_registry(), known).problems == []


def test_bad_config_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="template syntax error"):
        PromptBlock.from_config({"template": "{{ unclosed"})
    with pytest.raises(ValidationError, match="temperature"):
        PromptBlock.from_config({"temperature": 5})
    with pytest.raises(ValidationError, match="stop sequence"):
        PromptBlock.from_config({"stop": [""]})


def test_start_sends_the_rendered_prompt_and_resume_emits_the_outputs() -> None:
    block = PromptBlock.from_config({"template": "Hello {{ name }}", "temperature": 0, "stop": ["\n"],
                                     "seed": 3})
    inputs = block.typed_inputs({"name": "Ada"})
    suspend = block.start(inputs, CTX)
    assert suspend.kind == "inference"
    assert suspend.payload["prompt"] == "Hello Ada" and suspend.payload["model"] == "smollm2-135m-instruct"
    assert suspend.payload["stop"] == ["\n"] and suspend.payload["seed"] == 3
    assert suspend.payload["chat"] is True
    outputs = block.resume(inputs, {"text": "Hi!", "finish_reason": "stop", "prompt_tokens": 9,
                                             "completion_tokens": 3, "timing": {}}, CTX)
    assert port_values(outputs) == {"text": "Hi!", "finish_reason": "stop", "prompt_tokens": 9,
                                    "completion_tokens": 3}


def test_a_long_prompt_loses_its_beginning_or_is_refused() -> None:
    tokenizer = tiny_backend().tokenizer
    model = Deployment(name="tiny", source="/m", max_context=32)
    payload = {"prompt": "x" * 40 + "the end", "chat": False, "max_new_tokens": 8}
    ids, cut, max_new = prompt_ids(tokenizer, payload, model)
    assert len(ids) == 24 and cut == 23 and max_new == 8 and tokenizer.decode(ids).endswith("the end")
    with pytest.raises(PromptTooLong, match="47 tokens"):
        prompt_ids(tokenizer, {**payload, "on_overflow": "reject"}, model)


def test_chat_mode_uses_the_model_chat_template() -> None:
    tokenizer = tiny_backend().tokenizer
    ids, _, _ = prompt_ids(tokenizer, {"prompt": "hi", "system": "be brief", "chat": True},
                           Deployment(name="tiny", source="/m"))
    assert tokenizer.decode(ids) == "<system>be brief\n<user>hi\n<assistant>"


def test_deployments_set_through_the_api_cannot_name_arbitrary_paths() -> None:
    assert check_api_source(Deployment(name="x", source="hf://EleutherAI/gpt-j-6b")) is None
    assert check_api_source(Deployment(name="x", source="my-model")) is None
    assert check_api_source(Deployment(name="x", source="/etc")) is not None
    with pytest.raises(ValidationError, match="`..` part"):  # refused for any deployment, settings' too
        Deployment(name="x", source="../up")
