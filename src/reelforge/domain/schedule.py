"""When to look at a job next: backoff with jitter, upstream's hints, and the expiry deadline."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

FIRST_POLL = timedelta(seconds=1)
MAX_POLL = timedelta(seconds=30)
MAX_RETRY = timedelta(minutes=10)
# Archive this long before upstream deletes the outputs, whatever the backoff says.
EXPIRY_MARGIN = timedelta(minutes=5)
# Even when expiry is close, calls are spaced at least this much (or the delay, if shorter).
EXPIRY_FLOOR = timedelta(seconds=2)


def poll_delay(polls: int, rng: random.Random) -> timedelta:
    """Exponential backoff with jitter for a job in progress: ~1 s, 1.5 s, 2.3 s … ≤ 30 s.

    Jitter spreads the checks of jobs started together, so they don't poll in lockstep.
    """
    growth: float = 1.5 ** min(polls, 40)
    base = min(FIRST_POLL * growth, MAX_POLL)
    return base * rng.uniform(0.8, 1.2)


def retry_delay(failures: int, rng: random.Random) -> timedelta:
    """Backoff after a failed upstream call: 2 s, 4 s, 8 s … ≤ 10 min, with full jitter."""
    growth: int = 2 ** min(failures, 20)
    ceiling = min(timedelta(seconds=2) * growth, MAX_RETRY)
    return ceiling * rng.uniform(0.5, 1.0)


def next_check(
    now: datetime,
    delay: timedelta,
    *,
    poll_after_ms: int | None = None,
    retry_after: float | None = None,
    expires_at: datetime | None = None,
) -> datetime:
    """`now + delay`, never sooner than upstream asked, never later than expiry allows."""
    wait = delay
    if poll_after_ms is not None:
        wait = max(wait, timedelta(milliseconds=poll_after_ms))
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    due = now + wait
    if expires_at is not None:
        floor = now + min(wait, EXPIRY_FLOOR)
        due = min(due, max(floor, expires_at - EXPIRY_MARGIN))
    return due
