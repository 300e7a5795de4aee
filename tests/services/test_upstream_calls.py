"""Upstream calls counted per process and added up from the database, on both dialects."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from reelforge.db.engine import Database
from reelforge.db.stats import totals
from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import (
    ProviderNotFound,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from reelforge.services.upstream_calls import CountedProvider, UpstreamTally, outcome_code
from tests.support.api import runtime_of

pytestmark = pytest.mark.anyio


def test_an_outcome_is_upstream_s_status_or_what_went_wrong_on_the_way() -> None:
    assert outcome_code(ProviderRateLimited("slow down", status=429)) == "429"
    assert outcome_code(ProviderNotFound("gone", status=404)) == "404"
    assert outcome_code(ProviderTimeout("no answer")) == "timeout"
    assert outcome_code(ProviderUnavailable("refused")) == "unreachable"
    assert outcome_code(ValueError("a bug")) == "exception"


async def test_processes_write_running_totals_that_add_up(database: Database) -> None:
    first = UpstreamTally(database, "host:1")
    second = UpstreamTally(database, "host:2")
    for _ in range(3):
        first.record("openai", "retrieve", "ok")
    first.record("openai", "create", "429")
    second.record("openai", "retrieve", "ok")

    await first.flush()
    await second.flush()
    first.record("openai", "retrieve", "ok")
    await first.flush()
    await first.flush()  # nothing changed: nothing is counted twice

    figures = (await totals(database, utcnow())).upstream_calls
    assert figures == {("openai", "retrieve", "ok"): 5, ("openai", "create", "429"): 1}


async def test_a_counted_provider_counts_each_call_by_its_outcome(app: FastAPI) -> None:
    runtime = runtime_of(app)
    provider = runtime.providers["emulator"]
    assert isinstance(provider, CountedProvider)

    await provider.check()
    with pytest.raises(ProviderNotFound):
        await provider.retrieve("video_0000000000000000000000000000")
    await runtime.upstream_calls.flush()

    figures = (await totals(runtime.database, utcnow())).upstream_calls
    assert figures[("emulator", "check", "ok")] >= 1
    assert figures[("emulator", "retrieve", "404")] == 1
