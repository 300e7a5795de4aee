"""Client commands: make, follow, list and fetch videos on a Reelforge server over its /api.

They import nothing of the server (settings, database, app), so they start quickly; their
exit codes are `reelforge.cli.exits.ExitCode`, documented in docs/cli.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reelforge.cli.config import API_KEY_ENV, URL_ENV, ClientConfig, resolve, save
from reelforge.cli.console import console, output
from reelforge.cli.exits import CommandError, ExitCode, stop

if TYPE_CHECKING:
    from reelforge.cli.remote import Remote, Video

VARIANTS = ("video", "thumbnail", "spritesheet")

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help=f"Server URL (else ${URL_ENV}, else `reelforge login`'s)."),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help=f"API key (else ${API_KEY_ENV}, else `reelforge login`'s).",
        show_default=False,
    ),
]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Follow the video until it is completed or failed.")
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Save the finished video here (implies --wait)."),
]
IntervalOption = Annotated[
    float, typer.Option(help="Seconds between status reads when the server has no stream.")
]
TimeoutOption = Annotated[
    float | None, typer.Option(help="Give up waiting after this many seconds (exit 9).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ModelOption = Annotated[str | None, typer.Option(help="Model; the provider's default if unset.")]
SizeOption = Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, e.g. 1280x720.")]
SecondsOption = Annotated[str | None, typer.Option(help="Length in seconds: 4, 8, 12 …")]
ImageOption = Annotated[
    Path | None,
    typer.Option(
        "--image", exists=True, dir_okay=False, help="First frame (PNG, JPEG or WebP, video size)."
    ),
]


@contextmanager
def _remote(url: str | None, api_key: str | None) -> Iterator[Remote]:
    """A connection to the server; a CommandError inside becomes its message and exit code."""
    from reelforge.cli.remote import Remote

    try:
        with Remote(resolve(url, api_key)) as remote:
            remote.require_key()
            yield remote
    except CommandError as error:
        stop(error)


def _print_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def _finish(
    remote: Remote,
    video: Video,
    *,
    wait: bool,
    output_path: Path | None,
    interval: float,
    timeout: float | None,
) -> None:
    """What generate and remix do after the create: print the id, or follow and save."""
    from reelforge.cli.watch import watch

    if not wait and output_path is None:
        typer.echo(video["id"])
        return
    video = watch(remote, video, interval=interval, timeout=timeout)
    if video["status"] != "completed":
        error = video.get("error") or {}
        reason = error.get("message") or error.get("code") or video["status"]
        raise CommandError(ExitCode.VIDEO_FAILED, f"{video['id']} {video['status']}: {reason}")
    if output_path is not None:
        saved = remote.download(video["id"], "video", output_path)
        console.print(f"saved {saved}", highlight=False, markup=False, soft_wrap=True)
    typer.echo(video["id"])


def _fields(
    prompt: str, model: str | None, size: str | None, seconds: str | None
) -> dict[str, str]:
    values = {"prompt": prompt, "model": model, "size": size, "seconds": seconds}
    return {name: value for name, value in values.items() if value is not None}


def login(
    url: UrlOption = None,
    api_key: KeyOption = None,
    email: Annotated[str | None, typer.Option(help="Sign in with this account.")] = None,
    password: Annotated[
        str | None, typer.Option(help="Its password; asked for (hidden) when not given.")
    ] = None,
    key_name: Annotated[str, typer.Option(help="Name of the API key made for this CLI.")] = (
        "reelforge CLI"
    ),
) -> None:
    """Save the server URL and an API key (given, or made by signing in) for the commands."""
    config = resolve(url, None)
    from reelforge.cli.remote import Remote

    try:
        with Remote(ClientConfig(config.url, api_key)) as remote:
            if api_key is None:
                email = email or typer.prompt("Email")
                password = password or typer.prompt("Password", hide_input=True)
                token = remote.call(
                    "POST", "/api/auth/token", json={"email": email, "password": password}
                )["access_token"]
                made = remote.call(
                    "POST",
                    "/api/keys",
                    json={"name": key_name},
                    headers={"Authorization": f"Bearer {token}"},
                )
                api_key = str(made["key"])
            me = remote.call("GET", "/api/me", headers={"Authorization": f"Bearer {api_key}"})
    except CommandError as error:
        stop(error)
    path = save(ClientConfig(config.url, api_key))
    console.print(
        f"logged in to {config.url} as {me['email']}; key saved in {path}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def generate(
    prompt: str,
    model: ModelOption = None,
    size: SizeOption = None,
    seconds: SecondsOption = None,
    image: ImageOption = None,
    wait: WaitOption = False,
    output_path: OutputOption = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Repeat safely: the same key returns the same video.")
    ] = None,
    interval: IntervalOption = 1.0,
    timeout: TimeoutOption = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Create a video; prints its id (after it is done, with --wait or --output)."""
    with _remote(url, api_key) as remote:
        video = remote.create(_fields(prompt, model, size, seconds), image, idempotency_key)
        _finish(
            remote, video, wait=wait, output_path=output_path, interval=interval, timeout=timeout
        )


def remix(
    video_id: str,
    prompt: str,
    wait: WaitOption = False,
    output_path: OutputOption = None,
    interval: IntervalOption = 1.0,
    timeout: TimeoutOption = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Remix a completed video with a new prompt; prints the new video's id."""
    with _remote(url, api_key) as remote:
        video = remote.call("POST", f"/api/videos/{video_id}/remix", json={"prompt": prompt})
        _finish(
            remote, video, wait=wait, output_path=output_path, interval=interval, timeout=timeout
        )


def list_videos(
    status: Annotated[
        list[str] | None, typer.Option(help="Only this status (repeat for several).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Text in the prompt.")] = (
        None
    ),
    limit: Annotated[int, typer.Option(min=1, help="At most this many videos.")] = 20,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """List your videos, newest first."""
    with _remote(url, api_key) as remote:
        videos: list[Video] = []
        cursor: str | None = None
        while len(videos) < limit:
            params: dict[str, Any] = {"limit": min(100, limit - len(videos))}
            params |= {"status": status or None, "model": model, "q": search, "cursor": cursor}
            page, cursor = remote.page({k: v for k, v in params.items() if v is not None})
            videos.extend(page)
            if cursor is None:
                break
    if as_json:
        _print_json(videos)
        return
    columns = ("id", "status", "progress", "model", "size", "seconds", "cost", "created", "prompt")
    rows = [
        (
            video["id"],
            video["status"],
            f"{video['progress']}%",
            video["model"],
            video["size"],
            video["seconds"],
            video["cost"]["final"] or video["cost"]["estimate"],
            str(video["created_at"])[:16].replace("T", " "),
            video["prompt"],
        )
        for video in videos
    ]
    if not output.is_terminal:
        # Tab-separated, whole values: what `cut` and `awk` expect from a pipe.
        for row in (columns, *rows):
            typer.echo("\t".join(" ".join(value.split()) for value in row))
        return
    from rich.table import Table

    table = Table(*columns)
    table.columns[0].no_wrap = True
    for row in rows:
        table.add_row(*row[:-1], _short(row[-1]))
    output.print(table)


def show(
    video_id: str, as_json: JsonOption = False, url: UrlOption = None, api_key: KeyOption = None
) -> None:
    """Show one video."""
    with _remote(url, api_key) as remote:
        video = remote.video(video_id)
    if as_json:
        _print_json(video)
        return
    error = video.get("error") or {}
    cost = video["cost"]
    rows = {
        "id": video["id"],
        "status": f"{video['status']} ({video['progress']}%)",
        "prompt": video["prompt"],
        "provider": video["provider"],
        "model": video["model"],
        "size": video["size"],
        "seconds": video["seconds"],
        "remixed from": video.get("remixed_from_video_id") or "",
        "error": " ".join(str(v) for v in (error.get("code"), error.get("message")) if v),
        "cost": f"{cost['final'] or cost['estimate']} {cost['currency']}"
        + ("" if cost["final"] else " (estimate)"),
        "created": video["created_at"],
        "completed": video.get("completed_at") or "",
        "downloads": ", ".join(sorted(video.get("downloads") or {})),
    }
    for name, value in rows.items():
        if value:
            output.print(f"{name + ':':14} {value}", highlight=False, markup=False, soft_wrap=True)


def download(
    video_id: str,
    variant: Annotated[
        str, typer.Option(help=f"What to download: {', '.join(VARIANTS)}.")
    ] = "video",
    output_path: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default <id>.<ext>.")
    ] = None,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Download a completed video, its thumbnail or its spritesheet; prints the file's path."""
    with _remote(url, api_key) as remote:
        saved = remote.download(video_id, variant, output_path)
    typer.echo(str(saved))


def cancel(video_id: str, url: UrlOption = None, api_key: KeyOption = None) -> None:
    """Cancel a video that is not finished yet."""
    with _remote(url, api_key) as remote:
        video = remote.call("POST", f"/api/videos/{video_id}/cancel")
    # /api reports a cancelled video as the protocol does: failed, with the code `cancelled`.
    error = video.get("error") or {}
    typer.echo(f"{video['id']} {error.get('code') or video['status']}")


def delete(video_id: str, url: UrlOption = None, api_key: KeyOption = None) -> None:
    """Delete a video and its archived files."""
    with _remote(url, api_key) as remote:
        remote.call("DELETE", f"/api/videos/{video_id}")
    typer.echo(f"{video_id} deleted")


def estimate(
    prompt: Annotated[str, typer.Argument(help="The prompt (its length is checked).")] = (
        "estimate"
    ),
    model: ModelOption = None,
    size: SizeOption = None,
    seconds: SecondsOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Price a video before making it."""
    with _remote(url, api_key) as remote:
        priced = remote.call(
            "POST", "/api/videos/estimate", json=_fields(prompt, model, size, seconds)
        )
    if as_json:
        _print_json(priced)
        return
    typer.echo(
        f"{priced['provider']} {priced['model']} {priced['size']} {priced['seconds']}s: "
        f"{priced['cost']} {priced['currency']}"
    )


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


COMMANDS: dict[str, Callable[..., None]] = {
    "login": login,
    "generate": generate,
    "remix": remix,
    "list": list_videos,
    "show": show,
    "download": download,
    "cancel": cancel,
    "delete": delete,
    "estimate": estimate,
}


def register(app: typer.Typer) -> None:
    for name, command in COMMANDS.items():
        app.command(name)(command)
