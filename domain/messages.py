"""Inputs and results of the workflows, their updates and activities (one type per message; docs/design.md, "Workflows").

Pydantic models carried by Temporal's pydantic data converter; only ``domain`` types, never table rows.
New fields get defaults, so histories written before them still replay.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.calendar import DeadlinePolicy
from domain.timesheet import Timesheet, WorkViewInterval

Role = Literal["provider", "client", "support", "admin"]
TimesheetStatus = Literal[
    "open",  # the week is running or before its edit cutoff
    "submitted",  # frozen; in the client's review window
    "approved",  # the client approved
    "auto_approved",  # the review deadline passed without a dispute
    "disputed",  # waiting for the provider's answer
    "in_support",  # contested (or unanswered): support resolves each entry
    "charged",  # the client paid; held for the security period
    "payout_review",  # the guarantee would pay more than the review threshold: support decides first
    "paid_by_guarantee",  # the client's charge failed: the guarantee fund paid the guaranteed part
    "unpaid",  # the charge failed and nothing was guaranteed
    "settled",  # released to the provider (or nothing was owed)
]
FINAL_STATUSES = ("settled",)
Resolution = Literal["provider", "client"]


class Actor(BaseModel):
    """Who asks: the API passes the authenticated user; the workflow checks it again."""

    user_id: str
    role: Role


class ContractTermsInput(BaseModel):
    contract_id: str
    client_id: str
    provider_id: str
    title: str = ""
    rate_cents: int
    currency: str
    weekly_limit_hours: int
    manual_allowed: bool
    work_view_on: bool
    accepted_at: datetime


class ContractState(BaseModel):
    """All of the contract workflow's state: also its continue-as-new argument."""

    terms: ContractTermsInput
    policy: DeadlinePolicy = Field(default_factory=DeadlinePolicy)
    next_weekly_limit_hours: int | None = None
    work_view: list[WorkViewInterval] = Field(default_factory=list)
    status: Literal["active", "ended"] = "active"
    ended_at: datetime | None = None
    weeks_started: list[str] = Field(default_factory=list)  # YYYY-MM-DD of each timesheet started
    weeks_unsettled: list[str] = Field(default_factory=list)


class WorkViewChange(BaseModel):
    actor: Actor
    on: bool


class WorkViewChanged(BaseModel):
    on: bool
    effective_at: datetime


class WeeklyLimitChange(BaseModel):
    actor: Actor
    weekly_limit_hours: int


class EndContract(BaseModel):
    actor: Actor
    reason: str = ""  # said to both parties (required by the pages; older messages have none)


class WeekSettled(BaseModel):
    week: str
    status: TimesheetStatus


class TimesheetInput(BaseModel):
    contract_id: str
    client_id: str
    provider_id: str
    week_start: datetime
    rate_cents: int
    currency: str
    weekly_limit_hours: int
    policy: DeadlinePolicy = Field(default_factory=DeadlinePolicy)
    contract_workflow_id: str = ""
    # How long one activity attempt may run before Temporal retries it elsewhere (after a worker crash
    # the retry waits this long).
    activity_timeout_s: int = 60
    # The shape of TimesheetWorkflow the week was started with. New weeks carry TIMESHEET_SHAPE; a week
    # started before this field existed reads 1 and replays as it ran. A change decided once, at start, is
    # versioned here instead of with ``workflow.patched``: no marker, and no TemporalChangeVersion
    # upsert, which costs the server a visibility write for every week (bench/settlement.py).
    shape: int = 1


# 2: no timer for a zero spread (shape 1 asked ``workflow.patched("no-timer-for-zero-spread")``).
# 3: the week is secured when it starts (a hold on the client's balance, then reserved credit), topped up
# at the freeze, and collected from the hold first; the guarantee never pays more than was secured, and a
# payout over the review threshold waits for support (shape 2 charged the balance at the end and the
# guarantee paid whatever the charge missed).
TIMESHEET_SHAPE = 3


class SecureInput(BaseModel):
    """Secure a contract-week up to ``target_cents``: hold the client's balance, then reserve credit."""

    contract_id: str
    client_id: str
    week_start: datetime
    currency: str
    target_cents: int
    stage: Literal["start", "freeze"]


class Security(BaseModel):
    """What is secured for a contract-week: money held from the client's balance and credit reserved."""

    held_cents: int = 0
    credit_cents: int = 0

    @property
    def secured_cents(self) -> int:
        return self.held_cents + self.credit_cents


class CollectInput(BaseModel):
    """Collect the week's money: from the hold first, the rest from the client's balance; release the
    unused hold and credit."""

    contract_id: str
    client_id: str
    provider_id: str
    week_start: datetime
    currency: str
    owed_cents: int
    guaranteed_cents: int


class Collection(BaseModel):
    """What collecting a week did, and what the guarantee may still pay (never above the credit
    secured for the guaranteed time the client did not pay)."""

    from_hold_cents: int
    from_balance_cents: int
    rest_failed: bool
    reason: str = ""
    guarantee_cap_cents: int = 0

    @property
    def collected_cents(self) -> int:
        return self.from_hold_cents + self.from_balance_cents


class DecidePayout(BaseModel):
    """Support's decision on a guarantee payout above the review threshold."""

    actor: Actor
    approve: bool
    reason: str


class PayoutReview(BaseModel):
    amount_cents: int
    deadline: datetime
    decision: Literal["approved", "refused", "deadline"] | None = None
    reason: str = ""
    decided_by: str = ""


class FreezeInput(BaseModel):
    contract_id: str
    week_start: datetime
    weekly_limit_hours: int


class SnapshotResult(BaseModel):
    timesheet: Timesheet
    content_hash: str


class Approve(BaseModel):
    actor: Actor


class Dispute(BaseModel):
    actor: Actor
    entry_ids: list[str]
    reason: str


class Respond(BaseModel):
    actor: Actor
    accept: bool
    note: str = ""


class Resolve(BaseModel):
    actor: Actor
    resolutions: dict[str, Resolution]
    note: str = ""


class ExtendDeadline(BaseModel):
    actor: Actor
    deadline: Literal["review", "response"]
    until: datetime
    reason: str


class ActionResult(BaseModel):
    """What an update answers: the timesheet's status after the action."""

    status: TimesheetStatus
    message: str = ""


class DisputeState(BaseModel):
    entry_ids: list[str]
    reason: str
    opened_by: str
    opened_at: datetime
    response_deadline: datetime
    response: Literal["accept", "contest", "silence"] | None = None
    response_note: str = ""
    resolutions: dict[str, Resolution] = Field(default_factory=dict)
    resolution_note: str = ""


class TimesheetView(BaseModel):
    """The timesheet workflow's query answer."""

    contract_id: str
    week_start: datetime
    status: TimesheetStatus
    edit_cutoff: datetime
    review_deadline: datetime
    content_hash: str | None = None
    amount_cents: int | None = None
    guaranteed_cents: int | None = None
    owed_cents: int | None = None
    charged_cents: int = 0
    guarantee_paid_cents: int = 0
    released_cents: int = 0
    dispute: DisputeState | None = None
    history: list[str] = Field(default_factory=list)
    secured: Security | None = None  # shape 3: what was held and reserved for the week
    payout_review: PayoutReview | None = None


class ChargeInput(BaseModel):
    key: str
    contract_id: str
    client_id: str
    provider_id: str
    week_start: datetime
    amount_cents: int
    currency: str


class ChargeResult(BaseModel):
    ok: bool
    transfer_id: str | None = None
    reason: str = ""


class PayoutInput(BaseModel):
    contract_id: str
    client_id: str
    provider_id: str
    week_start: datetime
    amount_cents: int
    currency: str


class ReleaseInput(BaseModel):
    key: str
    contract_id: str
    provider_id: str
    week_start: datetime
    amount_cents: int
    currency: str


class TransferResult(BaseModel):
    transfer_id: str
    amount_cents: int


class StatusRecord(BaseModel):
    contract_id: str
    week_start: datetime
    status: TimesheetStatus
    dispute: DisputeState | None = None


class Notify(BaseModel):
    kind: Literal[
        "timesheet_submitted",
        "review_closing",
        "dispute_opened",
        "dispute_answered",
        "dispute_resolved",
        "charge_failed",
        "guarantee_payout",
        "funds_released",
        "contract_ended",
    ]
    recipient_ids: list[str]
    contract_id: str
    week_start: datetime | None = None
    dedupe_key: str
    payload: dict[str, str | int | bool | None] = Field(default_factory=dict)


class WorkViewRecord(BaseModel):
    contract_id: str
    intervals: list[WorkViewInterval]


class ContractRecord(BaseModel):
    contract_id: str
    weekly_limit_hours: int | None = None
    next_weekly_limit_hours: int | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
