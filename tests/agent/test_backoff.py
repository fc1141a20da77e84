"""Retry waits: exponential, fully jittered, capped, and never shorter than the server's Retry-After."""

from __future__ import annotations

import random

import pytest

from agent.uploader import Backoff


def test_each_wait_is_uniform_between_zero_and_a_doubling_ceiling() -> None:
    for attempt in range(8):
        ceiling = min(60.0, 1.0 * 2**attempt)
        waits = []
        for seed in range(300):
            backoff = Backoff(base=1.0, cap=60.0, rng=random.Random(seed))
            backoff.failures = attempt
            waits.append(backoff.next_delay())
        assert all(0.0 <= wait <= ceiling for wait in waits)
        # Full jitter: the waits cover the whole range, not a band near the ceiling.
        assert min(waits) < ceiling * 0.1 and max(waits) > ceiling * 0.9


def test_the_ceiling_doubles_per_failure_up_to_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=10.0, rng=random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(backoff.ceiling())
        backoff.next_delay()
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_a_long_outage_does_not_overflow() -> None:
    backoff = Backoff(base=1.0, cap=300.0)
    backoff.failures = 10_000
    assert 0.0 <= backoff.next_delay() <= 300.0


def test_success_resets_the_backoff() -> None:
    backoff = Backoff(base=1.0, cap=60.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling() == 1.0


def test_retry_after_is_a_floor_for_the_wait() -> None:
    backoff = Backoff(base=1.0, cap=2.0, rng=random.Random(3))
    assert all(backoff.next_delay(retry_after=7.0) >= 7.0 for _ in range(20))


def test_a_nonsense_backoff_is_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)
