"""Password rules and hashes: length, the shipped list of common passwords, argon2id, emails."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequest
from models.accounts import PASSWORDS, PasswordRejected, check_password, hash_password, normalize_email


@pytest.mark.parametrize(("password", "rule"), [
    ("short", "password.too_short"), ("123456789", "password.too_short"),
    ("password123", "password.common"), ("QWERTYUIOP", "password.common"), ("iloveyou12", "password.common"),
    ("x" * 257, "password.too_long"),
])
def test_weak_passwords_are_refused_naming_the_rule(password: str, rule: str) -> None:
    with pytest.raises(PasswordRejected) as refused:
        check_password(password)
    assert refused.value.details()[0]["type"] == rule and refused.value.status_code == 422


def test_a_long_uncommon_password_passes_and_is_hashed_with_argon2id() -> None:
    check_password("violet-harbor-1987")
    first, second = hash_password("violet-harbor-1987"), hash_password("violet-harbor-1987")
    assert first.startswith("$argon2id$") and first != second  # salted
    assert PASSWORDS.verify("violet-harbor-1987", first) and not PASSWORDS.verify("violet-harbor-1988", first)


def test_emails_are_trimmed_and_lower_cased_and_checked() -> None:
    assert normalize_email("  Ada@Example.COM ") == "ada@example.com"
    for bad in ("ada", "ada@", "@example.com", "ada @example.com", "a" * 250 + "@x.io"):
        with pytest.raises(InvalidRequest):
            normalize_email(bad)
