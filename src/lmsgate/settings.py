"""Settings, read from ``LMSGATE_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _cpus() -> int:
    """The CPUs this process may run on (a container's cpuset included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LMSGATE_", env_file=".env", extra="ignore",
                                      env_ignore_empty=True)  # VAR= (a blank line in .env) means unset

    database_url: str = Field(
        default="sqlite:///.lmsgate/lmsgate.db",
        description="SQLAlchemy URL. sqlite:///path for the embedded store, postgresql://... at scale.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port to listen on.")
    api_key: str | None = Field(
        default=None, description="Pin the first API key (scripted deployments). Never logged."
    )
    account_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Pin the id of the first local account (as POST /accounts accepts an id).",
    )
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="Largest request body accepted.")
    rate_limit_per_minute: int = Field(
        default=1000, ge=0,
        description="Requests per minute allowed to each API key (StackOne's limit); 0 turns the limit off.",
    )
    heartbeat_after_seconds: float = Field(
        default=5.0, gt=0,
        description="With `Prefer: heartbeat`, how long a request may run before its status is sent "
        "and newline heartbeats start.",
    )
    heartbeat_interval_seconds: float = Field(
        default=5.0, gt=0, description="Seconds between two newline heartbeats."
    )
    log_level: str = Field(default="info", description="debug, info, warning, error or critical.")

    # Hardening (issue 8): shared rate limits, limits on requests, logs and metrics.
    rate_limit_store: Literal["auto", "memory", "database"] = Field(
        default="auto",
        description="Where rate-limit counts live: `database` shares them between API processes on one "
        "database, `memory` keeps them in this process. `auto`: database on PostgreSQL, memory on SQLite.",
    )
    auth_failures_per_minute: int = Field(
        default=30, ge=0,
        description="Failed authentications allowed per client address and minute, then 429 for that "
        "address; 0 turns the limit off.",
    )
    max_url_bytes: int = Field(default=8192, ge=256, description="Longest path plus query string accepted.")
    max_header_bytes: int = Field(
        default=16384, ge=1024, description="Largest total size of the request headers (names and values)."
    )
    max_header_count: int = Field(default=100, ge=10, description="Most request headers accepted.")
    log_format: Literal["json", "text"] = Field(
        default="json", description="`json`: one JSON object per line (for log shippers); `text`: for people."
    )
    request_logs: bool = Field(default=True, description="Record API calls for GET /requests/logs.")
    request_log_process: bool = Field(
        default=True,
        description="Build and write request logs in a process of their own beside the server, so that "
        "the server's process spends its time on requests. Not for an in-memory SQLite database, which "
        "another process cannot open.",
    )
    commit_process: bool = Field(
        default=True,
        description="Commit posted completions of a SQLite file in a process of its own beside the "
        "server, so that the commit does not share Python's lock with the requests; a completion is "
        "still answered only once committed. Not for an in-memory SQLite database, nor PostgreSQL.",
    )
    read_processes: int = Field(
        default=max(1, min(4, _cpus() - 1)), ge=0, le=16,
        description="Processes beside the server that read pages of completions from a SQLite file, so "
        "that list calls run on the machine's other cores instead of holding up the server's other "
        "requests: by default one per CPU beyond the first (1 to 4); 0 reads every page in the server's "
        "process. Not for an in-memory SQLite database, nor PostgreSQL (the server's threads wait on "
        "it without holding Python's lock).",
    )
    request_log_retention_days: float = Field(
        default=30.0, gt=0, description="Request logs older than this are deleted."
    )
    request_log_body_bytes: int = Field(
        default=16384, ge=0,
        description="Request and response bodies kept in request logs are cut at this size, secrets "
        "masked; 0 keeps no bodies.",
    )
    request_log_read_body_bytes: int = Field(
        default=1024, ge=0,
        description="The answer of a successful GET is cut shorter in request logs: a list page runs "
        "to tens of KiB, can be fetched again, and at this size costs a fifth of what 16 KiB does.",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, GET /metrics needs `Authorization: Bearer <token>`."
    )

    # Linked accounts: the credential vault and the outbound HTTP policy (lmsgate.vault, lmsgate.http).
    vault_key: SecretStr | None = Field(
        default=None,
        description="Vault key(s): 32 bytes in URL-safe base64; several comma-separated, newest "
        "first, during a rotation. Without it, the key file is used.",
    )
    vault_key_file: str | None = Field(
        default=None,
        description="Vault key file, created with mode 0600 on first use. Default: vault.key beside "
        "the SQLite database, or .lmsgate/vault.key.",
    )
    outbound_allow_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated networks lmsgate may call although they are private or loopback "
        "(e.g. 127.0.0.1/32 for a local test LRS). Empty: only public addresses.",
    )
    outbound_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    outbound_read_timeout_seconds: float = Field(default=30.0, gt=0)
    outbound_request_lifetime_seconds: float = Field(
        default=60.0, gt=0,
        description="Time one API request may spend on provider calls, retries included; then 408.",
    )
    outbound_max_retries: int = Field(default=5, ge=0, description="Provider retries per API request.")
    outbound_backoff_base_seconds: float = Field(
        default=0.5, gt=0, description="First retry wait without Retry-After; doubles each retry."
    )

    # Reliable write-back (issue 6): Idempotency-Key, Prefer: respond-async and the delivery workers.
    idempotency_key_ttl_seconds: float = Field(
        default=86400.0, gt=0,
        description="How long an Idempotency-Key is remembered: a retry within this time gets the first "
        "answer replayed.",
    )
    idempotency_lock_seconds: float = Field(
        default=300.0, gt=0,
        description="A request holding an Idempotency-Key that has not answered after this long is taken "
        "for dead (its process stopped); the key may then be used again.",
    )
    delivery_in_process_worker: bool = Field(
        default=True,
        description="`lmsgate serve` also delivers asynchronous writes. Turn it off on API processes when "
        "`lmsgate worker` processes do the delivering (PostgreSQL).",
    )
    delivery_max_attempts: int = Field(default=30, ge=1, description="Attempts before a delivery is dead-lettered.")
    delivery_max_age_seconds: float = Field(
        default=3 * 86400.0, gt=0, description="Age after which a delivery that still fails is dead-lettered."
    )
    delivery_backoff_base_seconds: float = Field(
        default=1.0, gt=0, description="First wait before retrying a delivery; doubles with each attempt."
    )
    delivery_backoff_cap_seconds: float = Field(default=1800.0, gt=0, description="Longest wait between attempts.")
    delivery_pause_cap_seconds: float = Field(
        default=300.0, gt=0,
        description="Longest pause of an account's deliveries after provider failures in a row (a provider "
        "Retry-After can ask for more).",
    )
    delivery_account_concurrency: int = Field(
        default=8, ge=1, description="Default for each account: provider calls in flight at once, all workers together."
    )
    delivery_account_rate_per_second: float = Field(
        default=0.0, ge=0, description="Default for each account: provider calls per second, all workers "
        "together; 0 for no limit.",
    )
    delivery_batch_size: int = Field(
        default=25, ge=1,
        description="Deliveries one provider call may carry where the provider takes batches (xAPI: an array "
        "of statements in one POST); 1 sends every delivery on its own. A batch counts as one call for the "
        "account's limits.",
    )
    delivery_attempt_seconds: float = Field(
        default=30.0, gt=0, description="Time one delivery attempt may spend on provider calls."
    )
    worker_concurrency: int = Field(default=16, ge=1, description="Accounts one worker delivers for at once.")
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0, description="How often a worker says it is alive.")
    worker_stalled_after_seconds: float = Field(
        default=30.0, gt=0,
        description="A worker silent this long is taken for dead; its accounts' deliveries are resumed by others.",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown level {value!r}: use one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("outbound_allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("outbound_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for network in value:
            try:
                ipaddress.ip_network(network.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not a network: {exc}") from None
        return value

    @field_validator("vault_key")
    @classmethod
    def _vault_keys(cls, value: SecretStr | None) -> SecretStr | None:
        """A malformed key is refused with the settings, before any database is opened (the
        message says which key of the list and what a key is, never the key itself)."""
        if value is not None:
            from lmsgate.vault._keyring import Keyring, VaultKeyError

            try:
                Keyring.from_env(value.get_secret_value())
            except VaultKeyError as exc:
                raise ValueError(str(exc).replace("LMSGATE_VAULT_KEY[", "key [").removeprefix(
                    "LMSGATE_VAULT_KEY ")) from None
        return value
