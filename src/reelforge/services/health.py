"""Readiness: ask every part of the running system whether it answers, each by name."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

Check = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    ms: float
    error: str | None = None


async def _run(name: str, check: Check, seconds_each: float) -> CheckResult:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), seconds_each)
    except TimeoutError:
        error: str | None = f"no answer within {seconds_each:g} s"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = None
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    return CheckResult(name=name, ok=error is None, ms=elapsed, error=error)


async def readiness(checks: Mapping[str, Check], seconds_each: float = 3.0) -> list[CheckResult]:
    """Run all checks at once; each gets `seconds_each` seconds."""
    return list(
        await asyncio.gather(*(_run(name, check, seconds_each) for name, check in checks.items()))
    )
