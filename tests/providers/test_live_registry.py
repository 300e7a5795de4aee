"""Building several providers from settings, each with its own credentials."""

from __future__ import annotations

from typing import Any

import pytest

from reelforge.providers.fal import FalProvider
from reelforge.providers.registry import build_providers
from reelforge.providers.veo import VeoProvider
from reelforge.settings import SettingsError

pytestmark = pytest.mark.anyio


async def test_every_configured_provider_is_built_default_first(make_settings: Any) -> None:
    settings = make_settings(
        provider="veo", providers="fal, veo", fal_api_key="fk", gemini_api_key="gk"
    )
    providers = build_providers(settings)
    try:
        assert list(providers) == ["veo", "fal"]
        assert isinstance(providers["veo"], VeoProvider)
        assert isinstance(providers["fal"], FalProvider)
    finally:
        for provider in providers.values():
            await provider.aclose()


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"providers": "fal"}, "FAL_KEY"),
        ({"providers": "veo"}, "GEMINI_API_KEY"),
    ],
)
def test_a_missing_key_names_its_variable(
    make_settings: Any, overrides: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        build_providers(make_settings(**overrides), emulator_app=object())  # type: ignore[arg-type]


def test_an_unknown_provider_name_is_refused(make_settings: Any) -> None:
    with pytest.raises(ValueError, match="unknown provider 'runway'"):
        make_settings(providers="fal,runway")
