"""Helpers for SMS tests: the example graph, a Twilio account, and signed webhook requests."""

from __future__ import annotations

import secrets
from typing import Any

from twilio.request_validator import RequestValidator

from tests.factories import edge, node

ACCOUNT_SID = "AC" + "ab12" * 8
AUTH_TOKEN = "c0ffee00" * 4
NUMBER = "+15550001111"
PHONE = "+15557654321"
PUBLIC = "http://127.0.0.1:8000"  # the settings' default public base URL


def sms_graph(template: str = "You said: {{ body }}", wires: tuple[str, ...] = ("body",),
              **output_config: Any) -> dict[str, Any]:
    """twilio.sms_input → text.template (reading `wires`) → twilio.sms_output (replying to the sender)."""
    return {
        "nodes": [node("sms", "twilio.sms_input", help_text="Text anything; STOP to stop."),
                  node("say", "text.template", template=template),
                  node("reply", "twilio.sms_output", **output_config)],
        "edges": [*(edge("sms", port, "say", port) for port in wires), edge("say", "text", "reply", "body"),
                  edge("sms", "from_number", "reply", "to")],
    }


def history_graph() -> dict[str, Any]:
    """An SMS app whose reply counts the earlier messages it was given."""
    return sms_graph("#{{ history | length }}: {{ body }}", wires=("body", "history"))


def store_twilio(client: Any, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> dict[str, Any]:
    """Store the organization's Twilio credentials through the API."""
    data = {"account_sid": account_sid, "auth_token": auth_token}
    answer = client.post("/v1/credentials", json={"type": "twilio", "data": data})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def sms_app(client: Any, number: str = NUMBER, graph: dict[str, Any] | None = None,
            name: str = "SMS") -> tuple[str, dict[str, Any]]:
    """Create and publish an SMS app, route `number` to it; returns (app id, route)."""
    created = client.post("/v1/apps", json={"name": name, "graph": graph or sms_graph()})
    assert created.status_code == 201, created.text
    app_id: str = created.json()["id"]
    published = client.post(f"/v1/apps/{app_id}/publish")
    assert published.status_code == 201, published.text
    routed = client.post(f"/v1/apps/{app_id}/phone-numbers", json={"number": number})
    assert routed.status_code == 201, routed.text
    route: dict[str, Any] = routed.json()
    return app_id, route


def message_sid() -> str:
    """A fresh Twilio-shaped message SID."""
    return "SM" + secrets.token_hex(16)


def inbound_form(body: str, *, to: str = NUMBER, from_: str = PHONE, sid: str | None = None,
                 **extra: str) -> dict[str, str]:
    """The form fields Twilio posts for an inbound SMS."""
    sid = sid or message_sid()
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": from_, "To": to,
            "Body": body, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
            "ApiVersion": "2010-04-01", **extra}


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """Twilio's signature of a request to `url` with these form fields."""
    return str(RequestValidator(token).compute_signature(url, form))


def post_signed(client: Any, path: str, form: dict[str, str], *, base: str = PUBLIC,
                token: str = AUTH_TOKEN, signature: str | None = None, headers: dict[str, str] | None = None
                ) -> Any:
    """POST `form` to `path` signed for the public URL `base + path` (or with `signature`)."""
    signature = signature if signature is not None else sign(base + path, form, token)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature, **(headers or {})})
