"""Everything `serve` and `worker` check before they start or print anything: settings, the
provider's own settings, and what the provider is built from. One message, exit status 2."""

from __future__ import annotations

import typer

from reelforge.cli.console import console, settings_or_exit
from reelforge.settings import ProviderName, Settings


def checked_settings(**overrides: object) -> Settings:
    """The settings, with the provider they name buildable; else the reason and exit 2."""
    import uvloop

    settings = settings_or_exit(**overrides)
    problem = uvloop.run(provider_problem(settings))
    if problem is not None:
        console.print(f"invalid settings:\n  {problem}", style="red", highlight=False, markup=False)
        raise typer.Exit(2)
    return settings


async def provider_problem(settings: Settings) -> str | None:
    """Why the configured provider can't be built, naming the variable; None when it can."""
    from pydantic import ValidationError

    if settings.provider is ProviderName.EMULATOR:
        from reelforge.emulator.settings import ENV_PREFIX, EmulatorSettings

        try:
            EmulatorSettings()
        except ValidationError as exc:
            return "\n  ".join(
                f"{ENV_PREFIX}{'.'.join(map(str, error['loc'])).upper()}: {error['msg']} "
                f"(got {error['input']!r})"
                for error in exc.errors()
            )
        return None
    from reelforge.providers.registry import build_provider
    from reelforge.settings import SettingsError

    try:
        provider = build_provider(settings)
    except SettingsError as exc:
        return str(exc)
    await provider.aclose()
    return None
