"""Building the configured providers from settings, and mounting the emulator in-process."""

from __future__ import annotations

import anyio
import httpx2
import openai
from pydantic import SecretStr
from starlette.types import ASGIApp

from reelforge.domain import catalog
from reelforge.providers.base import Provider
from reelforge.providers.openai import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, OpenAIProvider
from reelforge.settings import ProviderName, Settings, SettingsError

# Never resolved: requests to it go through the ASGI transport, not the network.
EMULATOR_BASE_URL = "http://emulator.invalid/v1"
# The emulator's default accepts any Bearer key (a key is still required).
EMULATOR_API_KEY = "sk-reelforge-emulator"


class InProcessTransport(httpx2.AsyncBaseTransport):
    """`httpx2.ASGITransport`, plus what a network gives for free.

    - Timeouts: the ASGI transport ignores them, so a slow or hung emulator would hang the
      caller forever. The request's read timeout bounds the whole exchange here.
    - Crashes: an exception in the app becomes a 500, as it would across a socket, instead
      of escaping into the caller as a foreign exception type.

    The ASGI transport buffers each response body; the emulator's assets are small.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx2.ASGITransport(app=app, raise_app_exceptions=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        limit = (request.extensions.get("timeout") or {}).get("read")
        try:
            with anyio.fail_after(limit):
                return await self._inner.handle_async_request(request)
        except TimeoutError:
            raise httpx2.ReadTimeout(f"no answer within {limit} s", request=request) from None


def emulator_provider(
    emulator_app: ASGIApp,
    *,
    api_key: str = EMULATOR_API_KEY,
    timeout: float | httpx2.Timeout = DEFAULT_TIMEOUT,
) -> OpenAIProvider:
    """The OpenAI adapter pointed at an emulator app mounted in this process."""
    http_client = openai.DefaultAsyncHttpxClient(transport=InProcessTransport(emulator_app))
    return OpenAIProvider(
        spec=catalog.provider(ProviderName.EMULATOR),
        api_key=api_key,
        base_url=EMULATOR_BASE_URL,
        timeout=timeout,
        http_client=http_client,
    )


def build_providers(
    settings: Settings,
    *,
    emulator_app: ASGIApp | None = None,
    emulator_api_key: str | None = None,
) -> dict[str, Provider]:
    """Every configured provider by name, the default first; the caller closes each one.

    Raises SettingsError naming the first missing credential.
    """
    # Nothing connects when built, so one failing leaves nothing open.
    return {
        name.value: build_provider(
            settings, name=name, emulator_app=emulator_app, emulator_api_key=emulator_api_key
        )
        for name in settings.enabled_providers
    }


def build_provider(
    settings: Settings,
    *,
    name: ProviderName | None = None,
    emulator_app: ASGIApp | None = None,
    emulator_api_key: str | None = None,
) -> Provider:
    """The provider `name` (default: `settings.provider`); the caller owns it
    (`await provider.aclose()`).

    The emulator is passed in rather than imported: only the app factory and the CLI build
    it (DESIGN.md §2), with its own settings; pass `emulator_api_key` if those set a key.
    """
    name = name or settings.provider
    # The vendors' modules load only when configured: google-genai alone takes seconds to import,
    # which every process start (and /ready's start-up budget) would pay.
    if name is ProviderName.FAL:
        from reelforge.providers.fal import DEFAULT_BASE_URL as FAL_BASE_URL
        from reelforge.providers.fal import FalProvider

        return FalProvider(
            api_key=_required(settings.fal_api_key, "fal", "FAL_KEY"),
            base_url=settings.fal_base_url or FAL_BASE_URL,
            webhook_url=settings.fal_webhook_url,
        )
    if name is ProviderName.VEO:
        from reelforge.providers.veo import DEFAULT_BASE_URL as GEMINI_BASE_URL
        from reelforge.providers.veo import VeoProvider

        return VeoProvider(
            api_key=_required(settings.gemini_api_key, "veo", "GEMINI_API_KEY"),
            base_url=settings.gemini_base_url or GEMINI_BASE_URL,
        )
    if name is ProviderName.EMULATOR:
        if emulator_app is None:
            raise ValueError("REELFORGE_PROVIDER=emulator needs the emulator app to mount")
        return emulator_provider(emulator_app, api_key=emulator_api_key or EMULATOR_API_KEY)
    if settings.openai_api_key is None or not settings.openai_api_key.get_secret_value():
        raise SettingsError(
            "REELFORGE_PROVIDER=openai needs an API key: set OPENAI_API_KEY "
            "(or REELFORGE_OPENAI_API_KEY)"
        )
    return OpenAIProvider(
        spec=catalog.provider(ProviderName.OPENAI),
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url or DEFAULT_BASE_URL,
        organization=settings.openai_organization,
        project=settings.openai_project,
    )


def _required(key: SecretStr | None, provider: str, variable: str) -> str:
    if key is None or not key.get_secret_value():
        raise SettingsError(f"the {provider} provider needs an API key: set {variable}")
    return key.get_secret_value()
