"""What every command shares: the console, settings that fail politely, and a runtime to use.

Cheap to import (`--help` and the client commands load it): the settings, database and
runtime modules are imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from reelforge.runtime import Runtime
    from reelforge.settings import Settings

T = TypeVar("T")

console = Console(stderr=True)
output = Console()


def settings_or_exit(**overrides: object) -> Settings:
    from reelforge.settings import SettingsError, load_settings

    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


def run_with_runtime(action: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run `action` against the configured database and storage (the embedded one migrated
    first, as `serve` does); use-case and storage errors become a red line and exit status 1."""
    import uvloop

    from reelforge.db import migrate
    from reelforge.domain.errors import ConflictError, InputError, NotFoundError
    from reelforge.runtime import open_runtime
    from reelforge.storage import StorageError

    settings = settings_or_exit()

    async def main() -> T:
        if settings.is_embedded_database:
            await migrate.upgrade(settings.resolved_database_url)
        runtime = open_runtime(settings)
        try:
            return await action(runtime)
        finally:
            await runtime.close()

    try:
        return uvloop.run(main())
    except (InputError, NotFoundError, ConflictError, StorageError) as exc:
        console.print(str(exc), style="red", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
