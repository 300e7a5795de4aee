"""Ending live-update streams when the server is told to stop, before it waits for them."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from reelforge.web.live import Live

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def close_on_signals(live: Live) -> Iterator[None]:
    """On SIGINT or SIGTERM, close every live-update connection, then let the handler that was
    there run as before (enter from the event loop's thread).

    granian (like uvicorn) finishes the open responses before it runs the app's shutdown, and
    a live stream never finishes by itself: without this, a stopping server would wait until
    every client went away. Clients reconnect (EventSource and socket.io do by themselves) and
    re-read the state, after a restart or on another server.
    """
    loop = asyncio.get_running_loop()
    previous = {number: signal.getsignal(number) for number in SIGNALS}
    closing: set[asyncio.Task[None]] = set()

    def close() -> None:
        task = loop.create_task(live.close())
        closing.add(task)
        task.add_done_callback(closing.discard)

    def handler(number: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(close)
        chained = previous[signal.Signals(number)]
        if callable(chained):
            chained(number, frame)

    for number in SIGNALS:
        signal.signal(number, handler)
    try:
        yield
    finally:
        for number, chained in previous.items():
            signal.signal(number, chained)
