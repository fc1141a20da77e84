"""Public models: what responses show (never token hashes or object keys)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field, StrictInt

from domain.messages import DisputeState, PayoutReview
from domain.text import MAX_MEMO_CHARS
from domain.timesheet import MAX_WEEKLY_LIMIT_HOURS, MIN_WEEKLY_LIMIT_HOURS, Timesheet

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: str
    timezone: str
    created_at: datetime


class UserCreate(BaseModel):
    email: str = Field(max_length=254)
    role: Literal["provider", "client", "support", "admin"]
    name: str = Field(default="", max_length=200)
    timezone: str = Field(default="UTC", max_length=64)


class TokenCreate(BaseModel):
    name: str = Field(default="", max_length=100)
    days: int = Field(default=365, ge=1, le=3650)


class TokenPublic(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    prefix: str
    name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenIssued(TokenPublic):
    token: str = Field(description="Shown once: store it now.")


class Funding(BaseModel):
    amount_cents: StrictInt = Field(
        gt=0, le=10**12, description="Whole cents: no strings, booleans or fractions"
    )
    currency: str = Field(default="USD", min_length=3, max_length=3)
    request_id: str = Field(
        min_length=8, max_length=100, description="Idempotency key: retry with the same one."
    )


class BalancePublic(BaseModel):
    client_id: uuid.UUID
    currency: str
    balance_cents: int
    owed_cents: int


class ContractCreate(BaseModel):
    """An offer to a provider, named by id or by email address (one of the two)."""

    provider_id: uuid.UUID | None = None
    provider_email: str | None = Field(default=None, max_length=254)
    title: str = Field(min_length=1, max_length=200)
    rate_cents: StrictInt = Field(
        ge=0, le=10**9, description="Hourly rate in whole cents (the deployment sets a ceiling)"
    )
    currency: str = Field(default="USD", min_length=3, max_length=3)
    weekly_limit_hours: int = Field(default=40, ge=MIN_WEEKLY_LIMIT_HOURS, le=MAX_WEEKLY_LIMIT_HOURS)
    manual_allowed: bool = False
    work_view: bool = True


class ContractPublic(BaseModel):
    id: uuid.UUID
    title: str
    client_id: uuid.UUID
    provider_id: uuid.UUID
    rate_cents: int
    currency: str
    weekly_limit_hours: int
    next_weekly_limit_hours: int | None
    manual_allowed: bool
    status: str
    work_view_on: bool
    created_at: datetime
    accepted_at: datetime | None
    ended_at: datetime | None
    end_reason: str = ""


class WorkViewToggle(BaseModel):
    on: bool


class WorkViewChangedPublic(BaseModel):
    on: bool
    effective_at: datetime


class WeeklyLimitUpdate(BaseModel):
    weekly_limit_hours: int = Field(ge=MIN_WEEKLY_LIMIT_HOURS, le=MAX_WEEKLY_LIMIT_HOURS)


class CapturePublic(BaseModel):
    capture_id: uuid.UUID
    contract_id: uuid.UUID
    kind: str
    captured_at: datetime
    slot_start: datetime
    week_start: datetime
    memo: str
    monitor_count: int
    sha256: list[str]
    keyboard_events: int | None
    mouse_events: int | None
    source: str = "agent"  # "agent" or "browser" (the tracker page)
    created_at: datetime


class ManualCreate(BaseModel):
    start: datetime
    end: datetime
    memo: str = Field(default="", max_length=5 * MAX_MEMO_CHARS)  # longer memos get the rule's own 422


class ManualPublic(BaseModel):
    id: uuid.UUID
    contract_id: uuid.UUID
    week_start: datetime
    start: datetime
    end: datetime
    memo: str
    created_at: datetime


# --- timesheets ------------------------------------------------------------------------------------------


class TimesheetPublic(Timesheet):
    """The week as its viewer sees it: live before the edit cutoff, the frozen snapshot after, with what
    only the workflow knows (dispute, deadlines moved, money) when it answers."""

    iso_week: str
    status: str
    frozen: bool
    snapshot_hash: str | None = None
    edit_cutoff: datetime
    review_deadline: datetime
    dispute: DisputeState | None = None
    owed_cents: int | None = None
    charged_cents: int = 0
    guarantee_paid_cents: int = 0
    released_cents: int = 0
    history: list[str] = Field(default_factory=list)
    held_cents: int = Field(0, description="Money held on the client's balance for this week")
    credit_cents: int = Field(0, description="Credit an admin granted, reserved for this week")
    secured_cents: int = Field(0, description="What the guarantee can rely on: held plus credit")
    payout_review: PayoutReview | None = None


class CreditLine(BaseModel):
    currency: str = Field(default="USD", min_length=3, max_length=3)
    limit_cents: StrictInt = Field(ge=0, le=10**12)
    reason: str = Field(min_length=1, max_length=500)


class CreditLinePublic(BaseModel):
    client_id: uuid.UUID
    currency: str
    limit_cents: int
    available_cents: int


class WeekSummary(BaseModel):
    week_start: datetime
    iso_week: str
    status: str
    billable_minutes: int
    amount_cents: int
    guaranteed_cents: int


# --- support ---------------------------------------------------------------------------------------------


class DisputeQueueItem(BaseModel):
    contract_id: uuid.UUID
    title: str
    client_id: uuid.UUID
    provider_id: uuid.UUID
    week_start: datetime
    iso_week: str
    status: str
    workflow_id: str
    amount_cents: int
    currency: str
    disputed_entries: list[str]
    reason: str
    opened_at: datetime | None
    provider_response: str | None


class TimesheetFound(BaseModel):
    workflow_id: str
    run_id: str
    contract_id: str | None
    week_start: datetime | None
    iso_week: str | None
    status: str | None
    dispute_open: bool | None
    execution: str
    started_at: datetime
    closed_at: datetime | None
    title: str | None = None
    client: str | None = None  # name <email>
    provider: str | None = None


class TimesheetSearch(BaseModel):
    items: list[TimesheetFound]
    total: int
    limit: int
    next_page_token: str | None


class TimelineEvent(BaseModel):
    at: datetime
    kind: str
    actor: str
    actor_id: str | None = None
    text: str
    week: str | None = None
    workflow_id: str | None = None
    amount_cents: int | None = None


class WorkflowRun(BaseModel):
    workflow_id: str
    run_id: str
    workflow_type: str
    execution: str
    started_at: datetime
    closed_at: datetime | None
    history_url: str
    ui_url: str


class ContractTimeline(BaseModel):
    contract_id: uuid.UUID
    title: str
    currency: str
    client: str
    provider: str
    workflows: list[WorkflowRun]
    events: list[TimelineEvent]


# --- accounts ------------------------------------------------------------------------------------------


class UserAdminView(UserPublic):
    disabled_at: datetime | None
    email_verified_at: datetime | None
    second_factor: bool


class RoleChange(BaseModel):
    role: Literal["provider", "client", "support", "admin"]


class SessionPublic(BaseModel):
    """A web session, an API token or a device token of an account (never its secret)."""

    id: uuid.UUID
    kind: str
    name: str
    prefix: str
    address: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class OfferTerms(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    rate_cents: int = Field(ge=0, le=10**9, description="Hourly rate in cents")
    currency: str = Field(default="USD", min_length=3, max_length=3)
    weekly_limit_hours: int = Field(default=40, ge=MIN_WEEKLY_LIMIT_HOURS, le=MAX_WEEKLY_LIMIT_HOURS)
    manual_allowed: bool = False
    work_view: bool = True


class InvitationCreate(BaseModel):
    """A client invites a provider with an offer; an admin invites support or admin staff."""

    email: str = Field(max_length=254)
    role: Literal["provider", "support", "admin"] = "provider"
    offer: OfferTerms | None = None


class InvitationPublic(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    state: Literal["pending", "accepted", "declined", "withdrawn", "expired"]
    offer: dict | None
    contract_id: uuid.UUID | None
    created_at: datetime
    sent_at: datetime
    expires_at: datetime


class InvitationSent(BaseModel):
    """An invitation was mailed (``invitation``), or the address is a provider's already and the offer
    became a contract directly (``contract_id``)."""

    invitation: InvitationPublic | None
    contract_id: uuid.UUID | None


class DeviceStart(BaseModel):
    machine: str = Field(default="", max_length=100, description="Names the device token (the host name).")


class DeviceCodeIssued(BaseModel):
    device_code: str = Field(description="The agent's secret: poll /v1/device/token with it.")
    user_code: str = Field(description="What the person types at verification_uri.")
    verification_uri: str
    expires_in: int
    interval: int


class DevicePoll(BaseModel):
    device_code: str = Field(max_length=100)


class DeviceTokenIssued(BaseModel):
    token: str = Field(description="A device token, shown once.")
    user: UserPublic


class DeviceApprove(BaseModel):
    user_code: str = Field(max_length=20)


# --- statements, earnings, the guarantee fund (api/services/statements.py) ------------------------------


class StatementLinePublic(BaseModel):
    at: datetime
    kind: str = Field(description="funding, hold, hold_release, charge, …")
    contract_id: uuid.UUID | None
    week_start: datetime | None
    memo: str
    amount_cents: int = Field(description="What the line did to the available balance (negative: out)")
    held_change_cents: int = Field(description="What it did to the money held for weeks in progress")
    balance_cents: int = Field(description="Running available balance after the line")
    held_cents: int = Field(description="Running hold after the line")


class StatementPublic(BaseModel):
    client_id: uuid.UUID
    currency: str
    balance_cents: int
    held_cents: int
    owed_cents: int
    total_lines: int = Field(description="Lines in the whole statement (``lines`` may be the newest only)")
    lines: list[StatementLinePublic]


class EarningWeekPublic(BaseModel):
    contract_id: uuid.UUID
    title: str
    week_start: datetime
    iso_week: str
    status: str
    billable_minutes: int
    amount_cents: int
    charged_cents: int = Field(description="Paid by the client")
    guarantee_cents: int = Field(description="Paid by the guarantee fund")
    in_review_cents: int = Field(description="Billed, not yet paid by anyone")
    in_escrow_cents: int = Field(description="Paid, held for the security period")
    released_cents: int = Field(description="Released to the provider's available balance")
    invoice_number: int | None = None


class EarningContractPublic(BaseModel):
    contract_id: uuid.UUID
    title: str
    amount_cents: int
    in_review_cents: int
    in_escrow_cents: int
    released_cents: int


class EarningsPublic(BaseModel):
    provider_id: uuid.UUID
    currency: str
    in_review_cents: int
    in_escrow_cents: int
    available_cents: int = Field(description="The provider's available balance in the ledger")
    paid_out_cents: int = Field(description="What left the available balance (payouts to the provider)")
    released_cents: int
    weeks: list[EarningWeekPublic]
    contracts: list[EarningContractPublic]


class FundPositionPublic(BaseModel):
    currency: str
    paid_out_cents: int
    recovered_cents: int
    outstanding_cents: int
    balance_cents: int


# --- notifications --------------------------------------------------------------------------------------


class NotificationPublic(BaseModel):
    id: str
    kind: str
    title: str
    text: str
    deadline: str
    path: str
    created_at: datetime
    read: bool


class MarkedRead(BaseModel):
    marked: int


class BacklogRow(BaseModel):
    channel: str
    kind: str
    waiting: int
    failing: int
    oldest: datetime | None
    oldest_age_s: float | None
    last_error: str


class MailSenderState(BaseModel):
    last_success: str | None
    queue_length: int
    oldest_pending: str | None
    oldest_pending_age_s: float | None


class NotificationBacklog(BaseModel):
    backlog: list[BacklogRow]
    mail_sender: MailSenderState


class WebhookCreate(BaseModel):
    url: str = Field(min_length=1, max_length=500, description="https:// endpoint that receives deliveries")
    kinds: list[str] = Field(min_length=1, max_length=32, description="notification kinds to deliver")
    deployment: bool = Field(False, description="admins: every account's notifications of these kinds")


class DeliveryPublic(BaseModel):
    id: uuid.UUID
    kind: str
    created_at: datetime
    attempts: int
    last_status: int | None
    last_error: str
    delivered_at: datetime | None
    failed_at: datetime | None


class WebhookPublic(BaseModel):
    id: uuid.UUID
    url: str
    kinds: list[str]
    deployment: bool
    enabled: bool
    consecutive_failures: int
    disabled_reason: str
    created_at: datetime
    deliveries: list[DeliveryPublic] = Field(
        default_factory=list, description="the most recent, newest first"
    )


class WebhookIssued(WebhookPublic):
    secret: str = Field(description="signs every delivery (Workproof-Signature); shown only here")
