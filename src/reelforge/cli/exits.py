"""The client commands' exit codes and the one way they stop with a message (docs/cli.md)."""

from __future__ import annotations

from enum import IntEnum
from typing import NoReturn

import typer


class ExitCode(IntEnum):
    """Stable exit statuses a script can branch on; documented in docs/cli.md."""

    OK = 0
    FAILED = 1
    USAGE = 2
    AUTH = 3
    NOT_FOUND = 4
    REJECTED = 5
    LIMITED = 6
    UNAVAILABLE = 7
    VIDEO_FAILED = 8
    TIMEOUT = 9


# What an HTTP status from the server means for the exit code.
_BY_STATUS = {
    400: ExitCode.REJECTED,
    401: ExitCode.AUTH,
    403: ExitCode.AUTH,
    404: ExitCode.NOT_FOUND,
    409: ExitCode.REJECTED,
    413: ExitCode.REJECTED,
    416: ExitCode.REJECTED,
    422: ExitCode.REJECTED,
    429: ExitCode.LIMITED,
}


def for_status(status: int) -> ExitCode:
    if status >= 500:
        return ExitCode.UNAVAILABLE
    return _BY_STATUS.get(status, ExitCode.FAILED)


class CommandError(Exception):
    """A client command cannot go on: `message` goes to stderr, `code` is the exit status."""

    def __init__(self, code: ExitCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def stop(error: CommandError) -> NoReturn:
    """Print `error: …` on stderr and exit with its code."""
    from reelforge.cli.console import console

    console.print(
        f"error: {error.message}", style="red", highlight=False, markup=False, soft_wrap=True
    )
    raise typer.Exit(int(error.code))
