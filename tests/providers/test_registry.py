"""Choosing the provider from settings, and the in-process transport the emulator rides on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from starlette.types import Receive, Scope, Send

from reelforge.domain.upstream import ProviderTimeout, ProviderUnavailable
from reelforge.providers.openai import DEFAULT_BASE_URL, OpenAIProvider
from reelforge.providers.registry import EMULATOR_BASE_URL, build_provider, emulator_provider
from reelforge.settings import SettingsError

pytestmark = pytest.mark.anyio

MakeSettings = Callable[..., Any]


async def hanging_app(scope: Scope, receive: Receive, send: Send) -> None:
    await anyio.sleep_forever()


async def crashing_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("emulator bug")


def test_openai_needs_a_key(make_settings: MakeSettings) -> None:
    with pytest.raises(SettingsError, match="OPENAI_API_KEY"):
        build_provider(make_settings(provider="openai"))


async def test_openai_uses_the_configured_endpoint(make_settings: MakeSettings) -> None:
    default = build_provider(make_settings(provider="openai", openai_api_key="sk-x"))
    custom = build_provider(
        make_settings(
            provider="openai",
            openai_api_key="sk-x",
            openai_base_url="https://gateway.example/v1",
            openai_organization="org-1",
            openai_project="proj-1",
        )
    )
    try:
        assert isinstance(default, OpenAIProvider)
        assert isinstance(custom, OpenAIProvider)
        assert (default.name, default.base_url) == ("openai", DEFAULT_BASE_URL + "/")
        assert custom.base_url == "https://gateway.example/v1/"
    finally:
        await default.aclose()
        await custom.aclose()


def test_emulator_needs_the_app(make_settings: MakeSettings) -> None:
    with pytest.raises(ValueError, match="emulator app"):
        build_provider(make_settings())


async def test_emulator_is_mounted_in_process(make_settings: MakeSettings) -> None:
    provider = build_provider(make_settings(), emulator_app=hanging_app)
    try:
        assert provider.name == "emulator"
        assert isinstance(provider, OpenAIProvider)
        assert provider.base_url == EMULATOR_BASE_URL + "/"
    finally:
        await provider.aclose()


async def test_a_hung_in_process_app_times_out() -> None:
    provider = emulator_provider(hanging_app, timeout=0.2)
    started = time.perf_counter()
    try:
        with pytest.raises(ProviderTimeout):
            await provider.retrieve("video_1")
    finally:
        await provider.aclose()
    assert time.perf_counter() - started < 2


async def test_an_in_process_crash_is_a_500() -> None:
    provider = emulator_provider(crashing_app)
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await provider.retrieve("video_1")
    finally:
        await provider.aclose()
    assert caught.value.status == 500
