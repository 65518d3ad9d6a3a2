"""What an inbound webhook post goes through before its run starts, each step a clear 4xx.

1. The body is read up to the run-input limit (413).
2. The token names an endpoint (404 otherwise, the same for a deleted one), whose app has a
   published version (409) that starts with `trigger.webhook` (409).
3. When the trigger asks for it, the body's signature is checked before anything parses it
   (403): its form, its timestamp (within
   `MANTLE_WEBHOOK_SIGNATURE_WINDOW_S` of now, either way) and its HMAC with the stored secret.
   The route then claims the signature in the run's own transaction: one already used is a
   replay, refused (403) unless it carries the `Idempotency-Key` of the run it started.
4. It is parsed as JSON or as a urlencoded form by its Content-Type (415, or 422 for bad JSON).

Steps 2 to 4 and the run's creation share one transaction (`api/routes/webhooks.py`). On
PostgreSQL, a post to an unsigned URL this process opened before skips the look-up of step 2: its
run is recorded with a check that the URL and the app's latest version are still the ones found
then, in the one round trip that commits it (`start_on_known_target`). If either changed, nothing
is written and the post goes through every step as above.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import Request
from sqlalchemy.orm import Session

from api.routes.twilio import UnsupportedMediaType
from blocks.trigger_webhook import (
    SIGNATURE_FORMAT,
    SIGNATURE_HEADER,
    Signature,
    WebhookConfig,
    WebhookTriggerBlock,
    parse_signature,
    signature_matches,
)
from core.crypto import cipher_for
from core.errors import Conflict, Forbidden, InvalidInputs, MantleError, NotFound, TooLarge
from core.guesses import Guesses
from core.settings import Settings
from models import credentials
from models.apps import VersionRef, version_graph
from models.runs import Run
from models.webhooks import check_still_open, open_token
from worker.submit import Submitter

log = structlog.get_logger("mantle.webhooks")

SIGNATURE_LOC: list[str | int] = ["header", SIGNATURE_HEADER]


@dataclass(frozen=True)
class Target:
    """The endpoint's app and version, the trigger's config and (if it signs) the secret."""

    endpoint_id: uuid.UUID
    org_id: uuid.UUID
    app_id: uuid.UUID
    version: VersionRef
    config: WebhookConfig
    secret: str | None


def find_target(session: Session, *, token: str, settings: Settings, submitter: Submitter) -> Target:
    """The app a token starts and how its trigger is configured, or the 4xx that says why not."""
    # The endpoint and the version (by id and number only: its graph is read once per process, on
    # the analysis's miss) in one query.
    endpoint = open_token(session, token=token)
    if endpoint is None:
        raise NotFound("no webhook at this URL", loc=["path", "token"])
    version = endpoint.version
    if version is None:
        raise Conflict("the app has no published version: publish it to receive webhooks", loc=["app"])
    submitter.latest.put((endpoint.org_id, endpoint.app_id), version)  # for `start_on_known_target`
    analysis = submitter.analyses.get(version.id, lambda: version_graph(session, version_id=version.id) or {})
    block = analysis.blocks.get(analysis.trigger or "")
    if not isinstance(block, WebhookTriggerBlock):
        raise Conflict("the app's published version does not start with trigger.webhook", loc=["app"])
    secret = None
    name = block.config.signature_credential
    if name is not None:
        stored = credentials.load(session, org_id=endpoint.org_id, type_="webhook_secret", name=name,
                                  cipher=cipher_for(settings))
        if stored is None:  # refuse rather than accept unsigned posts the app's author meant to refuse
            log.warning("webhook_secret_missing", app_id=str(endpoint.app_id), credential=name)
            raise Forbidden(f"the webhook's signing secret ({name!r}) is not stored; nothing is accepted "
                            "until it is", loc=SIGNATURE_LOC)
        secret = str(stored["secret"])
    return Target(endpoint.endpoint_id, endpoint.org_id, endpoint.app_id, version, block.config, secret)


class OpenedTargets(Guesses[str, Target]):
    """The targets of the unsigned webhook URLs this process opened, by their token's digest, as
    it found them: guesses that `start_on_known_target` checks as it records a run."""


def post_inputs(request: Request, target: Target, body: bytes) -> dict[str, Any]:
    """The run's inputs from a post: its parsed body (415, 422), its query and the headers the
    trigger passes on."""
    passed = {name: request.headers[name] for name in target.config.headers if name in request.headers}
    return {"body": parse_body(request.headers.get("content-type", ""), body),
            "query": dict(request.query_params), "headers": passed}


def start_on_known_target(session: Session, request: Request, target: Target, token_digest: str,
                          body: bytes, submitter: Submitter) -> Run | None:
    """The post's run, started on a target this process opened before (`OpenedTargets`), recorded
    and committed in one round trip with checks that the URL still takes this token and that the
    target's version is still the app's latest (`Submitter.start_on_known_version`); None when it
    cannot be (a check failed, the version is not known here, the body or its inputs are refused):
    nothing was written, and the caller goes through every step, which says why in its order."""
    if target.secret is not None:
        return None
    try:
        inputs = post_inputs(request, target, body)
    except MantleError:
        return None
    wait_s = target.config.wait_s if target.config.respond == "output" else 0

    def still_open(session: Session) -> None:
        check_still_open(session, endpoint_id=target.endpoint_id, token_digest=token_digest)

    return submitter.start_on_known_version(session, org_id=target.org_id, app_id=target.app_id,
                                            inputs=inputs, trigger="webhook", version_id=target.version.id,
                                            wait_s=wait_s, end_here=True, check=still_open)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is larger than {limit} bytes", loc=["body"])
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the body is larger than {limit} bytes", loc=["body"])
    return bytes(body)


def check_signature(target: Target, body: bytes, header: str | None, *, now: float,
                    window_s: float) -> Signature | None:
    """The post's signature once checked (None when the trigger wants none); Forbidden (logged)
    when it is missing, malformed, out of its time window or does not match the body."""
    if target.secret is None:
        return None
    if not header:
        log.warning("webhook_signature_missing", app_id=str(target.app_id))
        raise Forbidden(f"missing {SIGNATURE_HEADER} header ({SIGNATURE_FORMAT})", loc=SIGNATURE_LOC)
    signature = parse_signature(header)
    if signature is None:
        log.warning("webhook_signature_malformed", app_id=str(target.app_id))
        raise Forbidden(f"{SIGNATURE_HEADER} must be {SIGNATURE_FORMAT}", loc=SIGNATURE_LOC)
    age = now - signature.timestamp
    if abs(age) > window_s:
        log.warning("webhook_signature_stale", app_id=str(target.app_id), age_s=round(age))
        when = f"{round(age)} s old" if age > 0 else f"{round(-age)} s in the future"
        raise Forbidden(f"{SIGNATURE_HEADER} was signed at t={signature.timestamp}, {when}: posts are "
                        f"accepted within {window_s:g} s of signing: sign each post as you send it",
                        loc=SIGNATURE_LOC)
    if not signature_matches(target.secret, body, signature):
        log.warning("webhook_signature_invalid", app_id=str(target.app_id))
        raise Forbidden(f"{SIGNATURE_HEADER} does not match the body and its t=", loc=SIGNATURE_LOC)
    return signature


def parse_body(content_type: str, body: bytes) -> Any:
    """The body as JSON or form fields (an empty body is null)."""
    if not body.strip():
        return None
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(body.decode("utf-8"))  # bytes would also be guessed as UTF-16 or -32
        except UnicodeDecodeError:
            problem = "the body is not UTF-8"
        except ValueError as exc:
            problem = str(exc)
        raise InvalidInputs([{"loc": ["body"], "msg": f"JSON decode error: {problem}",
                              "type": "json_invalid"}])
    if media == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=1000)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidInputs([{"loc": ["body"], "msg": f"form decode error: {exc}",
                                  "type": "form_invalid"}]) from None
        fields: dict[str, Any] = {}
        for key, value in pairs:  # a repeated field becomes a list
            fields[key] = [*fields[key], value] if isinstance(fields.get(key), list) else \
                [fields[key], value] if key in fields else value
        return fields
    raise UnsupportedMediaType("send application/json or application/x-www-form-urlencoded",
                               loc=["header", "Content-Type"])
