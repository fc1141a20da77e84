"""What the agent and the server say to each other, defined once and imported by both sides (the agent
ships with ``domain`` and nothing server-side): the ``meta`` of a capture upload and a contract as the
API lists it. New fields get defaults, so an older agent and a newer server still understand each other."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CaptureKind = Literal["screenshot", "tracked"]
CaptureSource = Literal["agent", "browser"]  # what took it: the desktop agent or the browser tracker page
MAX_INPUT_EVENTS = 10_000_000  # per capture: far beyond what a person types or moves in 12 minutes


class CaptureMeta(BaseModel):
    """The ``meta`` part of a capture upload: the agent writes it, the server validates it."""

    capture_id: uuid.UUID
    captured_at: datetime
    memo: str = ""
    kind: CaptureKind = "screenshot"
    keyboard_events: int | None = Field(default=None, ge=0, le=MAX_INPUT_EVENTS)
    mouse_events: int | None = Field(default=None, ge=0, le=MAX_INPUT_EVENTS)
    # An older agent sends no source: it is the agent. The browser tracker counts no keys or mouse.
    source: CaptureSource = "agent"


class ContractSummary(BaseModel):
    """A contract as the API lists it (``GET /v1/contracts``) and the agent reads and caches it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    title: str = ""
    status: str = ""
    work_view_on: bool = True
    rate_cents: int = 0
    currency: str = ""
    weekly_limit_hours: int = 0
    client_id: str = ""
    provider_id: str = ""

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> ContractSummary:
        return cls.model_validate(raw)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
