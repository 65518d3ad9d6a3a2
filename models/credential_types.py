"""Credential types for outbound HTTP and inbound webhooks (see `models/credentials.py`).

Secret fields are `SecretStr`: encrypted at rest, accepted by the API, never returned by it.
Blocks refer to a credential by type and name in their config; the secret itself never enters
an app's graph, a run's inputs or outputs, or its trace.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"
# Headers the HTTP client sets itself; an API key must not pose as one of them.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
                              "content-type", "cookie"})


class BearerToken(BaseModel):
    """`Authorization: Bearer <token>`."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr = Field(min_length=1, max_length=8192, description="Never returned.")


class BasicAuth(BaseModel):
    """HTTP basic authentication: the user name is shown, the password is not."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=200, pattern=r"^[^:\r\n]+$",
                          description="Shown; may not contain a colon.")
    password: SecretStr = Field(min_length=1, max_length=1000, description="Never returned.")


class ApiKeyHeader(BaseModel):
    """An API key sent in a header of the service's choosing (`X-API-Key`, say)."""

    model_config = ConfigDict(extra="forbid")

    header: str = Field(pattern=HEADER_NAME, examples=["X-API-Key"], description="The header's name (shown).")
    value: SecretStr = Field(min_length=1, max_length=8192, description="Never returned.")

    @field_validator("header")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.lower() in RESERVED_HEADERS:
            raise ValueError(f"{value!r} is set by the HTTP client and cannot carry an API key")
        return value

    @field_validator("value")
    @classmethod
    def _one_line(cls, value: SecretStr) -> SecretStr:
        if any(c in value.get_secret_value() for c in "\r\n"):
            raise ValueError("a header value cannot contain a line break")
        return value


class WebhookSecret(BaseModel):
    """The shared secret inbound webhooks are signed with (HMAC-SHA256, `X-Mantle-Signature`)."""

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr = Field(min_length=16, max_length=1000, description="At least 16 characters; never "
                                                                          "returned.")


INTEGRATION_CREDENTIALS: dict[str, type[BaseModel]] = {
    "bearer_token": BearerToken, "basic_auth": BasicAuth, "api_key_header": ApiKeyHeader,
    "webhook_secret": WebhookSecret,
}
