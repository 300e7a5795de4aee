"""Running the emulator on a real socket: in the foreground (CLI) or on a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from granian.constants import Interfaces, Loops
from granian.server.embed import Server
from starlette.types import ASGIApp

from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.settings import EmulatorSettings


def app_from_environment() -> ASGIApp:
    """Factory for `granian --factory reelforge.emulator.server:app_from_environment`."""
    return create_emulator_app(EmulatorSettings())


def serve(host: str = "127.0.0.1", port: int = 4010) -> None:
    """Serve the emulator until interrupted (what `reelforge emulator` runs)."""
    from granian import Granian

    Granian(
        target="reelforge.emulator.server:app_from_environment",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
    ).serve()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give the SDK as `base_url`."""
        return f"{self.root}/v1"


@contextlib.contextmanager
def running(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningServer]:
    """Serve `app` over real HTTP on a background thread (granian, embedded) for the block.

    Sync clients, timeouts and connection-level faults (truncated bodies) need a real socket;
    in-process transports cannot show them.
    """
    chosen = port or free_port(host)
    loop = asyncio.new_event_loop()
    server = Server(
        app,
        address=host,
        port=chosen,
        interface=Interfaces.ASGINL,  # the emulator needs no lifespan to work
        log_enabled=False,
    )
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve())
        except BaseException as exc:  # surfaced to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"emulator-http-{chosen}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((host, chosen), timeout=0.2).close()
            break
        except OSError:
            if failure or not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator could not listen on {host}:{chosen}") from (
                    failure[0] if failure else None
                )
            time.sleep(0.02)
    try:
        yield RunningServer(host, chosen)
    finally:
        loop.call_soon_threadsafe(server.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
