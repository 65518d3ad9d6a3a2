"""Known Jinja2 escapes and resource bombs, in every block that takes a template.

Each payload must fail validation, or fail the node with a template error, or render text that
reveals nothing of Python's internals; none may hang a worker or run code. Blocks are found in
the registry (any block whose config has a `template` field), so a new one is covered at once.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from blocks.base import AnyBlock, BlockContext, Execution, Suspend, port_values
from blocks.registry import default_registry
from core.errors import MantleError

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ text.__class__.__base__.__subclasses__()[40]('/etc/passwd').read() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__['os'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ range.__globals__ }}",
    "{{ text|attr('__class__')|attr('__mro__') }}",
    "{{ (text|attr('__class__')).__subclasses__() }}",
    "{{ '{0.__class__}'.format(text) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(text) }}",
    "{{ '{x.__class__}'.format_map({'x': text}) }}",
    "{{ '%s'|format(text.__class__) }}",
    "{{ text.__getattribute__('__class__') }}",
    "{% set x = text.__class__ %}{{ x }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ dict.__init__.__globals__ }}",
]
BOMBS = [
    "{{ 10 ** (10 ** 10) }}",
    "{{ (9 ** 999) ** 999 }}",
    "{{ 'a' * 10 ** 9 }}",
    "{{ [1] * 10 ** 9 }}",
    "{% for i in range(10 ** 9) %}{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% for a in 'x' * 999999 %}{% for b in 'y' * 999999 %}{% endfor %}{% endfor %}",
    "{{ 'x'.ljust(10 ** 9) }}",
    "{{ 'x'|center(10 ** 9) }}",
    "{{ '{:>1000000000}'.format(1) }}",
    "{{ '{:>{w}}'.format(1, w=10 ** 9) }}",
    "{{ '%1000000000d' % 1 }}",
    "{{ '%1000000000d'|format(1) }}",
    "{{ ('x' * 999999).replace('x', 'y' * 999999) }}",
    "{{ ('ab' * 400000)|list|join('y' * 99999) }}",
    "{{ lipsum(999999) }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
]
LEAKS = ("<class", "<function", "<module", "<built-in", "__", "uid=", "root:", "os.popen", "Context")


def template_blocks() -> list[type[AnyBlock]]:
    """Every registered block type whose config takes a template."""
    return [b for b in default_registry() if "template" in b.Config.model_fields]


def outcome(block_type: type[AnyBlock], template: str) -> tuple[str, str]:
    """What the block does with `template`: ('invalid' | 'failed' | 'rendered', detail)."""
    try:
        block = block_type.from_config({"template": template})
    except (ValidationError, ValueError) as exc:
        return "invalid", str(exc)
    values: dict[str, Any] = dict.fromkeys(block.input_ports(), "hi")
    ctx = BlockContext(run_id=uuid.uuid4(), node_id="n", org_id=uuid.uuid4(), app_id=uuid.uuid4())
    try:
        if block_type.execution is Execution.deferred:
            suspended = block.start(block.typed_inputs(values), ctx)
            assert isinstance(suspended, Suspend)
            return "rendered", str(dict(suspended.payload).get("prompt", suspended.payload))
        return "rendered", str(port_values(block.run(block.typed_inputs(values), ctx)))
    except MantleError as exc:
        return "failed", exc.message


def bounded(block_type: type[AnyBlock], template: str) -> tuple[str, str]:
    """`outcome`, in a thread that must finish (a hang guard, not a timing)."""
    result: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(outcome(block_type, template))
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), f"{block_type.type} still rendering {template!r} after 60 s"
    if errors:
        raise errors[0]
    return result[0]


def test_the_template_blocks_are_found() -> None:
    assert {"text.template", "llm.prompt"} <= {b.type for b in template_blocks()}


@pytest.mark.parametrize("block_type", template_blocks(), ids=lambda b: b.type)
@pytest.mark.parametrize("template", ESCAPES)
def test_escape_payloads_fail_or_render_harmlessly(block_type: type[AnyBlock], template: str) -> None:
    kind, detail = bounded(block_type, template)
    if kind == "rendered":
        assert not [leak for leak in LEAKS if leak in detail], detail[:500]
    else:
        assert "unsafe" in detail or "undefined" in detail or "no attribute" in detail \
            or "syntax" in detail, detail


@pytest.mark.parametrize("block_type", template_blocks(), ids=lambda b: b.type)
@pytest.mark.parametrize("template", BOMBS)
def test_resource_bombs_are_refused(block_type: type[AnyBlock], template: str) -> None:
    kind, detail = bounded(block_type, template)
    assert kind in ("invalid", "failed"), (kind, detail[:200])
    assert "template failed" in detail or "syntax" in detail, detail


@pytest.mark.parametrize("block_type", template_blocks(), ids=lambda b: b.type)
def test_ordinary_templates_still_work(block_type: type[AnyBlock]) -> None:
    template = ("{% for w in text.split(' ') %}{{ loop.index }}:{{ w|upper }}{{ ', ' if not loop.last }}"
                "{% endfor %} {{ '%05.1f'|format(3.14159) }} {{ '{:>6}'.format('ok') }} {{ 2 ** 10 }}")
    kind, detail = bounded(block_type, template)
    assert kind == "rendered" and "1:HI 003.1     ok 1024" in detail, detail
