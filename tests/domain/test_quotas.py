"""Quota policies: limits the database can hold, refused by name otherwise."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reelforge.domain.errors import InputError
from reelforge.domain.quotas import MAX_VIDEOS_PER_PERIOD, QuotaPolicy


def test_a_video_quota_beyond_the_column_is_refused_naming_it() -> None:
    assert QuotaPolicy(MAX_VIDEOS_PER_PERIOD, 30, None).max_videos == MAX_VIDEOS_PER_PERIOD
    for bad in (-1, MAX_VIDEOS_PER_PERIOD + 1, 1841339882729):
        with pytest.raises(InputError) as refused:
            QuotaPolicy(bad, 30, Decimal(1))
        assert refused.value.field == "max_videos"
