"""Everything `serve` and `worker` check before they start or print anything: settings, the
URLs the database and storage are opened from, the provider's own settings, and what the
provider is built from. One message, exit status 2."""

from __future__ import annotations

import typer

from reelforge.cli.console import console, settings_or_exit
from reelforge.settings import ProviderName, Settings


def checked_settings(**overrides: object) -> Settings:
    """The settings, with the provider they name buildable; else the reason and exit 2."""
    import uvloop

    settings = settings_or_exit(**overrides)
    problem = adapter_problem(settings) or uvloop.run(provider_problem(settings))
    if problem is not None:
        console.print(f"invalid settings:\n  {problem}", style="red", highlight=False, markup=False)
        raise typer.Exit(2)
    return settings


def adapter_problem(settings: Settings) -> str | None:
    """Why the database or storage URL can't be opened, naming the variable; None when both
    can (nothing is contacted: that is `doctor`'s and `/ready`'s business)."""
    return database_url_problem(settings) or storage_url_problem(settings)


def database_url_problem(settings: Settings) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(settings.resolved_database_url)
    except (ArgumentError, ValueError) as exc:
        return f"REELFORGE_DATABASE_URL or DATABASE_URL: not a database URL ({exc})"
    return None


def storage_url_problem(settings: Settings) -> str | None:
    from reelforge.storage import open_storage

    try:
        open_storage(
            settings.resolved_storage_url,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
        )
    except (ValueError, OSError) as exc:
        return f"REELFORGE_STORAGE_URL: {exc}"
    return None


async def provider_problem(settings: Settings) -> str | None:
    """Why any configured provider (the default and every one in REELFORGE_PROVIDERS) can't be
    built, naming the variables; None when all can."""
    problems = [await _one_provider_problem(settings, name) for name in settings.enabled_providers]
    found = [problem for problem in problems if problem is not None]
    return "\n  ".join(found) if found else None


async def _one_provider_problem(settings: Settings, name: ProviderName) -> str | None:
    from pydantic import ValidationError

    if name is ProviderName.EMULATOR:
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
        provider = build_provider(settings, name=name)
    except SettingsError as exc:
        return str(exc)
    await provider.aclose()
    return None
