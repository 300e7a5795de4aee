"""The `reelforge` command: serve, migrate and friends."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from reelforge.db import migrate as migrations
from reelforge.logs import configure_logging
from reelforge.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="reelforge",
    help="Reelforge: self-hosted video generation speaking the OpenAI Videos protocol.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (REELFORGE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (REELFORGE_PORT).")] = None,
) -> None:
    """Run the API, studio and (embedded) worker on one server."""
    from granian import Granian
    from granian.constants import Interfaces

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = _settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    if settings.is_embedded_database:
        asyncio.run(migrations.upgrade(settings.resolved_database_url))
    console.print(f"Reelforge is serving on [bold]http://{settings.host}:{settings.port}[/bold]")
    Granian(
        target="reelforge.api.app:app_from_environment",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
    ).serve()


@app.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to the revision.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Only show the revision.")] = False,
) -> None:
    """Apply (or roll back) the database migrations."""
    settings = _settings()
    url = settings.resolved_database_url
    if not status:
        action = migrations.downgrade if down else migrations.upgrade
        asyncio.run(action(url, revision))
    current = asyncio.run(migrations.current_revision(url))
    head = migrations.head_revision()
    console.print(f"database at revision {current or 'base'} (head is {head})")


if __name__ == "__main__":
    app()
