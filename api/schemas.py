"""Public models: what responses show (never token hashes or object keys)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

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
    amount_cents: int = Field(gt=0, le=10**12)
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
    provider_id: uuid.UUID
    title: str = Field(min_length=1, max_length=200)
    rate_cents: int = Field(ge=0, le=10**9, description="Hourly rate in cents")
    currency: str = Field(default="USD", min_length=3, max_length=3)
    weekly_limit_hours: int = Field(default=40, ge=1, le=168)
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


class WorkViewToggle(BaseModel):
    on: bool


class WorkViewChangedPublic(BaseModel):
    on: bool
    effective_at: datetime


class WeeklyLimitUpdate(BaseModel):
    weekly_limit_hours: int = Field(ge=1, le=168)


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
    created_at: datetime


class ManualCreate(BaseModel):
    start: datetime
    end: datetime
    memo: str = Field(default="", max_length=10_000)


class ManualPublic(BaseModel):
    id: uuid.UUID
    contract_id: uuid.UUID
    week_start: datetime
    start: datetime
    end: datetime
    memo: str
    created_at: datetime
