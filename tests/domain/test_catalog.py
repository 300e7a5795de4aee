"""The capability catalog: defaults, allowed combinations, prices, errors naming the field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reelforge.domain.catalog import (
    PROVIDERS,
    CatalogError,
    Feature,
    Quality,
    Tier,
    provider,
    quality_of,
)
from reelforge.domain.errors import InputError


def test_defaults_follow_the_protocol() -> None:
    spec, size, seconds = provider("emulator").resolve(None, None, None)

    assert (spec.name, size, seconds) == ("sora-2", "720x1280", "4")


def test_dated_snapshots_resolve_to_their_family() -> None:
    spec, _, _ = provider("openai").resolve("sora-2-pro-2025-10-06", "1920x1080", "8")

    assert spec.name == "sora-2-pro"


@pytest.mark.parametrize(
    ("model", "size", "seconds", "param", "message"),
    [
        ("sora-3", None, None, "model", "Invalid value: 'sora-3'. Supported values are: 'sora-2'"),
        (
            "sora-2",
            "1920x1080",
            None,
            "size",
            "Invalid value: '1920x1080'. Supported values are: '720x1280' and '1280x720'.",
        ),
        (
            "sora-2",
            None,
            "10",
            "seconds",
            "Invalid value: '10'. Supported values are: '4', '8', '12', '16', and '20'.",
        ),
    ],
)
def test_unsupported_values_name_the_field_and_the_choices(
    model: str, size: str | None, seconds: str | None, param: str, message: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        provider("emulator").resolve(model, size, seconds)

    assert caught.value.param == param
    assert str(caught.value).startswith(message)


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(CatalogError) as caught:
        provider("runway")

    assert caught.value.param == "provider"
    assert set(caught.value.allowed) == set(PROVIDERS)


@pytest.mark.parametrize(
    ("model", "size", "seconds", "price"),
    [
        ("sora-2", "1280x720", "4", Decimal("0.40")),
        ("sora-2", "720x1280", "12", Decimal("1.20")),
        ("sora-2-pro", "1280x720", "8", Decimal("2.40")),
        ("sora-2-pro", "1792x1024", "4", Decimal("2.00")),
        ("sora-2-pro", "1080x1920", "20", Decimal("14.00")),
    ],
)
def test_price_is_per_second_by_resolution_tier(
    model: str, size: str, seconds: str, price: Decimal
) -> None:
    spec = provider("openai").model(model)

    assert spec.price(size, seconds) == price


def test_tiers_and_features() -> None:
    pro = provider("emulator").model("sora-2-pro")

    assert pro.tier("1024x1792") is Tier.P1024
    assert all(pro.supports(feature) for feature in Feature)


@pytest.mark.parametrize(
    ("model", "quality", "chosen"),
    [
        (None, None, "sora-2"),
        (None, "standard", "sora-2"),
        (None, "high", "sora-2-pro"),
        ("sora-2-pro", None, "sora-2-pro"),
        ("sora-2-pro", "high", "sora-2-pro"),
        ("sora-2-2025-12-08", "standard", "sora-2"),
        ("", "high", "sora-2-pro"),
    ],
)
def test_quality_chooses_the_model_when_none_is_named(
    model: str | None, quality: str | None, chosen: str
) -> None:
    assert provider("openai").model_of_quality(model, quality).name == chosen


def test_a_quality_the_model_lacks_or_no_tier_has_is_refused_naming_quality() -> None:
    spec = provider("emulator")

    with pytest.raises(InputError, match="sora-2 is a standard model") as disagree:
        spec.model_of_quality("sora-2", "high")
    with pytest.raises(CatalogError, match="'standard' and 'high'") as unknown:
        spec.model_of_quality(None, "ultra")

    assert (disagree.value.field, unknown.value.field) == ("quality", "quality")


def test_every_model_has_a_quality_tier() -> None:
    assert quality_of("openai", "sora-2-pro-2025-10-06") is Quality.HIGH
    assert quality_of("emulator", "sora-2") is Quality.STANDARD
    assert quality_of("gone", "sora-2") is None
    assert quality_of("openai", "veo-3") is None
