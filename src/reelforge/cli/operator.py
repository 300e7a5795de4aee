"""Operator commands run on the installation itself (not over HTTP): quotas, export, import."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelforge.cli.console import output, run_with_runtime

if TYPE_CHECKING:
    from reelforge.domain.quotas import QuotaUsage
    from reelforge.runtime import Runtime

quota = typer.Typer(help="See and set users' quotas and monthly budgets.", no_args_is_help=True)

UNLIMITED = "unlimited"


def _limit(value: str | None, name: str) -> str | None:
    if value is not None and value != UNLIMITED:
        try:
            if Decimal(value) < 0:
                raise InvalidOperation
        except InvalidOperation:
            raise typer.BadParameter(f"a number >= 0 or '{UNLIMITED}'", param_hint=name) from None
    return value


def _print_usage(email: str, usage: QuotaUsage) -> None:
    policy = usage.policy
    videos = UNLIMITED if policy.max_videos is None else str(policy.max_videos)
    budget = UNLIMITED if policy.monthly_budget is None else f"{policy.monthly_budget:.2f} USD"
    output.print(
        f"{email}: {usage.videos_used} of {videos} videos per {policy.period_days} days "
        f"(period ends {usage.period_ends_at:%Y-%m-%d}); spent {usage.month_spend:.2f} USD "
        f"this month of {budget}",
        highlight=False,
        soft_wrap=True,
    )


@quota.command("show")
def show_quota(email: str) -> None:
    """A user's quota, budget and what they used."""

    async def show(runtime: Runtime) -> None:
        account = await runtime.accounts.find(email)
        _print_usage(email, await runtime.quotas.usage(account))

    run_with_runtime(show)


@quota.command("set")
def set_quota(
    email: str,
    videos: Annotated[
        str | None, typer.Option(help=f"Videos per period, or '{UNLIMITED}'; unchanged if unset.")
    ] = None,
    period_days: Annotated[
        int | None, typer.Option(min=1, max=366, help="Length of the quota period in days.")
    ] = None,
    budget: Annotated[
        str | None, typer.Option(help=f"Monthly budget in USD, or '{UNLIMITED}'.")
    ] = None,
) -> None:
    """Change a user's quota and monthly budget; what is not given stays as it is."""
    from reelforge.domain.quotas import QuotaPolicy

    videos = _limit(videos, "--videos")
    budget = _limit(budget, "--budget")
    if videos is not None and videos != UNLIMITED and not videos.isdigit():
        raise typer.BadParameter("a whole number or 'unlimited'", param_hint="--videos")

    async def change(runtime: Runtime) -> None:
        account = await runtime.accounts.find(email)
        current = (await runtime.quotas.usage(account)).policy
        policy = QuotaPolicy(
            max_videos=current.max_videos
            if videos is None
            else (None if videos == UNLIMITED else int(videos)),
            period_days=period_days or current.period_days,
            monthly_budget=current.monthly_budget
            if budget is None
            else (None if budget == UNLIMITED else Decimal(budget)),
        )
        _print_usage(email, await runtime.quotas.set_policy(account.id, policy))

    run_with_runtime(change)


def export(
    target: Annotated[Path, typer.Argument(help="A directory, or a file ending in .zip.")],
    user: Annotated[
        str | None, typer.Option(help="Only this user's videos (email); default everyone's.")
    ] = None,
) -> None:
    """Export archived videos with thumbnail, spritesheet and metadata.

    Each file is checked against the archive's sha256. Run it again after an interruption:
    finished videos are skipped.
    """
    from reelforge.services.exports import Exports

    async def run(runtime: Runtime) -> None:
        tally = await Exports(runtime.database, runtime.storage).export(target, owner_email=user)
        output.print(
            f"exported {tally.done} videos to {tally.path} ({tally.skipped} already there)",
            highlight=False,
            soft_wrap=True,
        )

    run_with_runtime(run)


def import_(
    source: Annotated[
        Path, typer.Argument(exists=True, help="An export: its directory or its .zip.")
    ],
    user: Annotated[
        str | None,
        typer.Option(help="Give every video to this user (email); default their own owners."),
    ] = None,
) -> None:
    """Import an export into this installation.

    Owners must exist (`reelforge users create`); videos already here are skipped.
    """
    from reelforge.services.exports import Exports

    async def run(runtime: Runtime) -> None:
        tally = await Exports(runtime.database, runtime.storage).import_(source, owner_email=user)
        output.print(
            f"imported {tally.done} videos from {source} ({tally.skipped} already here)",
            highlight=False,
            soft_wrap=True,
        )

    run_with_runtime(run)


def register(app: typer.Typer) -> None:
    app.add_typer(quota, name="quota")
    app.command("export")(export)
    app.command("import")(import_)
