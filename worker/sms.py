"""The worker's SMS service (`ctx.services["sms"]`): delivers `twilio.sms_output` messages once.

Each send is two steps around the REST call:

1. *Claim*, in one transaction: if the node's idempotency key already has parts recorded, a
   retried node reuses them. Otherwise the reply is withheld for an opted-out phone; answered
   inline when the run's inbound webhook is still waiting (the inbound row is locked, so the
   webhook's closing update and this claim cannot both win); else recorded as `claimed` parts.
2. *Send* each claimed part with the Twilio SDK (a status callback URL names the part's row)
   and record its SID. A part found `claimed` by a retry may have reached Twilio before a
   crash: it is looked up in Twilio's message list first and sent only if it is not there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

# `Client.api` imports this on first use: about 95 modules, which cost a worker process's first REST
# send about 0.2 s of CPU (and showed in the load benchmark's measured phase). Paid as it starts.
from twilio.rest.api import Api  # noqa: F401

from blocks.twilio_sms_output import OutgoingSms
from core.crypto import cipher_for
from core.errors import MantleError
from core.settings import Settings
from core.twilio_http import PooledHttpClient
from models import credentials
from models.db import session_factory, session_scope
from models.sms import SmsOutbound, app_number
from models.sms_messages import add_outbound, advance_status, claim_state
from worker.hooks import service
from worker.observability import SMS_FAILED, SMS_SENT

log = structlog.get_logger("mantle.sms")


@dataclass
class Claim:
    """What the claim step decided: a finished result, or parts to send with these credentials."""

    result: dict[str, Any] | None = None
    rows: list[SmsOutbound] = field(default_factory=list)
    retried: bool = False
    account_sid: str = ""
    auth_token: str = ""


class TwilioSender:
    """Sends through Twilio's REST API at `settings.twilio_api_base_url`."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.cipher = cipher_for(settings)

    def send(self, message: OutgoingSms) -> dict[str, Any]:
        """Deliver the message's parts once per idempotency key."""
        claim = self._claim(message)
        if claim.result is not None:
            return claim.result
        client = self.client(claim.account_sid, claim.auth_token)
        sids, status = [], "queued"
        for row in claim.rows:
            sid, status = self._deliver(client, row, claim.retried)
            sids.append(sid)
        return {"delivery": "rest", "status": status, "message_sids": sids}

    def _claim(self, message: OutgoingSms) -> Claim:
        with session_scope(self.sessions) as session:
            rows, inbound, opted_out = claim_state(session, key=message.idempotency_key,
                                                   run_id=message.run_id, org_id=message.org_id,
                                                   phone=message.to)
            if rows and rows[0].via != "rest":
                return Claim(result={"delivery": "inline" if rows[0].via == "inline" else rows[0].status,
                                     "status": rows[0].status, "message_sids": []})
            if not rows:
                sender = message.from_number or (inbound.to_number if inbound is not None else None) \
                    or app_number(session, org_id=message.org_id, app_id=message.app_id)
                if sender is None:
                    raise MantleError("no sender number: wire `from_number`, set it in the config, or route "
                                      "a phone number to the app")
                common: dict[str, Any] = {
                    "org_id": message.org_id, "app_id": message.app_id, "run_id": message.run_id,
                    "node_id": message.node_id, "key": message.idempotency_key, "to": message.to,
                    "from_": sender, "parts": list(message.parts)}
                if opted_out:
                    add_outbound(session, **common, inbound_id=None, via="none", status="opted_out")
                    log.info("sms_withheld_opted_out", run_id=str(message.run_id), node_id=message.node_id)
                    return Claim(result={"delivery": "opted_out", "status": "opted_out", "message_sids": []})
                if inbound is not None and inbound.answer_state == "waiting" \
                        and inbound.from_number == message.to and inbound.to_number == sender:
                    add_outbound(session, **common, inbound_id=inbound.id, via="inline", status="inline")
                    SMS_SENT.labels("inline").inc()  # the waiting webhook answers with it as TwiML
                    return Claim(result={"delivery": "inline", "status": "inline", "message_sids": []})
                twilio = self._credentials(session, message)
                rows = add_outbound(session, **common, inbound_id=None, via="rest", status="claimed")
                retried = False
            else:
                twilio = self._credentials(session, message)
                retried = True
            return Claim(rows=rows, retried=retried, account_sid=str(twilio["account_sid"]),
                         auth_token=str(twilio["auth_token"]))

    def _credentials(self, session: Session, message: OutgoingSms) -> dict[str, Any]:
        """The organization's Twilio credentials, decrypted: read only for a send through the REST
        API (an inline answer, the common case of a reply, needs none)."""
        twilio = credentials.load(session, org_id=message.org_id, type_="twilio", cipher=self.cipher)
        if twilio is None:
            raise MantleError("the organization has no Twilio credentials (POST /v1/credentials)")
        return twilio

    def _deliver(self, client: Client, row: SmsOutbound, retried: bool) -> tuple[str, str]:
        """Send one part unless it is already at Twilio; returns (SID, status)."""
        if row.message_sid is not None:
            return row.message_sid, row.status
        if retried and row.status == "claimed":
            found = self._already_sent(client, row)
            if found is not None:
                log.info("sms_adopted_after_retry", outbound_id=str(row.id), sid=found)
                self._record(row.id, found, "queued")
                return found, "queued"
        if row.status == "failed":  # refused by Twilio last time: nothing reached the phone
            with session_scope(self.sessions) as session:
                session.execute(update(SmsOutbound)
                                .where(SmsOutbound.id == row.id, SmsOutbound.status == "failed",
                                       SmsOutbound.message_sid.is_(None))
                                .values(status="claimed", error_code=None, error_message=None))
        callback = f"{self.settings.public_base_url.rstrip('/')}/twilio/status/{row.id}"
        try:
            sent = client.messages.create(to=row.to_number, from_=row.from_number, body=row.body,
                                          status_callback=callback)
        except TwilioRestException as exc:
            SMS_FAILED.labels("refused").inc()
            with session_scope(self.sessions) as session:
                advance_status(session, outbound_id=row.id, status="failed",
                               error_code=str(exc.code or exc.status), error_message=str(exc.msg)[:2000])
            raise MantleError(f"Twilio refused the message ({exc.code or exc.status}): {exc.msg}") from None
        except Exception as exc:  # no answer: it may have been sent, so the part stays claimed
            SMS_FAILED.labels("unanswered").inc()
            log.warning("sms_send_unanswered", outbound_id=str(row.id), error=type(exc).__name__)
            raise MantleError(f"Twilio did not answer ({type(exc).__name__}); a retry of the node first "
                              "checks whether the message went out") from None
        sid, status = str(sent.sid), str(sent.status or "queued")
        SMS_SENT.labels(status).inc()
        self._record(row.id, sid, status)
        return sid, status

    def _record(self, outbound_id: uuid.UUID, sid: str, status: str) -> None:
        with session_scope(self.sessions) as session:
            advance_status(session, outbound_id=outbound_id, status=status, message_sid=sid)

    def _already_sent(self, client: Client, row: SmsOutbound) -> str | None:
        """The SID of a message Twilio accepted for this part before a crash, if any."""
        since = row.created_at - timedelta(seconds=5)
        with session_scope(self.sessions) as session:
            known = set(session.scalars(select(SmsOutbound.message_sid).where(
                SmsOutbound.to_number == row.to_number, SmsOutbound.message_sid.is_not(None))))
        for candidate in client.messages.list(to=row.to_number, from_=row.from_number,
                                              date_sent_after=since, limit=100):
            created = candidate.date_created
            if candidate.body == row.body and candidate.sid not in known \
                    and (created is None or created >= since):
                return str(candidate.sid)
        return None

    def client(self, account_sid: str, auth_token: str) -> Client:
        """A REST client for the account, pointed at the configured API base URL."""
        settings = self.settings
        return _client(account_sid, auth_token, settings.twilio_api_base_url, settings.twilio_timeout_s)


@lru_cache(maxsize=64)
def _client(account_sid: str, auth_token: str, base_url: str, timeout: float) -> Client:
    client = Client(account_sid, auth_token, http_client=PooledHttpClient(timeout=timeout))
    client.api.base_url = base_url.rstrip("/")
    return client


@service("sms")
def sms_sender(settings: Settings) -> TwilioSender:
    """The SMS service of this worker process."""
    return TwilioSender(settings, session_factory(settings.resolved_database_url))
