"""Encryption of stored secrets (credentials) with keys derived from MANTLE_SECRET_KEY.

Each secret key becomes a Fernet key through HKDF-SHA256, so the setting may be any long
random string. Rotation: set the new key in `MANTLE_SECRET_KEY`, list the old one in
`MANTLE_SECRET_KEY_FALLBACKS` (everything still decrypts), run `mantle credentials rotate`
(every row is re-encrypted with the new key), then drop the fallback.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import MantleError
from core.settings import Settings

_SALT = b"mantle.credentials.v1"


class SecretUnreadable(MantleError):
    """A stored secret cannot be decrypted with the configured keys (the key changed)."""

    status_code = 500
    type = "secret_unreadable"


def derive_key(secret: str) -> bytes:
    """The Fernet key (urlsafe base64 of 32 bytes) derived from a secret setting."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=b"fernet").derive(secret.encode())
    return base64.urlsafe_b64encode(raw)


@lru_cache(maxsize=8)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(derive_key(k)) for k in keys])


def cipher_for(settings: Settings) -> MultiFernet:
    """Encrypts with the current secret key; decrypts with it or any fallback."""
    return _cipher((settings.secret_key, *settings.secret_key_fallbacks))


def encrypt(cipher: MultiFernet, plain: str) -> str:
    """The token for `plain` (authenticated encryption, timestamped)."""
    return cipher.encrypt(plain.encode()).decode()


@lru_cache(maxsize=1024)
def _opened(cipher: MultiFernet, token: str) -> str:
    return cipher.decrypt(token.encode()).decode()


def decrypt(cipher: MultiFernet, token: str) -> str:
    """The plain text of a token; SecretUnreadable if no configured key opens it.

    A token opened once is remembered in this process, by its cipher (the configured keys) and
    its own text: an inbound SMS opens its organization's Twilio token to check the signature,
    and Fernet's checks cost more than the rest of that check. A changed secret is a new token,
    and a token no key opens is never remembered."""
    try:
        return _opened(cipher, token)
    except InvalidToken:
        raise SecretUnreadable("a stored secret cannot be decrypted: MANTLE_SECRET_KEY changed without "
                               "listing the old key in MANTLE_SECRET_KEY_FALLBACKS") from None


def rotate(cipher: MultiFernet, token: str) -> str:
    """The token re-encrypted with the current key."""
    try:
        return cipher.rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("a stored secret cannot be decrypted with any configured key") from None
