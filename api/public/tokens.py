"""Signed, tamper-proof tokens for the public pages (HMAC-SHA256 over a small JSON payload).

Each purpose (a visitor cookie, a page token, a run token, an access grant) signs with its
own key derived from `MANTLE_SECRET_KEY`, so a token made for one can never pass as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks tokens of one purpose."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._key = hashlib.sha256(f"mantle:{purpose}:{secret}".encode()).digest()

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def sign(self, data: dict[str, Any], ttl_s: float | None = None) -> str:
        """A token carrying `data`, valid for `ttl_s` seconds (forever when None)."""
        payload = dict(data)
        if ttl_s is not None:
            payload["exp"] = int(time.time() + ttl_s)
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(body)}"

    def unsign(self, token: str | None) -> dict[str, Any] | None:
        """The data of a genuine, unexpired token; None for anything else."""
        # A genuine token is ASCII; hmac.compare_digest raises TypeError on any other str (a 500).
        if not token or not token.isascii() or token.count(".") != 1 or len(token) > 4096:
            return None
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(data, dict) or ("exp" in data and data["exp"] < time.time()):
            return None
        return data


class Tokens:
    """The public pages' signers, built once per API process."""

    def __init__(self, secret: str) -> None:
        self.visitor = Signer(secret, "visitor")
        self.page = Signer(secret, "page")
        self.run = Signer(secret, "run")
        self.access = Signer(secret, "access")
        self._digest_key = hashlib.sha256(f"mantle:bucket:{secret}".encode()).digest()

    def bucket_id(self, raw: str) -> str:
        """A short, keyed digest of a visitor id or IP address: counted, never stored in clear."""
        return hmac.new(self._digest_key, raw.encode(), hashlib.sha256).hexdigest()[:32]
