"""What a week's settlement owes: after approval, after a dispute, and what the guarantee covers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from domain.errors import InvalidInput
from domain.money import amount_for_minutes
from domain.timesheet import Timesheet, TimesheetEntry


@dataclass(frozen=True)
class Settlement:
    owed_minutes: int
    owed_cents: int
    guaranteed_minutes: int
    guaranteed_cents: int


def settle(timesheet: Timesheet, refunded_entry_ids: set[str] | frozenset[str] = frozenset()) -> Settlement:
    """The amount owed for the week without the refunded entries; each sum is rounded once."""
    kept = [e for e in timesheet.entries if e.entry_id not in refunded_entry_ids]
    owed = sum(e.billable_minutes for e in kept)
    guaranteed = sum(e.guaranteed_minutes for e in kept)
    return Settlement(
        owed_minutes=owed,
        owed_cents=amount_for_minutes(owed, timesheet.rate_cents),
        guaranteed_minutes=guaranteed,
        guaranteed_cents=amount_for_minutes(guaranteed, timesheet.rate_cents),
    )


@dataclass(frozen=True)
class Plan:
    """How a week's money is collected (see :func:`collection_plan`)."""

    from_hold_cents: int  # taken from the week's hold
    hold_released_cents: int  # the rest of the hold, back to the client's balance
    rest_cents: int  # to charge from the client's balance (may fail)
    guarantee_cap_cents: int  # what the guarantee may pay if the rest cannot be charged


def collection_plan(*, owed_cents: int, guaranteed_cents: int, held_cents: int, credit_cents: int) -> Plan:
    """The rule that bounds the guarantee by what was secured.

    The hold pays first; what it does not cover is charged to the client's balance. If that charge fails,
    the guarantee pays the guaranteed time the hold did not already pay for, but never more than the
    credit an admin granted and the week reserved: a client with nothing held and no credit creates no
    guaranteed exposure, whatever the rate."""
    for name, value in (("owed", owed_cents), ("guaranteed", guaranteed_cents), ("held", held_cents),
                        ("credit", credit_cents)):  # fmt: skip
        if value < 0:
            raise InvalidInput(f"{name} cents cannot be negative", "amount_invalid")
    if guaranteed_cents > owed_cents:
        raise InvalidInput("guaranteed cents cannot exceed owed cents", "amount_invalid")
    from_hold = min(owed_cents, held_cents)
    uncovered_guarantee = max(guaranteed_cents - from_hold, 0)
    return Plan(
        from_hold_cents=from_hold,
        hold_released_cents=held_cents - from_hold,
        rest_cents=owed_cents - from_hold,
        guarantee_cap_cents=min(uncovered_guarantee, credit_cents),
    )


def rule_resolution(entry: TimesheetEntry) -> str:
    """By the guarantee rules: documented time that meets them is owed to the provider; undocumented or
    manual time is refunded to the client."""
    return "provider" if entry.guaranteed_minutes > 0 else "client"


def check_disputable(timesheet: Timesheet, entry_ids: list[str]) -> list[str]:
    """The disputed entries, each in the snapshot and billed; refused otherwise with what to fix."""
    if not entry_ids:
        raise InvalidInput("choose at least one entry to dispute", "dispute_invalid")
    if len(set(entry_ids)) != len(entry_ids):
        raise InvalidInput("an entry is named twice in the dispute", "dispute_invalid")
    for entry_id in entry_ids:
        entry = timesheet.entry(entry_id)
        if entry is None:
            raise InvalidInput(f"entry {entry_id} is not in this week's timesheet", "dispute_invalid")
        if entry.billable_minutes == 0:
            raise InvalidInput(
                f"entry {entry_id} is not billed (over the weekly limit): nothing to dispute",
                "dispute_invalid",
            )
    return entry_ids


def check_resolutions(timesheet: Timesheet, disputed: list[str], resolutions: dict[str, str]) -> None:
    unknown = set(resolutions) - set(disputed)
    if unknown:
        raise InvalidInput(f"entries {sorted(unknown)} are not disputed", "resolution_invalid")
    for entry_id, side in resolutions.items():
        if side not in ("provider", "client"):
            raise InvalidInput(
                f"resolution for {entry_id} must be 'provider' or 'client'", "resolution_invalid"
            )
        entry = timesheet.entry(entry_id)
        if side == "provider" and entry is not None and rule_resolution(entry) == "client":
            reasons = ", ".join(entry.not_guaranteed_because) or "not documented"
            raise InvalidInput(
                f"entry {entry_id} is not documented time that meets the rules ({reasons}): "
                "the rules refund it to the client",
                "resolution_invalid",
            )


def spread_offset(key: str, spread_seconds: int) -> int:
    """A stable offset in [0, spread_seconds) for ``key``: spreads a Monday's herd of contract-weeks."""
    if spread_seconds <= 0:
        return 0
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) % spread_seconds
