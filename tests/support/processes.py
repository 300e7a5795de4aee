"""Real `reelforge worker` and `reelforge serve` processes for fault tests: their environment,
start, signals, logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx

from reelforge.emulator.server import free_port
from reelforge.providers.registry import EMULATOR_API_KEY

# The launcher whose archive commit writes a marker file and then hangs (SIGKILL it there).
HANGING_COMMIT = Path(__file__).with_name("hanging_commit.py")
# The smallest lease the settings allow: how long a killed worker's video waits for another.
LEASE_SECONDS = 10
# `EngineConfig.drain_seconds`, which `reelforge worker` does not change.
DRAIN_SECONDS = 20.0
# Importing the app takes a few seconds on a busy machine; "eventually" waits allow for it.
START_SECONDS = 45.0


@dataclass
class WorkerProcess:
    """One `reelforge worker` (or fault-injecting launcher) process and its log file."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, tail: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-tail:]

    def kill(self) -> None:
        """SIGKILL: no drain, no release, no clean-up; what an OOM killer or power cut does."""
        self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM: what an orchestrator sends before it stops a container."""
        self.process.send_signal(signal.SIGTERM)

    async def exited(self, seconds: float) -> int:
        """The exit code once the process has ended; fails if it is still running by then."""
        with anyio.move_on_after(seconds):
            while self.process.poll() is None:
                await anyio.sleep(0.05)
        code = self.process.poll()
        assert code is not None, f"worker {self.pid} still running after {seconds} s:\n" + (
            self.output()
        )
        return code

    async def stop(self) -> None:
        """SIGTERM, and the worker must drain and exit cleanly (status 0) within its deadline."""
        self.terminate()
        code = await self.exited(DRAIN_SECONDS + 10)
        assert code == 0, f"worker {self.pid} exited {code} on SIGTERM:\n{self.output()}"


@dataclass
class Workers:
    """Starts worker processes with one environment and, at the end, kills those still alive."""

    environment: dict[str, str]
    directory: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(
        self, *, launcher: Path | None = None, extra_env: dict[str, str] | None = None
    ) -> WorkerProcess:
        # The interpreter itself (not `uv run`), so the pid we signal is the worker's own.
        program = [str(launcher)] if launcher else ["-m", "reelforge.cli.main", "worker"]
        log = self.directory / f"worker-{len(self.started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, *program],
                env=self.environment | (extra_env or {}),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(process, log)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- worker {w.pid} ---\n{w.output()}" for w in self.started)

    async def eventually(
        self, condition: Callable[[], Awaitable[bool]], what: str, seconds: float = START_SECONDS
    ) -> None:
        """Wait until `condition` holds; fail (with the workers' logs) if it doesn't in time."""
        with anyio.move_on_after(seconds):
            while not await condition():
                await anyio.sleep(0.05)
            return
        raise AssertionError(f"not within {seconds} s: {what}\n{self.logs()}")

    def kill_all(self) -> None:
        for worker in self.started:
            if worker.alive():
                worker.kill()
            worker.process.wait(timeout=10)


def worker_environment(
    *,
    database_url: str,
    storage_url: str,
    provider_base_url: str,
    data_dir: Path,
    concurrency: int = 4,
) -> dict[str, str]:
    """A worker's environment: our database, storage and emulator, none of the developer's."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REELFORGE_", "OPENAI_", "AWS_"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }
    return inherited | {
        "REELFORGE_DATA_DIR": str(data_dir),
        "REELFORGE_DATABASE_URL": database_url,
        "REELFORGE_STORAGE_URL": storage_url,
        # Several processes share one upstream: the emulator on a socket, as the worker
        # command itself advises.
        "REELFORGE_PROVIDER": "openai",
        "REELFORGE_OPENAI_BASE_URL": provider_base_url,
        "REELFORGE_OPENAI_API_KEY": EMULATOR_API_KEY,
        "REELFORGE_LEASE_SECONDS": str(LEASE_SECONDS),
        "REELFORGE_WORKER_CONCURRENCY": str(concurrency),
        "REELFORGE_LOG_FORMAT": "json",
        "REELFORGE_LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def workers_in(environment: dict[str, str], directory: Path) -> Iterator[Workers]:
    """Workers started in the block are SIGKILLed (by pid) at its end if still running."""
    directory.mkdir(parents=True, exist_ok=True)
    workers = Workers(environment, directory)
    try:
        yield workers
    finally:
        workers.kill_all()


@dataclass
class ServerProcess:
    """One `reelforge serve` process (granian's main process) on a loopback port."""

    process: subprocess.Popen[bytes]
    log: Path
    url: str

    def output(self, tail: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-tail:]

    def workers(self) -> list[int]:
        """The pids of granian's worker processes (the main process's children)."""
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            # The command name is in parentheses and may hold spaces: fields follow the last ")".
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid:
                children.append(int(entry.name))
        return children

    async def ready(self, seconds: float = START_SECONDS) -> None:
        """Wait for `/ready` to answer 200; fail with the server's log if it doesn't in time."""
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            with anyio.move_on_after(seconds):
                while self.process.poll() is None:
                    try:
                        if (await client.get("/ready")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.1)
        raise AssertionError(f"server not ready within {seconds} s:\n{self.output()}")


@contextmanager
def served(environment: dict[str, str], directory: Path) -> Iterator[ServerProcess]:
    """`reelforge serve` on a free port, stopped (SIGINT, then SIGKILL) at the block's end."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelforge.cli.main", "serve", "--port", str(port)],
            env=environment,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, log, f"http://127.0.0.1:{port}")
    try:
        yield server
    finally:
        workers = server.workers()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for pid in workers:  # granian's own children, should one outlive it
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def server_environment(*, database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """A server's environment: our database and data dir (the embedded emulator and worker),
    none of the developer's settings; `settings` as REELFORGE_NAME=value."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REELFORGE_", "OPENAI_", "AWS_"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }
    return (
        inherited
        | {
            "REELFORGE_DATA_DIR": str(data_dir),
            "REELFORGE_DATABASE_URL": database_url,
            "REELFORGE_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
        | {f"REELFORGE_{name.upper()}": value for name, value in settings.items()}
    )
