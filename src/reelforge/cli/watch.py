"""Following a video to its end: the server's event stream when it has one, else polling;
a progress bar on a terminal, one plain line per change anywhere else."""

from __future__ import annotations

import time
from typing import Protocol

from reelforge.cli.console import console
from reelforge.cli.exits import CommandError, ExitCode
from reelforge.cli.remote import TERMINAL, Remote, Video

# A stream that has said nothing this long is reopened after one read of the video: its
# notices are hints that can be lost, the video's own state is the truth.
STREAM_SILENCE_SECONDS = 15.0


class Display(Protocol):
    def update(self, video: Video) -> None: ...

    def close(self) -> None: ...


class Lines:
    """One line on stderr each time the status or the progress changes."""

    def __init__(self) -> None:
        self.last: tuple[str, int] | None = None

    def update(self, video: Video) -> None:
        shown = (video["status"], int(video.get("progress") or 0))
        if shown != self.last:
            self.last = shown
            console.print(
                f"{video['id']} {shown[0]} {shown[1]}%",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    def close(self) -> None:
        return None


class Bar:
    """A rich progress bar for one video."""

    def __init__(self, video: Video) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(video["id"], total=100)
        self.progress.start()

    def update(self, video: Video) -> None:
        self.progress.update(
            self.task,
            completed=int(video.get("progress") or 0),
            description=f"{video['id']} {video['status']}",
        )

    def close(self) -> None:
        self.progress.stop()


def watch(remote: Remote, video: Video, *, interval: float, timeout: float | None) -> Video:
    """The video once it is completed, failed or cancelled; CommandError(TIMEOUT) after
    `timeout` seconds (checked between reads)."""
    display: Display = Bar(video) if console.is_terminal else Lines()
    deadline = None if timeout is None else time.monotonic() + timeout
    streams = True
    try:
        display.update(video)
        while video["status"] not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise CommandError(
                    ExitCode.TIMEOUT,
                    f"{video['id']} is still {video['status']} after {timeout:g} s",
                )
            if streams:
                streams, video = _follow_stream(remote, video, display, deadline)
            else:
                time.sleep(interval)
                video = remote.video(video["id"])
                display.update(video)
    finally:
        display.close()
    return video


def _follow_stream(
    remote: Remote, video: Video, display: Display, deadline: float | None
) -> tuple[bool, Video]:
    """Read the video again on each event until it ends, the stream closes or the deadline
    passes; (False, …) when the server has no stream, so the caller polls from then on."""
    with remote.stream(video["id"], STREAM_SILENCE_SECONDS) as events:
        if events is None:
            return False, video
        # What happened before the stream opened was not announced on it.
        video = remote.video(video["id"])
        display.update(video)
        for _ in events:
            video = remote.video(video["id"])
            display.update(video)
            if video["status"] in TERMINAL:
                break
            if deadline is not None and time.monotonic() > deadline:
                break
    return True, video
