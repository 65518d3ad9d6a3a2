"""Bombs built in shapes no single check was written for fail their node, with the limit they hit.

A template or a JMESPath expression is a small program: a recursive macro, a string doubled with
`~`, a list nested in itself, `[@,@]` piped twenty times each do astronomical work in a few
characters. Each bomb here runs as a node of an app, through the executor exactly as a worker
runs it (in memory; `tests/engine/test_work_bounds.py` runs bombs on the real stacks), in every
block that renders templates. Each must fail its node with an error naming the limit, inside a
hang guard (a guard, not a timing). Ordinary templates and expressions still work.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker

from blocks.base import AnyBlock, BlockContext
from blocks.limits import charge, measure
from blocks.registry import default_registry
from builder.executor import Executor, NodeFailed, NodeSucceeded, RunState, SliceSpent
from builder.graph import Graph
from builder.validation import analyze
from core.settings import Settings
from core.statuses import NodeStatus
from tests.factories import edge, make_block, node
from worker.engine import RunEngine

TEXT = '["hi", 2, 3]'
DOUBLE = "{% set ns = namespace(v=SEED) %}{% for i in range(64) %}{% set ns.v = STEP %}{% endfor %}{{ ns.v }}"


def doubling(seed: str, step: str) -> str:
    """A template that applies `step` to `ns.v` 64 times, from `seed`: 2**64 if nothing stops it."""
    return DOUBLE.replace("SEED", seed).replace("STEP", step)


# (name, template, what the node's error must say)
TEMPLATE_BOMBS = [
    ("macro-recursion", "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
                        "{{ f(40) }}", "steps of work"),
    ("macro-recursion-in-caller", "{% macro f(n) %}{% if n > 0 %}{{ caller() }}{{ caller() }}{% endif %}"
                                  "{% endmacro %}{% macro g(n) %}{% call f(n) %}{{ g(n - 1) }}{% endcall %}"
                                  "{% endmacro %}{{ g(40) }}", "more than"),
    ("endless-macro", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested more than"),
    ("recursive-loop", "{% for x in [1] recursive %}{{ loop([x, x]) }}{% endfor %}", "nested more than"),
    ("tilde-doubling", doubling("'ab'", "ns.v ~ ns.v"), "longer than"),
    ("plus-doubling", doubling("'ab'", "ns.v + ns.v"), "larger than the limit"),
    ("list-plus-doubling", doubling("[1]", "ns.v + ns.v"), "more than"),
    ("shared-nested-list", doubling("[1]", "[ns.v, ns.v]"), "more than"),
    ("shared-nested-dict", doubling("{}", "{'a': ns.v, 'b': ns.v}"), "more than"),
    ("shared-nested-tuple-hashed", doubling("(1,)", "(ns.v, ns.v)") + "{{ ns.v in [1] }}", "more than"),
    ("join-doubling", doubling("'ab'", "[ns.v, ns.v]|join"), "more than"),
    ("replace-doubling", doubling("'ab'", "ns.v|replace('a', 'aa')|replace('b', 'bb')"), "larger than"),
    ("center-doubling", doubling("'ab'", "ns.v|center(ns.v|length * 2)"), "larger than"),
    ("format-doubling", doubling("'ab'", "'%s%s'|format(ns.v, ns.v)"), "too large"),
    ("str-format-doubling", doubling("'ab'", "'{}{}'.format(ns.v, ns.v)"), "too large"),
    ("wordwrap-growth", doubling("'ab'", "ns.v|wordwrap(1, wrapstring='xyz')"), "wordwrap"),
    ("list-extends-itself", "{% set a = [1] %}{% for i in range(64) %}{{ a.extend(a) }}{% endfor %}",
     "unsafe"),  # no value changes in place
    ("namespace-attributes", "{% set ns = namespace() %}{% set s = 'x' * 900000 %}{% set ns.a = s %}"
                             "{% set ns.b = s %}{% set ns.c = s %}{{ ns }}", "more than"),
    ("many-operands", "{% set s = 'x' * 900000 %}{{ " + " ~ ".join(["s"] * 200) + " }}", "longer than"),
    ("many-arguments", "{% set s = 'x' * 900000 %}{{ '{}{}{}{}{}{}'.format(s, s, s, s, s, s) }}",
     "together print"),
    ("output-in-a-loop", "{% set s = 'x' * 900000 %}{% for i in range(100000) %}{{ s }}{% endfor %}",
     "output would be longer"),
    ("set-block-in-a-loop", "{% set s = 'x' * 900000 %}{% set b %}{% for i in range(99999) %}{{ s }}"
                            "{% endfor %}{% endset %}{{ b|length }}", "output would be longer"),
    ("literal-text-in-a-loop", "{% macro m() %}{% for i in range(99999) %}" + "y" * 30_000
                               + "{% endfor %}{% endmacro %}{{ m()|length }}", "output would be longer"),
    ("nested-range", "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
     "looped more than"),
    ("range-in-a-macro", "{% macro m(n) %}{% for i in range(n) %}{{ i }}{% endfor %}{% endmacro %}"
                         "{% for j in range(50) %}{{ m(90000)|length }}{% endfor %}", "more than"),
    ("power-tower", "{{ ((9 ** 999) ** 999) ** 999 }}", "integer of more than"),
    ("squaring", doubling("99", "ns.v * ns.v"), "integer of more than"),
    ("deep-value", "{% set ns = namespace(v=[]) %}{% for i in range(100000) %}{% set ns.v = [ns.v] %}"
                   "{% endfor %}{{ ns.v }}", "nested more than"),
    ("pprint-of-a-big-list", "{{ range(100000)|list|pprint }}", "pprint"),
]

# (name, expression, what the node's error must say)
JMESPATH_BOMBS = [
    ("doubling", "|".join(["[@,@]"] * 20), "more than 1,000,000 characters"),
    ("doubling-300", "|".join(["[@,@]"] * 300), "more than 1,000,000 characters"),
    ("doubling-flattened", "|".join(["[@,@]|[]"] * 40), "more than"),
    ("doubling-then-flattened", "|".join(["[@,@]"] * 25) + "|[]" * 24, "more than"),
    ("compare-doubled", "|".join(["[@,@]"] * 60) + "|@ == @", "compared value"),
    ("to-string-doubled", "to_string(" + "|".join(["[@,@]"] * 60) + ")", "argument of to_string()"),
    ("sort-doubled", "sort_by(" + "|".join(["[@,@]|[]"] * 25) + ", &@)", "more than"),
    ("join-amplified", "join(to_string(" + "|".join(["[@,@]"] * 15) + "), [" + ",".join(["a"] * 100) + "])",
     "join() would build"),
    ("projections", "|".join(["[@,@]"] * 30) + "|[*]" * 26, "more than"),
    ("map-doubling", "map(&[@,@], " + "|".join(["[@,@]|[]"] * 18) + ")", "more than"),
    # A literal nested past 32 brackets ("[" * 300 + "@" + "]" * 300) is refused when the graph is
    # validated, naming the limit (tests/security/test_crash_classes.py); pipes nest at run time:
    ("deep-pipes", "|".join(["[@]"] * 200), "nested more than"),
]


def new_state() -> RunState:
    """A queued run whose input `text` is also JSON (for `json.extract`)."""
    return RunState(run_id=uuid.uuid4(), org_id=uuid.uuid4(), app_id=uuid.uuid4(),
                    inputs={"text": TEXT}, created_at=datetime.now(UTC))


def run_node_of(bomb: dict[str, Any], port: str = "text") -> tuple[str, str]:
    """Run trigger → bomb in the executor; the bomb node's (status, error), within a hang guard."""
    graph = {"nodes": [node("in", "trigger.api", fields=[{"name": "text"}]), bomb],
             "edges": [edge("in", "text", "bomb", port)]}
    analysis = analyze(Graph.model_validate(graph), default_registry())
    assert analysis.valid, [p.message for p in analysis.problems]
    executor = Executor(analysis)
    state = new_state()
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            list(executor.drive(state))
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), f"still running {bomb} after 120 s"
    if errors:
        raise errors[0]
    found = state.node("bomb")
    return found.status.value, found.error or ""


def template_node(block_type: str, template: str) -> dict[str, Any]:
    """A node of a block that renders `template` (reading `text`, so it has an input port)."""
    source = "{% set _ = text %}" + template
    if block_type == "http.request":
        return node("bomb", "http.request", url="https://example.com/hook", method="POST",
                    body_type="json", body={"value": source})
    return node("bomb", block_type, template=source)


@pytest.mark.parametrize("block_type", ["text.template", "llm.prompt", "http.request"])
@pytest.mark.parametrize(("name", "template", "says"), TEMPLATE_BOMBS, ids=[b[0] for b in TEMPLATE_BOMBS])
def test_template_bombs_fail_their_node_naming_the_limit(block_type: str, name: str, template: str,
                                                         says: str) -> None:
    status, error = run_node_of(template_node(block_type, template))
    assert status == "failed", (status, error[:300])
    assert "template failed" in error and says in error, error[:300]


@pytest.mark.parametrize(("name", "expression", "says"), JMESPATH_BOMBS, ids=[b[0] for b in JMESPATH_BOMBS])
def test_jmespath_bombs_fail_their_node_naming_the_limit(name: str, expression: str, says: str) -> None:
    bomb = node("bomb", "json.extract", fields=[{"name": "v", "expression": expression}])
    status, error = run_node_of(bomb, "data")
    assert status == "failed", (status, error[:300])
    assert says in error, error[:300]


@pytest.mark.parametrize("source", ["{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
                                    "{{ " + "[" * 300 + "]" * 300 + " }}",
                                    "{% if 1 %}" * 150 + "{% endif %}" * 150])
def test_templates_nested_too_deeply_are_a_validation_problem(source: str) -> None:
    graph = {"nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                       node("t", "text.template", template=source)], "edges": []}
    analysis = analyze(Graph.model_validate(graph), default_registry())
    assert [p.message for p in analysis.problems if "nested too deeply" in p.message], analysis.problems


def test_a_big_input_passed_to_a_filter_in_a_loop_is_measured_once() -> None:
    # 4,500 items, one list: measured again at each use, about 1,270,000 steps (16 items a step),
    # five times the work budget's 250,000.
    template = ("{% set rows = text.split(',') * 1500 %}"
                "{% for r in rows %}{{ loop.index }}/{{ rows|length }} {% endfor %}")
    status, error = run_node_of(node("bomb", "text.template", template=template))
    assert (status, error) == ("succeeded", "")


def test_ordinary_templates_and_expressions_still_work() -> None:
    template = ("{% set ns = namespace(items=[]) %}{% for w in text.split(' ') %}"
                "{% set ns.items = ns.items + [w|upper] %}{% endfor %}{{ ns.items|join(', ') }} "
                "{{ {'a': [1, 2]}|tojson }} {% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}"
                "{{ twice('ok') }}")
    status, error = run_node_of(node("bomb", "text.template", template=template))
    assert (status, error) == ("succeeded", "")
    extract = node("bomb", "json.extract", fields=[{"name": "v", "expression": "[@, @]|[]|length(@)"}])
    assert run_node_of(extract, "data") == ("succeeded", "")


# -- the executor's time limits --------------------------------------------------------------


def pure_block(name: str, *, bounded: bool, run: Any) -> type[AnyBlock]:
    """A pure throwaway block, charging the work budget (`bounded`) or not."""
    base = make_block(name, inputs={"text": str}, outputs={"text": str}, run=run)
    return type(base.__name__, (base,), {"pure": True, "bounded": bounded})


def single(block_type: type[AnyBlock], **executor: Any) -> tuple[Executor, RunState]:
    """An executor of trigger → one node of `block_type`, and a run whose node is claimed."""
    graph = {"nodes": [node("in", "trigger.api", fields=[{"name": "text"}]), node("bomb", block_type.type)],
             "edges": [edge("in", "text", "bomb", "text")]}
    analysis = analyze(Graph.model_validate(graph), default_registry().extended(block_type))
    assert analysis.valid, analysis.problems
    ex = Executor(analysis, **executor)
    state = new_state()
    ex.plan(state)  # claims the trigger
    ex.apply(state, ex.run_node(state, "in"))
    ex.plan(state)  # claims the node
    assert state.node("bomb").status is NodeStatus.running
    return ex, state


def spins(inputs: Mapping[str, Any], ctx: BlockContext) -> Mapping[str, Any]:
    pause = threading.Event()
    while True:  # a bounded block's endless, slow work: every step is charged
        charge()
        pause.wait(0.001)


def test_a_pure_node_out_of_its_slice_is_handed_back_then_fails_at_its_own_limit() -> None:
    spinner = pure_block("test.spin", bounded=True, run=spins)
    ex, state = single(spinner, pure_timeout_s=0.5)
    with pytest.raises(SliceSpent):  # the driver gave it 0.05 s in place: run it again elsewhere
        ex.run_node(state, "bomb", within_s=0.05)
    outcome = ex.run_node(state, "bomb")
    assert isinstance(outcome, NodeFailed) and outcome.error_type == "timeout", outcome
    assert "0.5 s timeout" in outcome.error


def test_a_pure_block_that_does_not_charge_the_budget_is_given_up_on() -> None:
    release = threading.Event()

    def hangs(inputs: Mapping[str, Any], ctx: BlockContext) -> Mapping[str, Any]:
        release.wait(60)
        return {"text": "late"}

    ex, state = single(pure_block("test.hang", bounded=False, run=hangs), pure_timeout_s=0.2)
    try:
        with pytest.raises(SliceSpent):
            ex.run_node(state, "bomb", within_s=0.05)
        outcome = ex.run_node(state, "bomb")
    finally:
        release.set()
    assert isinstance(outcome, NodeFailed) and "0.2 s timeout" in outcome.error, outcome


def test_a_quick_pure_node_finishes_within_its_slice() -> None:
    ex, state = single(pure_block("test.echo", bounded=True, run=lambda i, c: {"text": i.text}))
    outcome = ex.run_node(state, "bomb", within_s=5)
    assert isinstance(outcome, NodeSucceeded) and outcome.outputs == {"text": TEXT}


def test_outputs_that_share_their_parts_fail_without_being_serialised() -> None:
    value: Any = [1]
    for _ in range(80):  # 2**80 leaves once printed
        value = [value, value]
    engine = RunEngine(sessionmaker(), default_registry(), Settings(secret_key="x"), lambda *_: None)
    outcome = engine._bounded(NodeSucceeded(new_state().created_at, "bomb", outputs={"v": value}))
    assert isinstance(outcome, NodeFailed) and outcome.error_type == "too_large", outcome
    assert "more than" in outcome.error


def test_measure_counts_shared_parts_as_printed_and_survives_cycles() -> None:
    shared = ["abc"]
    assert measure([shared, shared]) == 2 * measure(shared) + 6
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert measure(cyclic) < 20
