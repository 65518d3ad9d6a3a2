"""A builder's bomb fails its own node on the real stacks while other organizations keep working.

A recursive macro or a doubling JMESPath expression used to run inside the step's transaction
with no limit: on SQLite that step held the database's write lock, and another organization's
`POST /v1/apps` answered 503. Here the bombs run on a real worker while another organization
creates and lists apps; every one of its requests must answer 2xx, and each bomb's run must
fail on the bomb's node, saying which limit it hit.
"""

from __future__ import annotations

from typing import Any

from tests.engine.conftest import ENDED, Stack, wait_until
from tests.factories import edge, greeter_graph, node

BOMBS = {
    "macro": node("bomb", "text.template", template=(
        "{{ text }}{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}")),
    "tilde": node("bomb", "text.template", template=(
        "{% set ns = namespace(v=text) %}{% for i in range(64) %}{% set ns.v = ns.v ~ ns.v %}{% endfor %}"
        "{{ ns.v }}")),
    "jmespath": node("bomb", "json.extract", fields=[
        {"name": "text", "expression": "|".join(["[@,@]|[]"] * 40)}]),
}


def bomb_app(bomb: dict[str, Any]) -> dict[str, Any]:
    """trigger(text) → the bomb → output."""
    port = "data" if bomb["type"] == "json.extract" else "text"
    return {"nodes": [node("in", "trigger.api", fields=[{"name": "text"}]), bomb,
                      node("out", "output", fields=[{"name": "text", "type": "any"}])],
            "edges": [edge("in", "text", "bomb", port), edge("bomb", "text", "out", "text")]}


def test_bombs_fail_their_node_while_another_organization_keeps_answering(stack: Stack) -> None:
    runs = {name: stack.run(stack.publish(bomb_app(bomb), name=f"bomb-{name}"), {"text": "[1, 2]"})["id"]
            for name, bomb in BOMBS.items()}
    other = {"Authorization": f"Bearer {stack.new_org_key()}"}
    answers: list[tuple[str, int]] = []

    def the_other_organization_works_until_the_bombs_end() -> bool:
        created = stack.client.post("/v1/apps", headers=other,
                                    json={"name": f"other-{len(answers)}", "graph": greeter_graph()})
        answers.append(("POST /v1/apps", created.status_code))
        listed = stack.client.get("/v1/apps", headers=other)
        answers.append(("GET /v1/apps", listed.status_code))
        return all(stack.get_run(run_id)["status"] in ENDED for run_id in runs.values())

    wait_until(the_other_organization_works_until_the_bombs_end, timeout=120, what="the bombs' runs to end")

    refused = [(route, status) for route, status in answers if not 200 <= status < 300]
    assert answers and not refused, refused
    assert stack.client.get("/v1/apps", headers=other).json()["total"] == len(answers) // 2
    for name, run_id in runs.items():
        run = stack.get_run(run_id)
        assert run["status"] == "failed", (name, run)
        assert run["error"]["node_id"] == "bomb", (name, run["error"])
        message = run["error"]["message"]
        assert "more than" in message or "longer than" in message or "timeout" in message, (name, message)
