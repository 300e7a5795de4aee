"""The polling schedule: growth, jitter bounds, upstream hints and the expiry pull-forward."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from reelforge.domain.schedule import (
    EXPIRY_FLOOR,
    EXPIRY_MARGIN,
    MAX_POLL,
    MAX_RETRY,
    next_check,
    poll_delay,
    retry_delay,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_polls_back_off_up_to_a_ceiling() -> None:
    rng = random.Random(1)
    delays = [poll_delay(n, rng) for n in range(30)]

    assert delays[0] < timedelta(seconds=1.3)
    assert delays[8] > delays[0] * 5
    assert max(delays) <= MAX_POLL * 1.2


@given(st.integers(0, 1000), st.integers(0, 2**32))
def test_delays_stay_within_their_bounds(attempt: int, seed: int) -> None:
    rng = random.Random(seed)
    assert timedelta(0) < poll_delay(attempt, rng) <= MAX_POLL * 1.2
    assert timedelta(0) < retry_delay(attempt, rng) <= MAX_RETRY


def test_jitter_spreads_jobs_started_together() -> None:
    rng = random.Random(7)
    assert len({poll_delay(3, rng) for _ in range(20)}) == 20


def test_upstream_hints_are_honoured() -> None:
    delay = timedelta(seconds=1)

    assert next_check(NOW, delay, poll_after_ms=5000) == NOW + timedelta(seconds=5)
    assert next_check(NOW, delay, retry_after=12) == NOW + timedelta(seconds=12)
    assert next_check(NOW, timedelta(seconds=20), poll_after_ms=10) == NOW + timedelta(seconds=20)


def test_the_check_moves_before_expiry() -> None:
    expires = NOW + timedelta(minutes=6)

    due = next_check(NOW, timedelta(minutes=30), retry_after=3600, expires_at=expires)

    assert due == expires - EXPIRY_MARGIN


def test_inside_the_expiry_margin_calls_are_still_spaced() -> None:
    soon = NOW + timedelta(minutes=1)

    assert next_check(NOW, timedelta(minutes=1), expires_at=soon) == NOW + EXPIRY_FLOOR
    assert next_check(NOW, timedelta(seconds=1), expires_at=soon) == NOW + timedelta(seconds=1)
