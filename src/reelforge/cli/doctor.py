"""`reelforge doctor`: checks each part of this installation, says what is wrong with it and
the command or setting that fixes it. Runs here, on the settings, not over HTTP."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import typer

from reelforge.cli.console import output

if TYPE_CHECKING:
    from contextlib import AsyncExitStack

    from reelforge.runtime import Runtime
    from reelforge.settings import Settings

# How long one part may take to answer before doctor calls it unreachable.
SECONDS_EACH = 10.0


@dataclass(frozen=True)
class Finding:
    part: str
    ok: bool
    detail: str
    fix: str = ""


def doctor() -> None:
    """Check every part of this installation and say what fixes what is wrong.

    Configuration, database and migrations, storage, Redis, the provider and the workers;
    exit 1 if any is wrong.
    """
    import uvloop

    findings = uvloop.run(diagnose())
    for finding in findings:
        mark = "ok  " if finding.ok else "FAIL"
        output.print(
            f"{mark} {finding.part:<14} {finding.detail}",
            style=None if finding.ok else "red",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        if finding.fix:
            output.print(
                f"     {'':<13} fix: {finding.fix}", highlight=False, markup=False, soft_wrap=True
            )
    if not all(finding.ok for finding in findings):
        raise typer.Exit(1)


async def diagnose() -> list[Finding]:
    """Every part's finding, in the order a start-up needs them."""
    from reelforge.cli.startup import database_url_problem, provider_problem
    from reelforge.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        return [Finding("configuration", False, str(exc), "set the variables named above")]
    # A storage URL that can't be opened is the storage part's finding, below.
    problem = database_url_problem(settings) or await provider_problem(settings)
    if problem is not None:
        return [Finding("configuration", False, problem, "set the variables named above")]
    findings = [Finding("configuration", True, _summary(settings))]
    from contextlib import AsyncExitStack

    from reelforge.runtime import open_runtime

    async with AsyncExitStack() as stack:
        try:
            runtime = open_runtime(settings)
            unopened = None
        except (OSError, ValueError) as exc:
            # The store could not even be opened: say so, and check the rest without it.
            error = f"{type(exc).__name__}: {exc}"
            unopened = _storage_failed(settings.resolved_storage_url, error)
            runtime = open_runtime(settings.model_copy(update={"storage_url": "memory://"}))
        stack.push_async_callback(runtime.close)
        findings.append(await _database(runtime))
        migrated = await _migrations(runtime)
        findings.append(migrated)
        findings.append(unopened or await _storage(runtime))
        if runtime.redis is not None:
            findings.append(await _redis(runtime))
        findings.extend(await _providers(settings, stack))
        findings.append(await _workers(runtime, migrated.ok))
    return findings


def _summary(settings: Settings) -> str:
    database = settings.resolved_database_url.split("://")[0]
    return (
        f"database {database}, storage {settings.resolved_storage_url.split('://')[0]}, "
        f"provider {settings.provider.value}, "
        f"redis {'on' if settings.redis_url else 'off'}, "
        f"worker {'embedded' if settings.embedded_worker else 'separate'}"
    )


async def _attempt(action: Callable[[], Awaitable[object]]) -> str | None:
    """None when `action` succeeds in time, else why not."""
    import asyncio

    try:
        await asyncio.wait_for(action(), SECONDS_EACH)
    except TimeoutError:
        return f"no answer within {SECONDS_EACH:g} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


async def _database(runtime: Runtime) -> Finding:
    error = await _attempt(runtime.database.ping)
    if error is None:
        return Finding("database", True, "answers")
    return Finding(
        "database",
        False,
        error,
        "check REELFORGE_DATABASE_URL (or DATABASE_URL) and that the database server runs",
    )


async def _migrations(runtime: Runtime) -> Finding:
    from reelforge.db import migrate

    url = runtime.settings.resolved_database_url
    current: str | None = None

    async def read() -> None:
        nonlocal current
        current = await migrate.current_revision(url)

    error = await _attempt(read)
    head = migrate.head_revision()
    if error is not None:
        return Finding("migrations", False, f"cannot read the revision: {error}")
    if current != head:
        return Finding(
            "migrations",
            False,
            f"database at revision {current or 'base'}, the code needs {head}",
            "reelforge migrate",
        )
    return Finding("migrations", True, f"at head ({head})")


async def _storage(runtime: Runtime) -> Finding:
    from reelforge.storage.objects import TEMPORARY_PREFIX

    key = f"{TEMPORARY_PREFIX}/doctor-{secrets.token_hex(8)}"
    probe = secrets.token_bytes(64)

    async def round_trip() -> None:
        await runtime.storage.put(key, probe)
        try:
            if await runtime.storage.read(key) != probe:
                raise OSError("read back different bytes than were written")
        finally:
            await runtime.storage.delete(key)

    error = await _attempt(round_trip)
    if error is None:
        return Finding("storage", True, f"writes and reads {runtime.storage.url}")
    return _storage_failed(runtime.storage.url, error)


def _storage_failed(url: str, error: str) -> Finding:
    return Finding(
        "storage",
        False,
        f"{url}: {error}",
        "check REELFORGE_STORAGE_URL, that the directory or bucket exists and is writable, "
        "and the REELFORGE_S3_* credentials",
    )


async def _redis(runtime: Runtime) -> Finding:
    assert runtime.redis is not None
    error = await _attempt(runtime.redis.ping)
    if error is None:
        return Finding("redis", True, "answers")
    return Finding("redis", False, error, "check REELFORGE_REDIS_URL and that Redis runs")


# Each vendor's base-URL setting, and the variables to check when it fails.
_PROVIDER_SETTINGS = {
    "openai": ("openai_base_url", "REELFORGE_OPENAI_BASE_URL and OPENAI_API_KEY"),
    "fal": ("fal_base_url", "REELFORGE_FAL_BASE_URL and FAL_KEY"),
    "veo": ("gemini_base_url", "REELFORGE_GEMINI_BASE_URL and GEMINI_API_KEY"),
}


async def _providers(settings: Settings, stack: AsyncExitStack) -> list[Finding]:
    """One finding per configured provider, named as on `/ready`: `provider` for the default,
    `provider:NAME` for each other one in REELFORGE_PROVIDERS."""
    from reelforge.api.app import providers_for

    providers = providers_for(settings, stack)
    for provider in providers.values():
        stack.push_async_callback(provider.aclose)
    findings = []
    for index, (name, provider) in enumerate(providers.items()):
        part = "provider" if index == 0 else f"provider:{name}"
        base_url, variables = _PROVIDER_SETTINGS.get(
            name, ("", "the REELFORGE_EMULATOR_* settings")
        )
        where = getattr(settings, base_url, None) if base_url else "the built-in emulator"
        where = where or f"{name}'s default endpoint"
        error = await _attempt(provider.check)
        if error is None:
            findings.append(Finding(part, True, f"{name} at {where} answers"))
        else:
            fix = f"check {variables} (a key the endpoint accepts)"
            findings.append(Finding(part, False, f"{name} at {where}: {error}", fix))
    return findings


async def _workers(runtime: Runtime, migrated: bool) -> Finding:
    settings = runtime.settings
    if settings.embedded_worker:
        return Finding("workers", True, "embedded: `reelforge serve` runs the job engine")
    if not migrated:
        return Finding(
            "workers", False, "unknown until the database is migrated", "reelforge migrate"
        )
    silence = timedelta(seconds=settings.worker_silence_seconds or 60)
    error = await _attempt(lambda: runtime.heartbeats.check(silence))
    if error is None:
        return Finding("workers", True, f"a worker beat within {silence.seconds} s")
    return Finding(
        "workers",
        False,
        error.removeprefix("WorkersSilentError: "),
        "reelforge worker (as many as you like), or REELFORGE_EMBEDDED_WORKER=true",
    )
