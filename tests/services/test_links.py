"""Signed file URLs: one URL per file within an expiry step, each instance with its own secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from reelforge.domain.upstream import Variant
from reelforge.services.links import EXPIRY_STEP, FileLinks, LinkRefused

NOW = datetime(2026, 12, 5, 12, 0, 1, tzinfo=UTC)


def _query(url: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(url).query)
    return query["expires"][0], query["signature"][0]


def test_a_file_has_one_url_within_a_step_and_another_after_it() -> None:
    links = FileLinks("a" * 32, timedelta(hours=1))

    first = links.url("vid_1", Variant.VIDEO, NOW)
    assert links.url("vid_1", Variant.VIDEO, NOW + timedelta(seconds=1)) == first
    assert links.url("vid_1", Variant.THUMBNAIL, NOW) != first
    later = links.url("vid_1", Variant.VIDEO, NOW + EXPIRY_STEP)
    assert _query(later)[0] != _query(first)[0]
    for url, variant in ((first, Variant.VIDEO), (later, Variant.VIDEO)):
        expires, signature = _query(url)
        assert links.verify("vid_1", variant, expires, signature, NOW).video_id == "vid_1"


def test_urls_signed_by_one_secret_are_refused_by_another() -> None:
    ours, theirs = FileLinks("a" * 32, timedelta(hours=1)), FileLinks("b" * 32, timedelta(hours=1))

    url = ours.url("vid_1", Variant.VIDEO, NOW)
    assert theirs.url("vid_1", Variant.VIDEO, NOW) != url
    expires, signature = _query(url)
    with pytest.raises(LinkRefused) as refused:
        theirs.verify("vid_1", Variant.VIDEO, expires, signature, NOW)
    assert refused.value.field == "signature"
