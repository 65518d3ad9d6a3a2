"""`human.review` in the pure executor: it suspends, and a decision routes the run down one branch."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError

from blocks.human_review import HumanReviewBlock
from blocks.registry import default_registry
from builder.executor import Executor, RunState
from builder.graph import Graph
from builder.validation import analyze
from core.statuses import NodeStatus, RunStatus
from tests.reviews import review_graph


def start(**review: Any) -> tuple[Executor, RunState]:
    """The review app run in memory until it waits for the reviewer."""
    analysis = analyze(Graph.model_validate(review_graph(**review)), default_registry())
    assert analysis.valid, [p.message for p in analysis.problems]
    executor = Executor(analysis)
    state = RunState(run_id=uuid.uuid4(), org_id=uuid.uuid4(), app_id=uuid.uuid4(),
                     inputs={"message": "hi"}, created_at=datetime.now(UTC))
    list(executor.drive(state))
    return executor, state


def decide(executor: Executor, state: RunState, result: dict[str, Any]) -> None:
    """Record the decision as the queue would, and drive the run on."""
    state.node("review").result = result
    list(executor.drive(state))


def test_the_node_waits_with_everything_the_reviewer_needs() -> None:
    _, state = start(instructions="Check tone", assignee_group="support", deadline_s=60,
                     default_action="reject")
    assert state.status is RunStatus.waiting
    review = state.node("review")
    assert review.status is NodeStatus.waiting
    assert review.waiting_for == {"kind": "review", "payload": {
        "instructions": "Check tone", "actions": ["approve", "edit", "reject"], "assignee_group": "support",
        "deadline_s": 60.0, "default_action": "reject", "text": "Reply to: hi", "context": "hi"}}


def test_an_edit_goes_out_on_the_approved_branch() -> None:
    executor, state = start()
    decide(executor, state, {"decision": "edit", "text": "Hello!", "reviewer": "rita", "note": "warmer"})
    assert state.status is RunStatus.succeeded
    assert state.outputs == {"text": "Hello!"}
    assert state.node("review").outputs == {"text": "Hello!", "decision": "edit", "reviewer": "rita",
                                            "note": "warmer", "approved": "Hello!"}
    assert state.node("refusal").status is NodeStatus.skipped


def test_a_plain_approval_keeps_the_original_text() -> None:
    executor, state = start()
    decide(executor, state, {"decision": "approve", "text": "ignored", "reviewer": "rita", "note": ""})
    assert state.outputs == {"text": "Reply to: hi"}


def test_a_rejection_routes_to_the_refusal_with_the_note() -> None:
    executor, state = start()
    decide(executor, state, {"decision": "reject", "reviewer": "rita", "note": "Off topic."})
    assert state.status is RunStatus.succeeded
    assert state.outputs == {"refusal": "Sorry, we cannot answer that. Off topic."}
    assert state.node("out").status is NodeStatus.skipped


def test_a_failed_deadline_fails_the_run() -> None:
    executor, state = start()
    decide(executor, state, {"error": "nobody reviewed it within 60 s"})
    assert state.status is RunStatus.failed
    assert "nobody reviewed it" in (state.error or {}).get("message", "")


def test_an_unknown_decision_fails_the_node_instead_of_guessing() -> None:
    executor, state = start()
    decide(executor, state, {"decision": "maybe"})
    assert state.node("review").status is NodeStatus.failed
    assert "unknown review decision" in (state.node("review").error or "")


@pytest.mark.parametrize("config", [
    {"actions": []}, {"actions": ["approve", "approve"]}, {"actions": ["publish"]},
    {"default_action": "edit"}, {"deadline_s": 0}, {"assignee_group": "has spaces"},
])
def test_bad_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        HumanReviewBlock.from_config(config)


def test_the_review_before_reply_example_is_valid() -> None:
    doc = json.loads((resources.files("cli") / "examples" / "review_before_reply.json").read_text())
    analysis = analyze(Graph.model_validate(doc["draft"]), default_registry())
    assert analysis.valid, [p.message for p in analysis.problems]
    assert "human.review" in {n["type"] for n in doc["draft"]["nodes"]}
