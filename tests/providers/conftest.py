"""Provider fixtures: the OpenAI adapter against a scripted transport or the real emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest

from reelforge.domain import catalog
from reelforge.providers.openai import OpenAIProvider

Handler = Callable[[httpx2.Request], Awaitable[httpx2.Response] | httpx2.Response]

BASE_URL = "http://upstream.test/v1"


@dataclass
class Scripted:
    """An OpenAIProvider whose upstream is `handler`; every request it saw is in `requests`."""

    provider: OpenAIProvider
    requests: list[httpx2.Request] = field(default_factory=list)


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Scripted]]:
    made: list[OpenAIProvider] = []

    def make(handler: Handler, **options: Any) -> Scripted:
        seen: list[httpx2.Request] = []

        async def record(request: httpx2.Request) -> httpx2.Response:
            seen.append(request)
            answer = handler(request)
            return answer if isinstance(answer, httpx2.Response) else await answer

        client = httpx2.AsyncClient(transport=httpx2.MockTransport(record))
        provider = OpenAIProvider(
            spec=catalog.provider("openai"),
            api_key="sk-test",
            base_url=BASE_URL,
            http_client=client,
            **options,
        )
        made.append(provider)
        return Scripted(provider, seen)

    yield make
    for provider in made:
        await provider.aclose()


# --- the real emulator, mounted in-process --------------------------------------------------


@dataclass
class Upstream:
    """A running emulator app, the provider pointed at it, and its control surface."""

    app: Any
    provider: OpenAIProvider
    control: httpx2.AsyncClient

    async def faults(self, **changes: Any) -> None:
        answer = await self.control.put("/_emulator/faults", json=changes)
        assert answer.status_code == 200, answer.text

    async def ledger(self) -> list[dict[str, Any]]:
        answer = await self.control.get("/_emulator/ledger")
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()["data"]
        return rows

    async def calls(self, route: str) -> int:
        answer = await self.control.get("/_emulator/stats")
        assert answer.status_code == 200, answer.text
        count: int = answer.json()["calls"].get(route, 0)
        return count


@pytest.fixture
async def make_upstream() -> AsyncIterator[Callable[..., Awaitable[Upstream]]]:
    """`await make_upstream(client_key=…, timeout=…, **emulator_settings)`."""
    # Imported here so the scripted tests still run while the emulator is being changed.
    from reelforge.emulator.app import create_emulator_app
    from reelforge.emulator.settings import EmulatorSettings
    from reelforge.providers.registry import EMULATOR_API_KEY, emulator_provider

    started: list[Upstream] = []

    async def make(
        *, client_key: str = EMULATOR_API_KEY, timeout: float = 10.0, **settings: Any
    ) -> Upstream:
        settings.setdefault("poll_after_ms", 20)
        app = create_emulator_app(EmulatorSettings(_env_file=None, **settings))
        # The control surface wants the emulator's own key when it has one.
        key = settings.get("api_key") or client_key
        control = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            base_url="http://emulator.invalid",
            headers={"authorization": f"Bearer {key}"},
        )
        upstream = Upstream(
            app, emulator_provider(app, api_key=client_key, timeout=timeout), control
        )
        started.append(upstream)
        return upstream

    yield make
    for upstream in started:
        await upstream.provider.aclose()
        await upstream.control.aclose()
        upstream.app.state.emulator.close()


@pytest.fixture
async def upstream(make_upstream: Callable[..., Awaitable[Upstream]]) -> Upstream:
    return await make_upstream()
