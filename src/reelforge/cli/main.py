"""The `reelforge` command: serve, migrate and friends, and the client commands.

Only typer, rich and the command modules load before a command runs: each command imports
what it needs (the app, the database, the settings) itself, so `--help` and the client
commands start quickly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelforge.cli import client, doctor, operator
from reelforge.cli.accounts import keys, users
from reelforge.cli.console import console, run_with_runtime, settings_or_exit

if TYPE_CHECKING:
    from reelforge.runtime import Runtime
    from reelforge.settings import Settings

app = typer.Typer(
    name="reelforge",
    help="Reelforge: self-hosted video generation speaking the OpenAI Videos protocol.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(users, name="users")
app.add_typer(keys, name="keys")
client.register(app)
operator.register(app)
app.command("doctor")(doctor.doctor)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (REELFORGE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (REELFORGE_PORT).")] = None,
) -> None:
    """Run the API, studio and (embedded) worker on one server."""
    import uvloop
    from granian import Granian
    from granian.constants import Interfaces, Loops

    from reelforge.cli.startup import checked_settings
    from reelforge.db import migrate as migrations
    from reelforge.logs import configure_logging

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = checked_settings(**overrides)
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
    from reelforge.settings import ProviderName

    if ProviderName.EMULATOR in settings.enabled_providers:
        import reelforge.emulator.app
        import reelforge.emulator.render  # noqa: F401


def _ensure_first_admin() -> None:
    from reelforge.db import migrate as migrations

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
    import uvloop

    from reelforge.cli.startup import checked_settings
    from reelforge.logs import configure_logging
    from reelforge.settings import ProviderName

    settings = checked_settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.provider is ProviderName.EMULATOR:
        console.print(
            "[yellow]The in-process emulator lives in this process only: with several "
            "processes, run `reelforge emulator` and point REELFORGE_PROVIDER=openai "
            "at it.[/yellow]"
        )
    uvloop.run(_work(settings, concurrency))


async def _work(settings: Settings, concurrency: int | None) -> None:
    from contextlib import AsyncExitStack

    from reelforge.api.app import providers_for
    from reelforge.db import migrate as migrations
    from reelforge.runtime import open_runtime
    from reelforge.worker.runner import engine_for, run_until_signalled

    async with AsyncExitStack() as stack:
        providers = providers_for(settings, stack)
        runtime = open_runtime(settings, providers=providers)
        stack.push_async_callback(runtime.close)
        if settings.is_embedded_database:
            await migrations.upgrade(settings.resolved_database_url)
        # The API processes' WAKE notices (a video accepted, a webhook's nudge) reach this
        # engine over the bus: it starts their work at once, not at its next idle poll.
        await runtime.listen(stack)
        engine = engine_for(runtime, runtime.providers, concurrency=concurrency)
        console.print(f"Reelforge worker {engine.owner} is running; Ctrl-C or SIGTERM drains it.")
        await run_until_signalled(engine)


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 4010,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep jobs, ledger and assets here across restarts "
            "(REELFORGE_EMULATOR_STATE_DIR); unset: in memory."
        ),
    ] = None,
) -> None:
    """Run the built-in Sora-protocol emulator on its own (settings: REELFORGE_EMULATOR_*)."""
    from pydantic import ValidationError

    from reelforge.emulator import server
    from reelforge.emulator.settings import ENV_PREFIX, EmulatorSettings
    from reelforge.emulator.state import StateDirBusy, StateFile

    if state_dir is not None:
        # The server's factory reads its settings from the environment.
        os.environ[f"{ENV_PREFIX}STATE_DIR"] = str(state_dir)
    try:
        settings = EmulatorSettings()
    except ValidationError as exc:
        console.print(f"[red]invalid emulator settings:\n{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    if settings.state_dir is not None:
        try:
            StateFile(settings.state_dir).close()
        except StateDirBusy as exc:
            console.print(f"[red]{exc}: another emulator is running on it.[/red]")
            raise typer.Exit(2) from None
    kept = f"state in {settings.state_dir}" if settings.state_dir else "state in memory"
    console.print(
        f"The Reelforge emulator is serving the Videos API on [bold]http://{host}:{port}/v1[/bold]"
        f" ({kept}; docs/emulator.md)"
    )
    server.serve(host, port)


@app.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to the revision.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Only show the revision.")] = False,
) -> None:
    """Apply (or roll back) the database migrations."""
    import uvloop

    from reelforge.db import migrate as migrations

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
