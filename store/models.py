"""The tables. Constraints carry the invariants, so a bug above cannot write a row that breaks them:
non-negative cents, one snapshot per contract-week, one capture per capture id, one transfer per
idempotency key.

Model ladder (docs/design.md, "API"): table models here; the API's ``...Public`` models live with the routes, so
internal fields (token hashes, object keys) never leak into responses.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from domain.timesheet import MAX_WEEKLY_LIMIT_HOURS, MIN_WEEKLY_LIMIT_HOURS

ROLES = ("provider", "client", "support", "admin")
CONTRACT_STATUSES = ("offered", "active", "ended", "declined", "withdrawn")
TOKEN_KINDS = ("api", "session", "device")
INVITATION_STATES = ("pending", "accepted", "declined", "withdrawn")
CAPTURE_KINDS = ("screenshot", "tracked")
CAPTURE_SOURCES = ("agent", "browser")
ACCOUNT_KINDS = (
    "client_funding",  # outside money entering for a client (goes negative as it funds)
    "client_balance",  # the client's prepaid balance: what charges draw on
    "client_hold",  # the client's money held for weeks in progress (store/security.py)
    "client_receivable",  # negative = what the client owes the platform after a guarantee payout
    "escrow",  # per provider: charged or guaranteed money held for the security period
    "provider_available",  # per provider: released, withdrawable
    "guarantee_fund",  # the platform's fund that pays guaranteed hours a client did not pay
    "platform_equity",  # what the platform put into the guarantee fund
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, **kw: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), nullable=nullable, **kw)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="ck_users_role"),
        CheckConstraint("email = lower(email)", name="ck_users_email_lower"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(sa_column=Column(String(254), nullable=False, unique=True))
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=16)
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime = _ts(default_factory=utcnow)
    disabled_at: datetime | None = _ts(nullable=True, default=None)
    # accounts (docs/design.md, "Accounts and sessions"): an Argon2id hash, never the password
    password_hash: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    email_verified_at: datetime | None = _ts(nullable=True, default=None)
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_enabled_at: datetime | None = _ts(nullable=True, default=None)
    totp_last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class ApiToken(SQLModel, table=True):
    """A bearer token (``api``; ``device``: one the agent received by device approval) or a web session.
    Only the sha256 of the secret is stored. A session started from a token names it (``origin_id``) and
    ends with it."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(_in("kind", TOKEN_KINDS), name="ck_api_tokens_kind"),
        Index("ix_api_tokens_user", "user_id", "kind"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    prefix: str = Field(max_length=12)
    kind: str = Field(default="api", max_length=8)
    name: str = Field(default="", max_length=100)
    csrf_secret: str = Field(default="", max_length=64)
    created_at: datetime = _ts(default_factory=utcnow)
    expires_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True, default=None)
    last_used_at: datetime | None = _ts(nullable=True, default=None)
    origin_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=True)
    )
    address: str = Field(default="", max_length=64)


class Contract(SQLModel, table=True):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint("rate_cents >= 0", name="ck_contracts_rate_nonneg"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_contracts_currency"),
        CheckConstraint(
            f"weekly_limit_hours BETWEEN {MIN_WEEKLY_LIMIT_HOURS} AND {MAX_WEEKLY_LIMIT_HOURS}",
            name="ck_contracts_limit",
        ),
        CheckConstraint(_in("status", CONTRACT_STATUSES), name="ck_contracts_status"),
        CheckConstraint("client_id <> provider_id", name="ck_contracts_parties"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False, index=True))
    provider_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False, index=True))
    title: str = Field(max_length=200)
    rate_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    weekly_limit_hours: int
    next_weekly_limit_hours: int | None = Field(default=None)
    manual_allowed: bool = False
    work_view_initial: bool = True
    status: str = Field(default="offered", max_length=16)
    created_at: datetime = _ts(default_factory=utcnow)
    accepted_at: datetime | None = _ts(nullable=True, default=None)
    ended_at: datetime | None = _ts(nullable=True, default=None)
    end_reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class WorkViewInterval(SQLModel, table=True):
    """Work View was on for the contract from ``start`` until ``end`` (open = still on)."""

    __tablename__ = "work_view_intervals"
    __table_args__ = (CheckConstraint('"end" IS NULL OR "end" > start', name="ck_work_view_order"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    contract_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("contracts.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    start: datetime = _ts()
    end: datetime | None = _ts(nullable=True, default=None)


class Capture(SQLModel, table=True):
    """One capture from the agent: a screenshot (one image per monitor) or a tracked slot without one."""

    __tablename__ = "captures"
    __table_args__ = (
        CheckConstraint(_in("kind", CAPTURE_KINDS), name="ck_captures_kind"),
        CheckConstraint(_in("source", CAPTURE_SOURCES), name="ck_captures_source"),
        CheckConstraint(
            "(kind = 'tracked' AND monitor_count = 0) OR (kind = 'screenshot' AND monitor_count >= 1)",
            name="ck_captures_monitors",
        ),
        CheckConstraint("bytes_total >= 0", name="ck_captures_bytes"),
        CheckConstraint("keyboard_events IS NULL OR keyboard_events >= 0", name="ck_captures_keys"),
        CheckConstraint("mouse_events IS NULL OR mouse_events >= 0", name="ck_captures_mouse"),
        Index("ix_captures_contract_week", "contract_id", "week_start"),
    )

    capture_id: uuid.UUID = Field(primary_key=True)  # made by the agent: the idempotency key of an upload
    contract_id: uuid.UUID = Field(sa_column=Column(ForeignKey("contracts.id"), nullable=False))
    kind: str = Field(max_length=16)
    captured_at: datetime = _ts()
    slot_start: datetime = _ts()
    week_start: datetime = _ts()
    memo: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    monitor_count: int = 0
    image_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    thumbnail_key: str | None = Field(default=None, max_length=300)
    sha256: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    widths: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    heights: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bytes_total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    keyboard_events: int | None = None
    mouse_events: int | None = None
    source: str = Field(
        default="agent", sa_column=Column(String(16), nullable=False, default="agent", server_default="agent")
    )  # the desktop agent or the browser tracker page
    created_at: datetime = _ts(default_factory=utcnow)
    deleted_at: datetime | None = _ts(nullable=True, default=None)
    images_purged_at: datetime | None = _ts(nullable=True, default=None)


class ManualEntry(SQLModel, table=True):
    __tablename__ = "manual_entries"
    __table_args__ = (
        CheckConstraint('"end" > start', name="ck_manual_order"),
        Index("ix_manual_contract_week", "contract_id", "week_start"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    contract_id: uuid.UUID = Field(sa_column=Column(ForeignKey("contracts.id"), nullable=False))
    week_start: datetime = _ts()
    start: datetime = _ts()
    end: datetime = _ts()
    memo: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _ts(default_factory=utcnow)
    deleted_at: datetime | None = _ts(nullable=True, default=None)


class TimesheetSnapshot(SQLModel, table=True):
    """The frozen week, written once by the timesheet workflow at the edit cutoff."""

    __tablename__ = "timesheet_snapshots"
    __table_args__ = (
        UniqueConstraint("contract_id", "week_start", name="uq_snapshot_contract_week"),
        CheckConstraint("amount_cents >= 0 AND guaranteed_cents >= 0", name="ck_snapshot_cents"),
        CheckConstraint("guaranteed_cents <= amount_cents", name="ck_snapshot_guaranteed_le_amount"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    contract_id: uuid.UUID = Field(sa_column=Column(ForeignKey("contracts.id"), nullable=False))
    week_start: datetime = _ts()
    content_hash: str = Field(max_length=64)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    billable_minutes: int
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    guaranteed_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(default="submitted", max_length=32)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class Dispute(SQLModel, table=True):
    __tablename__ = "disputes"
    __table_args__ = (UniqueConstraint("contract_id", "week_start", name="uq_dispute_contract_week"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    contract_id: uuid.UUID = Field(sa_column=Column(ForeignKey("contracts.id"), nullable=False))
    week_start: datetime = _ts()
    entry_ids: list[str] = Field(sa_column=Column(JSON, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    opened_by: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    opened_at: datetime = _ts(default_factory=utcnow)
    status: str = Field(default="open", max_length=32)
    provider_response: str | None = Field(default=None, max_length=16)
    responded_at: datetime | None = _ts(nullable=True, default=None)
    resolutions: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    resolved_at: datetime | None = _ts(nullable=True, default=None)


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(_in("kind", ACCOUNT_KINDS), name="ck_ledger_accounts_kind"),
        UniqueConstraint(
            "kind", "owner_id", "currency", name="uq_ledger_account", postgresql_nulls_not_distinct=True
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=32)
    owner_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("users.id"), nullable=True))
    currency: str = Field(max_length=3)
    created_at: datetime = _ts(default_factory=utcnow)


class LedgerTransfer(SQLModel, table=True):
    """Append-only: money moves ``from_account`` → ``to_account``. Corrections are new transfers."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="ck_ledger_transfer_positive"),
        CheckConstraint("from_account <> to_account", name="ck_ledger_transfer_distinct"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    idempotency_key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    from_account: uuid.UUID = Field(
        sa_column=Column(ForeignKey("ledger_accounts.id"), nullable=False, index=True)
    )
    to_account: uuid.UUID = Field(
        sa_column=Column(ForeignKey("ledger_accounts.id"), nullable=False, index=True)
    )
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=32)
    contract_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("contracts.id"), nullable=True)
    )
    week_start: datetime | None = _ts(nullable=True, default=None)
    memo: str = Field(default="", max_length=500)
    created_at: datetime = _ts(default_factory=utcnow)


class WeekSecurity(SQLModel, table=True):
    """What secures one contract-week (store/security.py): money held from the client's balance and credit
    reserved against the client's credit line; then how the week was collected."""

    __tablename__ = "week_security"
    __table_args__ = (
        PrimaryKeyConstraint("contract_id", "week_start", name="pk_week_security"),
        CheckConstraint(
            "held_cents >= 0 AND credit_cents >= 0 AND from_hold_cents >= 0 AND from_balance_cents >= 0 "
            "AND guarantee_cap_cents >= 0 AND from_hold_cents <= held_cents AND guarantee_cap_cents <= credit_cents",
            name="ck_week_security_cents",
        ),
        Index("ix_week_security_client_open", "client_id", "currency", "collected_at"),
    )

    contract_id: uuid.UUID = Field(sa_column=Column(ForeignKey("contracts.id"), nullable=False))
    week_start: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    client_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    currency: str = Field(max_length=3)
    held_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    credit_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    collected_at: datetime | None = _ts(nullable=True, default=None)
    from_hold_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    from_balance_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    rest_failed: bool = False
    guarantee_cap_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_at: datetime = _ts(default_factory=utcnow)


class CreditLine(SQLModel, table=True):
    """Guaranteed exposure the platform accepts for a client beyond the client's held money, set by an
    admin (audited)."""

    __tablename__ = "credit_lines"
    __table_args__ = (
        PrimaryKeyConstraint("client_id", "currency", name="pk_credit_lines"),
        CheckConstraint("limit_cents >= 0", name="ck_credit_lines_limit"),
    )

    client_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    currency: str = Field(max_length=3)
    limit_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    granted_by: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    updated_at: datetime = _ts(default_factory=utcnow)


class Invoice(SQLModel, table=True):
    """A numbered invoice of a charged or guarantee-paid week (migration 0005): issued once, never changed
    (a trigger refuses updates and deletes); the number comes from a sequence."""

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint(
            "client_paid_cents >= 0 AND guarantee_paid_cents >= 0 "
            "AND amount_cents = client_paid_cents + guarantee_paid_cents",
            name="ck_invoices_cents",
        ),
        UniqueConstraint("contract_id", "week_start", name="uq_invoice_contract_week"),
    )

    number: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    contract_id: uuid.UUID = Field(sa_column=Column(ForeignKey("contracts.id"), nullable=False))
    week_start: datetime = _ts()
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    client_paid_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    guarantee_paid_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    issued_at: datetime = _ts(default_factory=utcnow)


class AuthGeneration(SQLModel, table=True):
    """One row, bumped by PostgreSQL triggers on any revocation (migration 0004): what a cached bearer
    check is compared with (store/auth.py). Written only by those triggers."""

    __tablename__ = "auth_generation"
    __table_args__ = (CheckConstraint("id = 1", name="auth_generation_id_check"),)

    id: int = Field(default=1, sa_column=Column(SmallInteger, primary_key=True))
    value: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_subject", "subject_type", "subject_id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    at: datetime = _ts(default_factory=utcnow)
    actor_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("users.id"), nullable=True))
    action: str = Field(max_length=64)
    subject_type: str = Field(max_length=32)
    subject_id: str = Field(max_length=100)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Notification(SQLModel, table=True):
    """One event for one recipient, written by the workflows (activities/notifications.py) or a use case
    (store/notify.py), once per ``dedupe_key``. It is also the recipient's inbox item (``read_at``). The
    fan-out (api/services/notifications.py) turns it into a mail and webhook deliveries, then sets
    ``sent_at``."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_fanout", "created_at", postgresql_where="sent_at IS NULL"),
        Index("ix_notifications_inbox", "recipient_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    dedupe_key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    kind: str = Field(max_length=48)
    recipient_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False, index=True))
    contract_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("contracts.id"), nullable=True)
    )
    week_start: datetime | None = _ts(nullable=True, default=None)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts(default_factory=utcnow)
    sent_at: datetime | None = _ts(nullable=True, default=None)
    read_at: datetime | None = _ts(nullable=True, default=None)


class AccountLink(SQLModel, table=True):
    """A single-use emailed link: address confirmation (``verify``) or password reset (``reset``).
    Only the sha256 of its random token is stored."""

    __tablename__ = "account_links"
    __table_args__ = (CheckConstraint("purpose IN ('verify', 'reset')", name="ck_account_links_purpose"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    purpose: str = Field(max_length=8)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = _ts(default_factory=utcnow)
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(nullable=True, default=None)


class Invitation(SQLModel, table=True):
    """An emailed invitation: a client's hourly offer to a provider, or an admin's to a staff member. The
    offer's terms wait here until the invitee accepts; then the contract is created and accepted."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(_in("state", INVITATION_STATES), name="ck_invitations_state"),
        CheckConstraint(_in("role", ROLES), name="ck_invitations_role"),
        CheckConstraint("email = lower(email)", name="ck_invitations_email_lower"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    email: str = Field(sa_column=Column(String(254), nullable=False, index=True))
    role: str = Field(max_length=16)
    invited_by: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False, index=True))
    offer: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="pending", max_length=16)
    contract_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("contracts.id"), nullable=True)
    )
    created_at: datetime = _ts(default_factory=utcnow)
    sent_at: datetime = _ts(default_factory=utcnow)
    expires_at: datetime = _ts()
    answered_at: datetime | None = _ts(nullable=True, default=None)


class RecoveryCode(SQLModel, table=True):
    """A one-time second-factor recovery code; only its sha256 is stored."""

    __tablename__ = "recovery_codes"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    code_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    used_at: datetime | None = _ts(nullable=True, default=None)


class DeviceCode(SQLModel, table=True):
    """The agent's sign-in by device approval: the agent holds ``device_code`` (stored as its sha256) and
    polls; the person types ``user_code`` on the web and approves; the first poll after approval gets a
    device token, and the code is spent."""

    __tablename__ = "device_codes"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    device_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    user_code: str = Field(sa_column=Column(String(9), nullable=False, unique=True))
    machine: str = Field(default="", max_length=100)
    created_at: datetime = _ts(default_factory=utcnow)
    expires_at: datetime = _ts()
    approved_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    )
    approved_at: datetime | None = _ts(nullable=True, default=None)
    token_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("api_tokens.id", ondelete="SET NULL"), nullable=True)
    )
    spent_at: datetime | None = _ts(nullable=True, default=None)


class RateBucket(SQLModel, table=True):
    """Attempts per key (an address, an account) in a fixed window: shared by every API replica."""

    __tablename__ = "rate_buckets"

    key: str = Field(sa_column=Column(String(200), primary_key=True))
    window_start: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    hits: int = 0


class OutboxMail(SQLModel, table=True):
    """The mail outbox: written in the transaction of the action that causes it, sent later by the
    sender (store/mail.py), retried until the mail server takes it."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "next_attempt_at", postgresql_where="sent_at IS NULL"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    message_id: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    kind: str = Field(max_length=48)
    recipient: str = Field(sa_column=Column(String(254), nullable=False))
    subject: str = Field(max_length=300)
    text_body: str = Field(sa_column=Column(Text, nullable=False))
    html_body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts(default_factory=utcnow)
    next_attempt_at: datetime = _ts(default_factory=utcnow)
    attempts: int = 0
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    sent_at: datetime | None = _ts(nullable=True, default=None)


class NotificationPref(SQLModel, table=True):
    """A person's choice of email for one kind (absent: the kind's default, domain/notify.py)."""

    __tablename__ = "notification_prefs"

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    kind: str = Field(sa_column=Column(String(48), primary_key=True, nullable=False))
    email: bool = True


class Webhook(SQLModel, table=True):
    """An HTTPS endpoint that receives signed JSON deliveries of the chosen kinds: an account's own
    (``owner_id``), or the whole deployment's (``owner_id`` empty, registered by an admin)."""

    __tablename__ = "webhooks"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True)
    )
    created_by: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    url: str = Field(sa_column=Column(String(500), nullable=False))
    secret: str = Field(sa_column=Column(String(80), nullable=False))
    kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    consecutive_failures: int = 0
    disabled_at: datetime | None = _ts(nullable=True, default=None)
    disabled_reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _ts(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One notification for one endpoint: its id is the delivery id a receiver dedupes on; retried with
    backoff until the endpoint answers 2xx or a day has passed (``failed_at``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "notification_id", name="uq_webhook_delivery"),
        Index("ix_webhook_deliveries_due", "next_attempt_at",
              postgresql_where="delivered_at IS NULL AND failed_at IS NULL"),
    )  # fmt: skip

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    webhook_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    notification_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("notifications.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(max_length=48)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts(default_factory=utcnow)
    next_attempt_at: datetime = _ts(default_factory=utcnow)
    attempts: int = 0
    last_status: int | None = None
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    delivered_at: datetime | None = _ts(nullable=True, default=None)
    failed_at: datetime | None = _ts(nullable=True, default=None)
