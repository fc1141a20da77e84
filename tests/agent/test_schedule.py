"""The slot schedule: exactly one capture per slot, at a random moment inside it, none while paused."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from agent.api import Contract
from agent.config import Credentials, Settings
from agent.errors import NotLoggedIn
from agent.queue import CaptureQueue, QueuedCapture
from agent.schedule import SlotScheduler
from agent.tracker import Tracker
from agent.uploader import Backoff, Uploader
from domain.calendar import slot_start

SHORT_SLOT = timedelta(seconds=0.3)


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_the_moment_lies_inside_the_slot_even_at_the_extremes() -> None:
    now = datetime(2026, 11, 23, 9, 12, tzinfo=UTC)
    for value in (0.0, 0.5, 0.999999999):
        plan = SlotScheduler(rng=FixedRandom(value)).plan(now)
        assert plan.slot_start == datetime(2026, 11, 23, 9, 12, tzinfo=UTC)
        assert plan.slot_end == datetime(2026, 11, 23, 9, 24, tzinfo=UTC)
        # A second is kept free at the end, so a slightly late wake-up still lands in the slot.
        assert plan.slot_start <= plan.moment <= plan.slot_end - timedelta(seconds=1)


def test_joining_in_the_last_instant_of_a_slot_captures_at_once() -> None:
    now = datetime(2026, 11, 23, 9, 23, 59, 900000, tzinfo=UTC)
    assert SlotScheduler(rng=FixedRandom(0.7)).plan(now).moment == now


def test_slots_fall_on_the_twelve_minute_marks_of_the_hour() -> None:
    plan = SlotScheduler().plan(datetime(2026, 11, 23, 9, 59, 59, tzinfo=UTC))
    assert plan.slot_start == datetime(2026, 11, 23, 9, 48, tzinfo=UTC)
    following = SlotScheduler().plan_after(plan, datetime(2026, 11, 23, 9, 59, 59, 500000, tzinfo=UTC))
    assert following.slot_start == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert following.slot_start <= following.moment < following.slot_end


def test_a_slot_joined_late_gets_its_moment_in_what_is_left_of_it() -> None:
    joined = datetime(2026, 11, 23, 9, 21, tzinfo=UTC)  # 9 of the slot's 12 minutes are gone
    moments = [SlotScheduler(rng=random.Random(seed)).plan(joined).moment for seed in range(200)]
    assert all(joined <= moment < datetime(2026, 11, 23, 9, 23, 59, tzinfo=UTC) for moment in moments)
    assert max(moments) - min(moments) > timedelta(
        minutes=2
    )  # spread over the rest, not bunched at the start


def test_moments_are_uniform_over_the_slot() -> None:
    scheduler = SlotScheduler(rng=random.Random(7))
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    usable = timedelta(minutes=12) - scheduler.margin
    fractions = [(scheduler.plan(start).moment - start) / usable for _ in range(4000)]
    quarters = Counter(min(int(fraction * 4), 3) for fraction in fractions)
    assert all(900 < quarters[q] < 1100 for q in range(4)), quarters


def test_the_default_source_of_moments_is_the_operating_systems_csprng() -> None:
    assert isinstance(SlotScheduler().rng, secrets.SystemRandom)


def test_the_next_slot_after_a_slow_capture_is_joined_late_not_skipped() -> None:
    scheduler = SlotScheduler(rng=FixedRandom(0.0))
    plan = scheduler.plan(datetime(2026, 11, 23, 9, 23, 59, tzinfo=UTC))
    late = datetime(2026, 11, 23, 9, 24, 30, tzinfo=UTC)  # the capture took until after the slot's end
    following = scheduler.plan_after(plan, late)
    assert following.slot_start == datetime(2026, 11, 23, 9, 24, tzinfo=UTC)
    assert following.moment == late


# -- the Tracker with a short slot ----------------------------------------------------------------------


class StillScreen:
    """A screen that shows the same small picture: the capture path without a display server."""

    name = "still"

    def frames(self) -> Iterator[Image.Image]:
        yield Image.new("RGB", (64, 48), (40, 90, 160))


def offline_tracker(
    tmp_path: Path, *, work_view: bool = True, lookup: Callable[[str], Contract | None] | None = None
) -> Tracker:
    queue = CaptureQueue(tmp_path / "queue", limit_bytes=2**30)

    def no_credentials() -> Credentials:
        raise NotLoggedIn("not logged in")

    uploader = Uploader(queue, no_credentials, tmp_path / "uploader.json", backoff=Backoff(0.1, 0.2))
    contract = Contract(
        id="contract-1",
        title="Site",
        status="active",
        work_view_on=work_view,
        rate_cents=2500,
        currency="USD",
        weekly_limit_hours=40,
    )
    return Tracker(
        contract=contract,
        memo="checkout page",
        settings=Settings(thumbnails=False),
        queue=queue,
        uploader=uploader,
        scheduler=SlotScheduler(SHORT_SLOT),
        backend=StillScreen(),
        lookup_contract=lookup,
    )


def run_in_background(tracker: Tracker) -> threading.Thread:
    thread = threading.Thread(target=tracker.run, daemon=True)
    thread.start()
    return thread


def slots_of(items: list[QueuedCapture]) -> list[datetime]:
    return [slot_start(item.meta.captured_at, SHORT_SLOT) for item in items]


def test_n_slots_give_n_captures_each_inside_its_own_slot(tmp_path: Path) -> None:
    tracker = offline_tracker(tmp_path)
    started = datetime.now(UTC)
    thread = run_in_background(tracker)
    time.sleep(SHORT_SLOT.total_seconds() * 7)
    tracker.stop()
    thread.join(timeout=5)
    stopped = datetime.now(UTC)

    items = tracker.queue.pending()
    slots = slots_of(items)
    # The first slot is the one tracking started in (joined late), then every slot after it. A slot
    # can only be missing if the machine stalled past its end, and then it is reported as missed.
    assert slots[0] == slot_start(started, SHORT_SLOT)
    visited = round((slots[-1] - slots[0]) / SHORT_SLOT) + 1
    assert len(set(slots)) == len(slots), "two captures in one slot"
    assert visited - len(slots) == tracker.counters.missed <= 1
    expected = {slot_start(started, SHORT_SLOT) + i * SHORT_SLOT for i in range(8)}
    assert len(items) >= 5 and set(slots) <= expected
    assert all(started <= item.meta.captured_at <= stopped for item in items)
    assert all(item.meta.kind == "screenshot" and item.meta.memo == "checkout page" for item in items)


def test_pausing_skips_the_slots_whose_moment_falls_in_the_pause(tmp_path: Path) -> None:
    tracker = offline_tracker(tmp_path)
    thread = run_in_background(tracker)
    time.sleep(SHORT_SLOT.total_seconds() * 2.5)
    tracker.pause()
    paused_at = datetime.now(UTC)
    time.sleep(SHORT_SLOT.total_seconds() * 4)
    resumed_at = datetime.now(UTC)
    tracker.resume()
    time.sleep(SHORT_SLOT.total_seconds() * 3)
    tracker.stop()
    thread.join(timeout=5)

    items = tracker.queue.pending()
    assert not [item for item in items if paused_at <= item.meta.captured_at <= resumed_at]
    # Slots wholly inside the pause have no capture; the slots around it still have exactly one.
    slots = Counter(slots_of(items))
    assert max(slots.values()) == 1
    first_full_paused = slot_start(paused_at, SHORT_SLOT) + SHORT_SLOT
    assert first_full_paused not in slots and first_full_paused + SHORT_SLOT not in slots
    assert tracker.counters.skipped_paused >= 3
    assert any(item.meta.captured_at > resumed_at for item in items)


def test_with_work_view_off_each_slot_is_tracked_with_the_memo_and_no_image(tmp_path: Path) -> None:
    tracker = offline_tracker(tmp_path, work_view=False)
    thread = run_in_background(tracker)
    time.sleep(SHORT_SLOT.total_seconds() * 3.5)
    tracker.set_memo("reviewing PRs")
    time.sleep(SHORT_SLOT.total_seconds() * 2.5)
    tracker.stop()
    thread.join(timeout=5)

    items = tracker.queue.pending()
    assert len(items) >= 4
    assert all(item.meta.kind == "tracked" and item.images == [] for item in items)
    memos = [item.meta.memo for item in items]
    # The new memo applies from the next capture on, and never goes back.
    switch = memos.index("reviewing PRs")
    assert set(memos[:switch]) == {"checkout page"} and set(memos[switch:]) == {"reviewing PRs"}


def test_work_view_switched_off_takes_effect_from_the_next_slot_and_back(tmp_path: Path) -> None:
    work_view = {"on": True}

    def lookup(contract_id: str) -> Contract:
        return Contract(
            id=contract_id,
            title="Site",
            status="active",
            work_view_on=work_view["on"],
            rate_cents=2500,
            currency="USD",
            weekly_limit_hours=40,
        )

    tracker = offline_tracker(tmp_path, lookup=lookup)
    thread = run_in_background(tracker)
    time.sleep(SHORT_SLOT.total_seconds() * 2.5)
    work_view["on"] = False
    time.sleep(SHORT_SLOT.total_seconds() * 3)
    work_view["on"] = True
    time.sleep(SHORT_SLOT.total_seconds() * 3)
    tracker.stop()
    thread.join(timeout=5)

    kinds = [item.meta.kind for item in tracker.queue.pending()]
    # Screenshots, then tracked slots without images while it is off, then screenshots again.
    collapsed = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]
    assert collapsed == ["screenshot", "tracked", "screenshot"], kinds
    assert all(item.images == [] for item in tracker.queue.pending() if item.meta.kind == "tracked")


@pytest.mark.parametrize("seconds", ["0", "abc", "1000"])
def test_an_invalid_test_slot_length_is_refused(seconds: str) -> None:
    from agent.config import slot_length
    from agent.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="WORKPROOF_AGENT_SLOT_SECONDS"):
        slot_length({"WORKPROOF_AGENT_SLOT_SECONDS": seconds})


def test_the_test_slot_length_replaces_twelve_minutes() -> None:
    from agent.config import slot_length

    assert slot_length({}) == timedelta(minutes=12)
    assert slot_length({"WORKPROOF_AGENT_SLOT_SECONDS": "2"}) == timedelta(seconds=2)
