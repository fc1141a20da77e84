"""When to capture: one uniformly random moment in every slot, from a cryptographic source.

Predictable moments would let anyone game the documentation (look busy at :05), so the moment comes
from the OS's CSPRNG (``secrets.SystemRandom``), not from a seedable PRNG. A slot joined late (tracking
starts or the laptop wakes at :20 of the :12 slot) gets its moment uniformly in what is left of it, so
the capture still documents that slot.

The moment is drawn from the slot minus a short margin at its end (a second at most): a thread woken a
few milliseconds late would otherwise date the capture in the next slot and leave this one empty.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.calendar import SLOT, as_utc, slot_start

_TICK = timedelta(microseconds=1)
MAX_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True)
class SlotPlan:
    slot_start: datetime
    slot_end: datetime
    moment: datetime  # slot_start <= moment < slot_end

    def contains(self, at: datetime) -> bool:
        return self.slot_start <= at < self.slot_end


class SlotScheduler:
    def __init__(self, slot_length: timedelta = SLOT, rng: random.Random | None = None) -> None:
        self.slot_length = slot_length
        self.margin = min(MAX_MARGIN, slot_length / 10)
        self.rng = rng or secrets.SystemRandom()

    def plan(self, now: datetime) -> SlotPlan:
        """The plan for the slot containing ``now``, its moment in [now, slot end - margin)."""
        now = as_utc(now)
        start = slot_start(now, self.slot_length)
        end = start + self.slot_length
        earliest = max(start, now)
        span = max(0.0, (end - self.margin - earliest).total_seconds())
        # random() is in [0, 1): the moment can never be the next slot's first instant; the clamp
        # guards against rounding to whole microseconds.
        moment = min(earliest + timedelta(seconds=self.rng.random() * span), end - _TICK)
        return SlotPlan(start, end, max(moment, earliest))

    def plan_after(self, previous: SlotPlan, now: datetime) -> SlotPlan:
        """The next slot after ``previous``: a whole slot if it has not begun, else what is left of it."""
        return self.plan(max(as_utc(now), previous.slot_end))
