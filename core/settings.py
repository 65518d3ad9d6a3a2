"""Mantle's settings: one class, read from `MANTLE_*` environment variables and `.env`.

Unset means the embedded default: a SQLite file and a filesystem broker under
`MANTLE_DATA_DIR`, so a fresh machine runs with no service at all. An unset (or placeholder)
`MANTLE_SECRET_KEY` means a random key kept in `MANTLE_DATA_DIR/secret_key`, made on first
start: a key anyone can read in the source would let anyone forge the tokens it signs (a share's
run tokens, say). In production the key must be set.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.allow_list import parse_allow_list

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret"}
SECRET_KEY_FILE = "secret_key"


def local_secret_key(data_dir: Path) -> str:
    """The key kept in `data_dir/secret_key`: made on first use (256 random bits, readable by its
    owner only) and the same for every process that shares the folder, even when they start together."""
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(draft, path)  # atomic, and never replaces the key of a process that came first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path} holds no usable key (fewer than 32 characters): set MANTLE_SECRET_KEY, "
                         "or remove the file to have a new one made")
    return key


class Settings(BaseSettings):
    """Everything configurable about a Mantle process."""

    model_config = SettingsConfigDict(env_prefix="MANTLE_", env_file=".env", extra="ignore")

    env: Literal["local", "production"] = "local"
    data_dir: Path = Path(".mantle")
    database_url: str = ""
    broker_url: str = ""
    secret_key: str = Field(default="", description="Signs tokens and encrypts stored credentials; unset: "
                            "a random key kept in DATA_DIR/secret_key (refused in production).")
    public_base_url: str = "http://127.0.0.1:8000"
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    # Request and graph limits: a builder's graph is small; anything larger is a mistake or abuse.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    knowledge_max_document_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description=(
        "Largest document a knowledge base accepts (the upload's whole body may be this plus 64 KiB)."))
    knowledge_resend_after_s: float = Field(default=300.0, gt=0, description=(
        "A document whose ingestion has not moved for this long (its message lost with a broker "
        "outage, or its worker gone) is sent to the knowledge workers again."))
    auth_cache_s: float = Field(default=5.0, ge=0, le=60, description="How long an API process "
                                "remembers a valid key; another process's revocation takes effect within it.")
    max_graph_nodes: int = Field(default=1000, ge=1)
    max_graph_edges: int = Field(default=4000, ge=0)
    max_config_bytes: int = Field(default=64 * 1024, ge=64)
    max_graph_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

    # The run engine.
    block_plugins: list[str] = Field(
        default_factory=list, description="Modules whose `BLOCKS` list adds block types.")
    worker_concurrency: int = Field(default=2, ge=1)
    heartbeat_s: float = Field(default=2.0, gt=0, description="How often a busy worker says it is alive.")
    stale_after_s: float = Field(default=10.0, gt=0,
                                 description="A run unheard of for this long is re-enqueued by the reaper.")
    reaper_interval_s: float = Field(default=5.0, gt=0)
    max_run_wait_s: float = Field(default=30.0, gt=0, le=300)
    max_input_bytes: int = Field(default=256 * 1024, ge=1024, description="Largest run inputs accepted.")
    max_value_bytes: int = Field(default=1024 * 1024, ge=1024,
                                 description="Largest outputs a node may emit; more fails the node.")
    trace_value_bytes: int = Field(default=16 * 1024, ge=256,
                                   description="Values larger than this are truncated in traces.")
    broker_polling_interval_s: float = Field(default=0.01, gt=0)
    pure_step_s: float = Field(default=0.2, gt=0, le=10, description=(
        "How long pure blocks (templates, extractions) may run inside one step's transaction, "
        "which holds the run's lock (on SQLite, the database's); a pure node still running then "
        "is finished outside it."))
    direct_run_s: float = Field(default=0.05, ge=0, le=10, description=(
        "How long an API process may run a new run of a published app whose every node is pure "
        "when its caller does not wait for it (`POST /v1/apps/{id}/runs` without `wait`, a "
        "webhook answering at once): one that ends within it is recorded ended, with no queue "
        "hop; any other is handed to a run worker from its start. 0: always hand it over."))
    pure_timeout_s: float = Field(default=10.0, gt=0, le=600, description=(
        "The most a pure block, or the start of a deferred one, may run; it then fails."))
    api_threads: int = Field(default=40, ge=2, le=400, description=(
        "Threads an API process runs its blocking work in (reads, polls, sync routes), run starts "
        "excepted (`api_run_threads`)."))
    api_run_threads: int = Field(default=8, ge=1, le=400, description=(
        "Threads an API process starts runs in (and runs pure apps in: worker/direct.py); more "
        "requests wait their turn. More than the cores can keep busy only adds switching between "
        "them (api/threads.py)."))

    # Run retention (policies per organization and app: `/v1/org/retention`, models/retention.py).
    retention_interval_s: float = Field(default=300.0, gt=0, le=86400, description=(
        "How often the scheduler prunes runs past their retention."))
    retention_batch: int = Field(default=200, ge=1, le=5000, description=(
        "Top-level runs (with their children) deleted per transaction: small, so no lock is held long."))
    retention_sweep_s: float = Field(default=5.0, gt=0, le=3600, description=(
        "The most one pruning task works (it holds a run worker's slot); with work left it sends "
        "itself again, behind the runs already queued."))
    retention_tombstone_days: int = Field(default=365, ge=1, le=36500, description=(
        "How long a pruned run still answers 410 (with when and why) before it is simply unknown."))

    # The human review queue.
    review_claim_s: float = Field(default=900.0, gt=0, le=7 * 86400,
                                  description="How long a reviewer's claim on an item lasts.")
    review_sweep_interval_s: float = Field(default=5.0, gt=0,
                                           description="How often deadlines are applied to review items.")

    # Shared web apps (public pages under /s/).
    share_page_ttl_s: float = Field(default=12 * 3600, gt=0, le=30 * 86400,
                                    description="How long a public page's form token and access grant last.")

    # People signing in with a password: attempts counted per account and per client address.
    sign_in_window_s: int = Field(default=900, ge=1, le=86400,
                                  description="The window sign-in attempts are counted in.")
    sign_in_per_account: int = Field(default=10, ge=1, description="Password attempts one account may "
                                     "take per window (a success clears its count).")
    sign_in_per_address: int = Field(default=100, ge=1,
                                     description="Password attempts one client address may take per window.")

    # Secrets and the proxy in front of the API.
    secret_key_fallbacks: list[str] = Field(
        default_factory=list, description="Earlier secret keys, still accepted to decrypt stored "
        "credentials until `mantle credentials rotate` re-encrypts them with MANTLE_SECRET_KEY.")
    trust_proxy: bool = Field(default=False, description="Honour X-Forwarded-Proto/Host (only behind "
                                                         "a proxy that sets them) when checking signatures.")

    # SMS through Twilio.
    twilio_api_base_url: str = Field(default="https://api.twilio.com",
                                     description="Where the Twilio REST client sends requests.")
    twilio_timeout_s: float = Field(default=10.0, gt=0, le=120)
    twilio_verify_numbers: bool = Field(
        default=True, description="Before routing a number, ask Twilio (with the organization's stored "
        "credentials) whether the account owns it; off only where no Twilio account answers (tests).")
    twilio_reply_window_s: float = Field(
        default=0.5, ge=0, le=10, description="How long an inbound SMS webhook waits for the run: a "
        "reply ready by then goes back inline as TwiML, a later one through the REST API.")
    sms_max_inbound_chars: int = Field(default=1600, ge=160, le=100_000,
                                       description="Longer inbound bodies are stored and run truncated.")

    # Integrations: outbound HTTP (`http.request`) and the scheduler (`trigger.schedule`).
    http_allow_hosts: list[str] = Field(
        default_factory=list, description="Host names and networks (CIDR) `http.request` may reach even "
        "though they are internal; cloud metadata addresses stay refused.")
    schedule_interval_s: float = Field(default=10.0, gt=0, le=60,
                                       description="How often the scheduler looks for due cron ticks.")
    webhook_signature_window_s: int = Field(
        default=300, ge=10, le=3600, description="A signed webhook post is accepted this long after the "
        "time it was signed at (and as long before, for clocks that differ), and only once.")

    # MCP (`/mcp`: the organization's apps as tools).
    mcp_wait_s: float = Field(default=300.0, gt=0, le=3600, description=(
        "How long a tool call waits for its run; a run still going then is answered with its id and "
        "status (follow it at GET /v1/runs/{id})."))
    mcp_progress_s: float = Field(default=5.0, gt=0, le=300, description=(
        "While a tool call waits, a progress notification at least this often (and at each change)."))

    # Model serving (the inference worker; see worker/inference/).
    model_deployments: list[dict[str, Any]] = Field(
        default_factory=list, description="Deployments (JSON list) merged by name over the shipped ones.")
    models_dir: Path | None = Field(default=None, description="Pulled weights (default: DATA_DIR/models).")
    inference_memory_budget_gb: float = Field(default=8.0, gt=0,
                                              description="Weights one inference worker keeps resident.")
    inference_concurrency: int = Field(default=64, ge=1, le=1024,
                                       description="Requests one inference worker accepts at once.")
    inference_stream_every: int = Field(default=4, ge=1, le=256,
                                        description="Tokens between partial-text events of a run.")
    inference_resend_after_s: float = Field(default=60.0, gt=0, description=(
        "A request nobody has worked on for this long (its worker died) is sent again."))
    inference_threads: int = Field(default=0, ge=0, description="torch CPU threads (0: torch's default).")
    inference_metrics_port: int = Field(default=0, ge=0, le=65535,
                                        description="Serve the inference worker's metrics here (0: off).")

    @field_validator("http_allow_hosts")
    @classmethod
    def _allow_list_parses(cls, value: list[str]) -> list[str]:
        parse_allow_list(value)
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        configured = self.secret_key.strip()
        if configured.lower() not in PLACEHOLDER_SECRETS:
            return self
        if self.env == "production":
            raise ValueError("MANTLE_SECRET_KEY must be set to a real secret when MANTLE_ENV=production")
        self.secret_key = local_secret_key(self.data_dir)
        if configured:  # credentials stored while the placeholder was the key stay readable (decrypt only)
            self.secret_key_fallbacks = [*self.secret_key_fallbacks, configured]
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, or the embedded SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mantle.db').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        """The broker URL, or the embedded filesystem broker."""
        return self.broker_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        """Folder the embedded filesystem broker exchanges messages through."""
        return (self.data_dir / "broker").resolve()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
