"""`json.extract` and the two new triggers, driven on their own and through graph validation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from blocks.base import BlockContext, Port, port_values
from blocks.json_extract import ExtractError, JsonExtractBlock
from blocks.registry import default_registry
from blocks.trigger_schedule import ScheduleConfig, ScheduleTriggerBlock, last_tick, next_tick
from blocks.trigger_webhook import WebhookTriggerBlock, parse_signature, sign, signature_matches
from builder.problems import Code
from builder.validation import validate

DOC = {"current": {"temperature_2m": 21.5, "wind": None}, "items": [{"id": 1, "tags": ["a"]}, {"id": 2}]}


def ctx() -> BlockContext:
    return BlockContext(run_id=uuid.uuid4(), node_id="n", org_id=uuid.uuid4(), app_id=uuid.uuid4())


def extract(fields: list[dict[str, Any]], data: Any) -> dict[str, Any]:
    block = JsonExtractBlock.from_config({"fields": fields})
    return port_values(block.run(block.typed_inputs({"data": data}), ctx()))


def test_each_expression_fills_its_own_typed_output_port() -> None:
    fields = [{"name": "temp", "expression": "current.temperature_2m", "type": "number"},
              {"name": "ids", "expression": "items[*].id", "type": "array"},
              {"name": "wind", "expression": "current.wind"}]
    block = JsonExtractBlock.from_config({"fields": fields})
    assert block.output_ports()["temp"] == Port("temp", "number", False, "current.temperature_2m")
    assert extract(fields, DOC) == {"temp": 21.5, "ids": [1, 2], "wind": None}
    assert extract(fields[:1], '{"current": {"temperature_2m": 3}}') == {"temp": 3}  # JSON text is parsed


def test_a_missing_required_value_or_a_wrong_type_fails_the_node_naming_the_field() -> None:
    with pytest.raises(ExtractError, match="wind: 'current.wind' found nothing"):
        extract([{"name": "wind", "expression": "current.wind", "required": True}], DOC)
    with pytest.raises(ExtractError, match="temp: 'current.temperature_2m' found float 21.5, not string"):
        extract([{"name": "temp", "expression": "current.temperature_2m", "type": "string"}], DOC)
    with pytest.raises(ExtractError, match="`data` is text that is not JSON"):
        extract([{"name": "x", "expression": "a"}], "not json")
    with pytest.raises(ExtractError, match="failed"):
        extract([{"name": "x", "expression": "length(current.temperature_2m)"}], DOC)


def test_a_bad_expression_is_a_problem_of_the_graph_before_anything_runs() -> None:
    trigger = {"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "doc", "type": "object"}]}}
    graph: dict[str, Any] = {"nodes": [trigger,
                       {"id": "pick", "type": "json.extract",
                        "config": {"fields": [{"name": "a", "expression": "items[0"},
                                              {"name": "a", "expression": "x"}]}}],
             "edges": [{"source": "in", "source_port": "doc", "target": "pick", "target_port": "data"}]}
    problems = validate(graph, default_registry())
    assert {p.code for p in problems} == {Code.invalid_config}
    assert "invalid JMESPath expression 'items[0'" in problems[0].message
    graph["nodes"][1]["config"]["fields"] = [{"name": "a", "expression": "items[0]"}]
    assert validate(graph, default_registry()) == []


def test_a_schedule_is_validated_and_ticks_in_its_time_zone() -> None:
    for config, message in [({"cron": "61 * * * *"}, "cron expression"), ({"cron": "* * *"}, "five fields"),
                            ({"timezone": "Mars/Olympus"}, "unknown time zone"),
                            ({"cron": "@reboot"}, "unknown shorthand")]:
        with pytest.raises(ValidationError, match=message):
            ScheduleTriggerBlock.from_config(config)
    paris = ScheduleTriggerBlock(ScheduleConfig(cron="0 9 * * 1-5", timezone="Europe/Paris"))
    winter, summer = datetime(2026, 1, 5, 6, tzinfo=UTC), datetime(2026, 7, 6, 6, tzinfo=UTC)  # Mondays
    assert paris.next_tick(winter) == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert paris.next_tick(summer) == datetime(2026, 7, 6, 7, tzinfo=UTC)
    assert last_tick("*/5 * * * *", "UTC", datetime(2026, 1, 1, 10, 7, 30, tzinfo=UTC)) == \
        datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert next_tick("@hourly", "UTC", datetime(2026, 1, 1, 10, 0, tzinfo=UTC)) == \
        datetime(2026, 1, 1, 11, tzinfo=UTC)
    out = paris.run(paris.typed_inputs(paris.accept({"scheduled_at": "2026-07-06T07:00:00+00:00"})), ctx())
    assert port_values(out) == {"scheduled_at": "2026-07-06T09:00:00+02:00", "timezone": "Europe/Paris"}
    by_hand = datetime.fromisoformat(paris.accept({})["scheduled_at"])  # "run now" from the builder
    assert abs((by_hand - datetime.now(UTC)).total_seconds()) < 60


def test_a_webhook_trigger_passes_on_only_the_headers_it_names_and_checks_signatures() -> None:
    block = WebhookTriggerBlock.from_config({"headers": ["X-Event"]})
    accepted = block.accept({"body": {"a": 1}, "headers": {"x-event": "push", "cookie": "secret"}})
    assert accepted == {"body": {"a": 1}, "query": {}, "headers": {"x-event": "push"}}
    with pytest.raises(ValidationError):
        block.accept({"text": "not a webhook payload"})
    header = sign("s3cret-s3cret-s3cret", b'{"a":1}', timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    signature = parse_signature(header)
    assert signature is not None and signature.timestamp == 1_700_000_000
    assert signature_matches("s3cret-s3cret-s3cret", b'{"a":1}', signature)
    assert not signature_matches("s3cret-s3cret-s3cret", b'{"a":2}', signature)
    # The timestamp is signed with the body: changing it breaks the signature.
    moved = parse_signature(header.replace("t=1700000000", "t=1700000999"))
    assert moved is not None and not signature_matches("s3cret-s3cret-s3cret", b'{"a":1}', moved)
    for malformed in (None, "", "sha256=" + "0" * 64, "t=1,v1=xyz", "v1=" + "0" * 64, "t=é,v1=" + "0" * 64):
        assert parse_signature(malformed) is None
