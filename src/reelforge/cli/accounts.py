"""`reelforge users …` and `reelforge keys …`: accounts and API keys from the shell."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from reelforge.cli.console import output, run_with_runtime
from reelforge.domain.accounts import Role

if TYPE_CHECKING:
    from reelforge.runtime import Runtime

users = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
keys = typer.Typer(help="Manage API keys.", no_args_is_help=True)

PasswordOption = Annotated[
    str | None,
    typer.Option(help="The password; asked for (hidden) when not given.", show_default=False),
]


def _ask_password(password: str | None) -> str:
    if password is not None:
        return password
    entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return entered


@users.command("create")
def create_user(
    email: str,
    admin: Annotated[bool, typer.Option("--admin", help="Give the user the admin role.")] = False,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password: PasswordOption = None,
) -> None:
    """Create a user."""
    secret = _ask_password(password)
    role = Role.ADMIN if admin else Role.USER

    async def create(runtime: Runtime) -> None:
        account = await runtime.accounts.create(email, secret, role=role, display_name=name)
        output.print(f"created {account.role} {account.email} ({account.id})")

    run_with_runtime(create)


@users.command("list")
def list_users() -> None:
    """List users."""

    async def show(runtime: Runtime) -> None:
        from rich.table import Table

        table = Table("id", "email", "name", "role", "disabled", "created")
        for account in await runtime.accounts.list():
            table.add_row(
                account.id,
                account.email,
                account.display_name,
                account.role.value,
                "yes" if account.disabled else "",
                f"{account.created_at:%Y-%m-%d %H:%M}",
            )
        output.print(table)

    run_with_runtime(show)


@users.command("disable")
def disable_user(
    email: str,
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again.")] = False,
) -> None:
    """Disable a user (their sessions, tokens and keys stop working), or enable them again."""

    async def change(runtime: Runtime) -> None:
        account = await runtime.accounts.set_disabled(email, not enable)
        output.print(f"{account.email} is {'disabled' if account.disabled else 'enabled'}")

    run_with_runtime(change)


@users.command("set-password")
def set_password(email: str, password: PasswordOption = None) -> None:
    """Set a user's password."""
    secret = _ask_password(password)

    async def change(runtime: Runtime) -> None:
        await runtime.accounts.set_password(email, secret)
        output.print(f"password of {email} changed")

    run_with_runtime(change)


@keys.command("create")
def create_key(
    user: Annotated[str, typer.Option(help="Email of the key's owner.")],
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "",
) -> None:
    """Create an API key; the key is printed once and cannot be shown again."""

    async def create(runtime: Runtime) -> None:
        account = await runtime.accounts.find(user)
        info, token = await runtime.keys.create(account, name)
        output.print(f"created {info.id} for {account.email}; store this key now:")
        output.print(token, highlight=False, soft_wrap=True)

    run_with_runtime(create)


@keys.command("list")
def list_keys(user: Annotated[str, typer.Option(help="Email of the keys' owner.")]) -> None:
    """List a user's API keys (never the keys themselves)."""

    async def show(runtime: Runtime) -> None:
        account = await runtime.accounts.find(user)
        from rich.table import Table

        table = Table("id", "name", "prefix", "created", "last used", "revoked")
        for info in await runtime.keys.list(account):
            table.add_row(
                info.id,
                info.name,
                f"rf_{info.prefix}…",
                f"{info.created_at:%Y-%m-%d %H:%M}",
                f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "",
                f"{info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "",
            )
        output.print(table)

    run_with_runtime(show)


@keys.command("revoke")
def revoke_key(
    key_id: str,
    user: Annotated[str, typer.Option(help="Email of the key's owner.")],
) -> None:
    """Revoke an API key."""

    async def revoke(runtime: Runtime) -> None:
        account = await runtime.accounts.find(user)
        info = await runtime.keys.revoke(account, key_id)
        output.print(f"revoked {info.id}")

    run_with_runtime(revoke)
