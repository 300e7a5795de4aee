"""The `reelforge` command: serve, migrate and friends."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Annotated

import typer
import uvloop

from reelforge.cli.accounts import keys, users
from reelforge.cli.console import console, run_with_runtime, settings_or_exit
from reelforge.db import migrate as migrations
from reelforge.logs import configure_logging
from reelforge.runtime import Runtime
from reelforge.settings import ProviderName, Settings

app = typer.Typer(
    name="reelforge",
    help="Reelforge: self-hosted video generation speaking the OpenAI Videos protocol.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(users, name="users")
app.add_typer(keys, name="keys")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (REELFORGE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (REELFORGE_PORT).")] = None,
) -> None:
    """Run the API, studio and (embedded) worker on one server."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings_or_exit(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    if settings.is_embedded_database:
        uvloop.run(migrations.upgrade(settings.resolved_database_url))
    _ensure_first_admin()
    _preload(settings)
    console.print(f"Reelforge is serving on [bold]http://{settings.host}:{settings.port}[/bold]")
    Granian(
        target="reelforge.api.app:app_from_environment",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        # A worker process that dies (SIGKILL, the OOM killer) is started again instead of
        # stopping the whole server; the engine's leases hand its in-flight jobs on.
        respawn_failed_workers=True,
    ).serve()


def _preload(settings: Settings) -> None:
    """Import the app here, once: granian forks its workers, which then start without
    paying seconds of imports each (what keeps /ready within its start-up budget)."""
    import reelforge.api.app

    if settings.provider is ProviderName.EMULATOR:
        import reelforge.emulator.app
        import reelforge.emulator.render  # noqa: F401


def _ensure_first_admin() -> None:
    async def ensure(runtime: Runtime) -> None:
        settings = runtime.settings
        if await migrations.current_revision(settings.resolved_database_url) != (
            migrations.head_revision()
        ):
            console.print("[red]The database is not migrated: run `reelforge migrate` first.[/red]")
            raise typer.Exit(2)
        password = settings.admin_password.get_secret_value() if settings.admin_password else None
        generated = await runtime.accounts.ensure_first_admin(settings.admin_email, password)
        if generated is not None:
            console.print(
                f"Created the first admin [bold]{settings.admin_email}[/bold] with the one-time "
                f"password [bold]{generated}[/bold] (shown only now; change it with "
                "`reelforge users set-password`)."
            )

    run_with_runtime(ensure)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs stepped at once (REELFORGE_WORKER_CONCURRENCY).")
    ] = None,
) -> None:
    """Run the job engine on its own; start as many as you like against PostgreSQL."""
    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    if settings.provider is ProviderName.EMULATOR:
        console.print(
            "[yellow]The in-process emulator lives in this process only: with several "
            "processes, run `reelforge emulator` and point REELFORGE_PROVIDER=openai "
            "at it.[/yellow]"
        )
    uvloop.run(_work(settings, concurrency))


async def _work(settings: Settings, concurrency: int | None) -> None:
    from reelforge.api.app import provider_for
    from reelforge.runtime import open_runtime
    from reelforge.worker.runner import engine_for, run_until_signalled

    async with AsyncExitStack() as stack:
        provider = provider_for(settings, stack)
        runtime = open_runtime(settings, provider=provider)
        stack.push_async_callback(runtime.close)
        if settings.is_embedded_database:
            await migrations.upgrade(settings.resolved_database_url)
        engine = engine_for(runtime, provider, concurrency=concurrency)
        console.print(f"Reelforge worker {engine.owner} is running; Ctrl-C or SIGTERM drains it.")
        await run_until_signalled(engine)


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 4010,
) -> None:
    """Run the built-in Sora-protocol emulator on its own (settings: REELFORGE_EMULATOR_*)."""
    from pydantic import ValidationError

    from reelforge.emulator import server
    from reelforge.emulator.settings import EmulatorSettings

    try:
        EmulatorSettings()
    except ValidationError as exc:
        console.print(f"[red]invalid emulator settings:\n{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    console.print(
        f"The Reelforge emulator is serving the Videos API on [bold]http://{host}:{port}/v1[/bold]"
        " (docs/emulator.md)"
    )
    server.serve(host, port)


@app.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to the revision.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Only show the revision.")] = False,
) -> None:
    """Apply (or roll back) the database migrations."""
    settings = settings_or_exit()
    url = settings.resolved_database_url
    if not status:
        action = migrations.downgrade if down else migrations.upgrade
        uvloop.run(action(url, revision))
    current = uvloop.run(migrations.current_revision(url))
    head = migrations.head_revision()
    console.print(f"database at revision {current or 'base'} (head is {head})")


if __name__ == "__main__":
    app()
