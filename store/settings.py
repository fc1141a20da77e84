"""Every setting of the server side, in one place.

Each field is read from a ``WORKPROOF_<NAME>`` environment variable (or a ``.env`` file in the working
folder). ``DATABASE_URL`` and ``S3_ENDPOINT`` / ``S3_ACCESS_KEY`` / ``S3_SECRET_KEY`` are also accepted
without the prefix, as most hosting platforms set them that way.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.calendar import DeadlinePolicy

# A real deployment (compose, Kubernetes) must set these: the embedded defaults only suit one machine.
REQUIRED_IN_PRODUCTION = (
    "database_url",
    "s3_endpoint",
    "s3_access_key",
    "s3_secret_key",
    "temporal_address",
    "secret_key",
    "public_url",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WORKPROOF_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- where the embedded stack keeps its data --------------------------------------------------
    data_dir: Path = Field(default=Path(".workproof"), description="Folder for the embedded stack's data.")

    # --- PostgreSQL ------------------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WORKPROOF_DATABASE_URL", "DATABASE_URL"),
        description="postgresql+psycopg://user:pass@host:port/db; unset = embedded PostgreSQL under data_dir.",
    )
    embedded_postgres_port: int = Field(default=54329, description="Port of the embedded PostgreSQL.")

    # --- object store (SeaweedFS, or any S3) ------------------------------------------------------------
    s3_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WORKPROOF_S3_ENDPOINT", "S3_ENDPOINT"),
        description="host:port of an S3 server (SeaweedFS, MinIO, AWS S3...); unset = embedded SeaweedFS.",
    )
    s3_access_key: str = Field(
        default="workproof", validation_alias=AliasChoices("WORKPROOF_S3_ACCESS_KEY", "S3_ACCESS_KEY")
    )
    s3_secret_key: str = Field(
        default="",
        validation_alias=AliasChoices("WORKPROOF_S3_SECRET_KEY", "S3_SECRET_KEY"),
        description="Unset with the embedded store = generated once and kept (0600) under data_dir.",
    )
    s3_secure: bool = Field(default=False, description="Use HTTPS to reach the object store.")
    s3_region: str = Field(default="us-east-1", description="Pinned so the client never asks the server.")
    s3_bucket: str = Field(default="workproof-captures")
    embedded_s3_port: int = Field(
        default=9100,
        ge=1,
        le=65535 - 7,
        description="S3 port of the embedded SeaweedFS; it also takes the seven ports after it.",
    )

    # --- Temporal --------------------------------------------------------------------------------------
    temporal_address: str | None = Field(
        default=None, description="host:port of a Temporal frontend; unset = embedded dev server."
    )
    temporal_namespace: str = "default"
    temporal_task_queue: str = "workproof"
    embedded_temporal_port: int = Field(default=7233, description="gRPC port of the embedded dev server.")
    temporal_ui_port: int = Field(default=8233, description="Web UI port of the embedded dev server.")
    temporal_ui_url: str | None = Field(default=None, description="Public URL of the Temporal Web UI.")

    # --- API -------------------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    worker_health_port: int = Field(default=8001, description="The worker answers GET /health here; 0 = off.")
    worker_health_host: str = Field(
        default="127.0.0.1",
        description="Where the worker's health check listens (0.0.0.0 in a pod, for probes).",
    )
    public_url: str | None = Field(default=None, description="URL people use to reach the API and pages.")
    secret_key: str = Field(
        default="",
        description="Signs session cookies and image links. Unset = generated once and kept under data_dir.",
    )
    session_hours: int = Field(default=12, ge=1, description="How long a web session lasts.")
    token_days: int = Field(default=365, ge=1, description="Default lifetime of an API token.")
    login_attempts_per_minute: int = Field(
        default=10, ge=1, description="Sign-in attempts per client address."
    )
    login_failures_per_account: int = Field(
        default=10, ge=1, description="Failed sign-ins (password or second factor) per account in 15 minutes."
    )
    trusted_proxies: str = Field(
        default="",
        description="Addresses or CIDRs (comma-separated) whose X-Forwarded-For is believed; default none.",
    )

    # --- accounts and mail --------------------------------------------------------------------------------
    signup: Literal["open", "invite", "closed"] = Field(
        default="invite", description="Who may create an account at /signup: anyone, the invited, nobody."
    )
    smtp_url: str | None = Field(
        default=None,
        description="smtp://user:pass@host:587 (STARTTLS) or smtps://host:465; unset = embedded.",
    )
    mail_from: str = Field(default="Workproof <workproof@localhost>", description="From: of every mail.")
    embedded_smtp_port: int = Field(default=8025, description="Port of the embedded SMTP server.")
    dev_mail: bool = Field(default=False, description="Serve /dev/mail (the embedded SMTP server's mailbox).")
    mail_poll_seconds: float = Field(default=1.0, gt=0, le=60, description="How often the sender looks.")

    # --- notifications and webhooks ------------------------------------------------------------------------
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook endpoints on private/loopback addresses and plain http (embedded stack, tests).",
    )
    webhook_retry_base_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="First retry delay of a webhook delivery (doubles, jittered).",
    )
    webhook_retry_hours: float = Field(
        default=24.0, gt=0, le=168, description="How long a delivery is retried."
    )
    webhook_disable_after: int = Field(
        default=20, ge=1, le=1000, description="Consecutive failed attempts that disable an endpoint."
    )

    max_body_bytes: int = Field(
        default=256 * 1024, ge=4096, description="Any request body but a capture upload (JSON, forms)."
    )

    # --- capture ingest ---------------------------------------------------------------------------------
    max_image_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Per monitor image.")
    max_image_pixels: int = Field(default=40_000_000, ge=1, description="Per monitor image (w x h).")
    max_monitors: int = Field(default=8, ge=1)
    max_capture_pixels: int = Field(
        default=67_108_864, ge=1, description="All monitors of one capture together (w x h summed)."
    )
    max_captures_per_minute: int = Field(
        default=60,
        ge=1,
        description="Uploads a provider may make per minute (a backlog drains at this pace).",
    )
    max_memo_chars: int = Field(default=2000, ge=1)
    max_clock_skew_seconds: int = Field(
        default=300, ge=0, description="How far in the future captured_at may be."
    )
    tracker_test_slot_seconds: int = Field(
        default=0,
        ge=0,
        le=720,
        description="Tests only: the browser tracker page may plan slots this short (?slot_seconds=); 0 = never.",
    )
    presign_seconds: int = Field(
        default=300, ge=1, le=300, description="Lifetime of an image link (max 5 min)."
    )

    # --- domain calendar (per deployment) ----------------------------------------------------------------
    edit_cutoff_hours: int = Field(
        default=12, ge=0, le=72, description="After the week ends (Monday 00:00 UTC)."
    )
    review_days: int = Field(default=5, ge=1, le=14, description="Review deadline, days after the week ends.")
    response_days: int = Field(default=3, ge=1, le=14, description="Provider's window to answer a dispute.")
    security_days: int = Field(default=5, ge=0, le=30, description="Hold before approved funds are released.")
    settlement_spread_seconds: int = Field(
        default=0,
        ge=0,
        le=6 * 3600,
        description="Spread each Monday's freezes and charges over this many seconds.",
    )
    # --- the guarantee: what it may pay, and when support looks first ---------------------------------
    max_rate_cents: int = Field(
        default=100_000, ge=1, le=10**9, description="Highest hourly rate an offer may name, in cents."
    )
    guarantee_review_cents: int = Field(
        default=100_000, ge=0, description="A guarantee payout above this waits for support (0 = none waits)."
    )
    payout_review_days: int = Field(
        default=5, ge=1, le=30, description="Support's window to decide such a payout; silence pays it."
    )
    retention_days: int = Field(
        default=90, ge=1, description="Images are deleted this long after settlement."
    )

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str | None) -> str | None:
        """Accept the plain ``postgresql://`` form too and pin the psycopg (v3) driver."""
        if value is None or value == "":
            return None
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if not value.startswith("postgresql+psycopg://"):
            raise ValueError(
                "DATABASE_URL must start with postgresql:// (or postgresql+psycopg://), "
                f"got {value.split(':', 1)[0]!r}"
            )
        return value

    @property
    def policy(self) -> DeadlinePolicy:
        return DeadlinePolicy(
            edit_cutoff_after_week_s=self.edit_cutoff_hours * 3600,
            review_deadline_after_week_s=self.review_days * 86400,
            response_window_s=self.response_days * 86400,
            security_period_s=self.security_days * 86400,
            spread_s=self.settlement_spread_seconds,
            guarantee_review_cents=self.guarantee_review_cents,
            payout_review_s=self.payout_review_days * 86400,
        )

    @property
    def proxies(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(p.strip(), strict=False)
            for p in self.trusted_proxies.split(",")
            if p.strip()
        ]

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{part.strip()!r} is not an address or CIDR") from None
        return value

    @property
    def maildir(self) -> Path:
        """Where the embedded SMTP server keeps every message (a Maildir)."""
        return self.data_dir.resolve() / "mail"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def resolved_secret_key(self) -> str:
        """The signing key: the setting, or one generated once and kept (0600) under data_dir."""
        if self.secret_key:
            return self.secret_key
        return _kept_secret_key(self.data_dir.resolve())

    def resolved_s3_secret_key(self) -> str:
        """The object store's secret: the setting, or (for the embedded store) one generated once and kept
        (0600) under data_dir."""
        if self.s3_secret_key or self.s3_endpoint:
            return self.s3_secret_key
        return _kept_secret_key(self.data_dir.resolve(), "s3_secret_key")


MIN_SECRET_KEY_CHARS = 32
# What people paste from examples and templates: a key anyone can read signs nothing.
EXAMPLE_MARKERS = ("changeme", "change-me", "change_me", "replace-me", "replaceme", "your-secret", "yoursecret",
                   "example", "placeholder")  # fmt: skip


def secret_key_problem(value: str) -> str | None:
    """Why ``value`` cannot sign sessions and image links in a real deployment, or None."""
    how = "set a random value (openssl rand -base64 48)"
    if not value:
        return f"WORKPROOF_SECRET_KEY is not set: {how}"
    if len(value) < MIN_SECRET_KEY_CHARS:
        return f"WORKPROOF_SECRET_KEY has {len(value)} characters, fewer than {MIN_SECRET_KEY_CHARS}: {how}"
    if any(marker in value.lower() for marker in EXAMPLE_MARKERS) or len(set(value)) < 10:
        return f"WORKPROOF_SECRET_KEY is an example or a pattern, not a secret: {how}"
    return None


@lru_cache
def _kept_secret_key(data_dir: Path, name: str = "secret_key") -> str:
    """Generated once and kept (0600); read once per process, as image links are signed and checked
    on every page and image request."""
    import os
    import secrets

    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    path.chmod(0o600)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
