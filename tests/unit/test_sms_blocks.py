"""SMS pieces that need no service: the blocks, keywords, the signed URL, secrets, TwiML parsing."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from api.sms_inbound import keyword
from api.twilio_auth import public_url
from blocks.base import BlockContext
from blocks.registry import default_registry
from blocks.twilio_sms_input import SmsInputBlock
from blocks.twilio_sms_output import SmsOutputBlock, SmsOutputInputs, fit
from core.crypto import SecretUnreadable, cipher_for, decrypt, encrypt, rotate
from core.errors import MantleError
from core.settings import Settings
from twilio_sim.app import replies_of


def test_a_short_body_is_one_part() -> None:
    assert fit("hello", 160, "split", 3) == (["hello"], False)


def test_a_long_body_splits_at_words_and_the_last_part_is_cut() -> None:
    body = " ".join(f"word{i}" for i in range(100))  # 589 characters
    parts, cut = fit(body, 160, "split", 3)
    assert len(parts) == 3 and cut is True
    assert all(len(p) <= 160 for p in parts) and parts[2].endswith("…")
    assert parts[0].startswith("word0 word1") and not parts[0].endswith(" ")
    whole, cut = fit(body, 160, "split", 10)
    assert cut is False and " ".join(whole) == body


def test_truncate_keeps_one_part() -> None:
    parts, cut = fit("x" * 500, 100, "truncate", 3)
    assert cut and len(parts) == 1 and len(parts[0]) == 100 and parts[0].endswith("…")


def test_both_blocks_are_registered_with_their_ports() -> None:
    registry = default_registry()
    described = registry.get("twilio.sms_input").describe()
    assert described["trigger"] and {p["name"] for p in described["outputs"]} == {
        "body", "from_number", "to_number", "message_sid", "media_urls", "history"}
    output = registry.get("twilio.sms_output").describe()
    assert output["side_effects"] is True
    assert {p["name"] for p in output["inputs"] if p["required"]} == {"to", "body"}
    assert SmsOutputBlock.pure is False


def test_the_sms_trigger_checks_what_a_run_is_started_with() -> None:
    block = SmsInputBlock.from_config({})
    accepted = block.accept({"body": "hi", "from_number": "+15551234567"})
    assert accepted["history"] == [] and accepted["media_urls"] == []
    with pytest.raises(ValidationError) as caught:
        block.accept({"body": "hi", "history": [{"direction": "sideways", "body": "", "at": ""}]})
    assert {e["loc"][0] for e in caught.value.errors()} == {"from_number", "history"}


def test_the_output_block_needs_the_workers_sms_service() -> None:
    ctx = BlockContext(run_id=uuid.uuid4(), node_id="reply", org_id=uuid.uuid4(), app_id=uuid.uuid4())
    block = SmsOutputBlock.from_config({})
    with pytest.raises(MantleError, match="no SMS service"):
        block.run(SmsOutputInputs(to="+15551234567", body="hi"), ctx)
    with pytest.raises(MantleError, match="empty"):
        block.run(SmsOutputInputs(to="+15551234567", body="  "), BlockContext(
            run_id=ctx.run_id, node_id="reply", org_id=ctx.org_id, app_id=ctx.app_id,
            services={"sms": object()}))


@pytest.mark.parametrize(("body", "kind"), [
    ("STOP", "stop"), (" unsubscribe ", "stop"), ("Stop.", "stop"), ("start", "start"), ("HELP", "help"),
    ("stop it please", "message"), ("", "message")])
def test_keywords(body: str, kind: str) -> None:
    assert keyword(body) == kind


def _request(headers: dict[str, str], query: str = "") -> Request:
    return Request({"type": "http", "method": "POST", "path": "/twilio/sms/abc",
                    "query_string": query.encode(),
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                    "server": ("10.0.0.5", 8000), "scheme": "http", "root_path": ""})


def test_the_signed_url_is_the_public_one() -> None:
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sms.example.com"}
    plain = Settings(public_base_url="https://api.example.com/mantle/")
    assert public_url(_request(proxy, "a=1"), plain) == "https://api.example.com/mantle/twilio/sms/abc?a=1"
    trusting = plain.model_copy(update={"trust_proxy": True})
    assert public_url(_request(proxy), trusting) == "https://sms.example.com/mantle/twilio/sms/abc"


def test_secrets_survive_a_key_rotation() -> None:
    old = cipher_for(Settings(secret_key="old-key"))
    token = encrypt(old, "s3cret")
    both = cipher_for(Settings(secret_key="new-key", secret_key_fallbacks=["old-key"]))
    new_only = cipher_for(Settings(secret_key="new-key"))
    with pytest.raises(SecretUnreadable):
        decrypt(new_only, token)
    assert decrypt(new_only, rotate(both, token)) == "s3cret"


def test_the_simulator_reads_twiml_replies() -> None:
    assert replies_of('<?xml version="1.0"?><Response><Message>a</Message><Message><Body>b</Body>'
                      "</Message></Response>") == ["a", "b"]
    assert replies_of("<Response />") == [] and replies_of("not xml") == []
