"""Real `reelforge worker` and `reelforge serve` processes: their environment, start, signals,
logs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

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
    # Started as the leader of its own process group (`serve` forks granian's workers).
    group: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, tail: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-tail:]

    def kill(self) -> None:
        """SIGKILL (of its whole group if it leads one): no drain, no release, no clean-up;
        what an OOM killer or power cut does."""
        if self.group:
            os.killpg(self.pid, signal.SIGKILL)
        else:
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
        self,
        *,
        launcher: Path | None = None,
        extra_env: dict[str, str] | None = None,
        command: Sequence[str] = ("worker",),
        group: bool = False,
    ) -> WorkerProcess:
        """Start `reelforge <command>` (or `launcher`); `group` makes it lead its own process
        group, so that `kill` takes its children too."""
        # The interpreter itself (not `uv run`), so the pid we signal is the worker's own.
        program = [str(launcher)] if launcher else ["-m", "reelforge.cli.main", *command]
        log = self.directory / f"worker-{len(self.started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, *program],
                env=self.environment | (extra_env or {}),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=group,
            )
        worker = WorkerProcess(process, log, group=group)
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
            elif worker.group:
                with contextlib.suppress(ProcessLookupError):
                    worker.kill()  # its children, should any have outlived it
            worker.process.wait(timeout=10)


def serve_environment(data_dir: Path, **settings: str) -> dict[str, str]:
    """`reelforge serve` in the embedded default (SQLite, local files and the in-process
    emulator, all under `data_dir`) with the fault tests' short lease, plus `settings`."""
    return server_environment(
        data_dir, LEASE_SECONDS=str(LEASE_SECONDS), LOG_LEVEL="info", **settings
    )


def worker_environment(
    *,
    database_url: str,
    storage_url: str,
    provider_base_url: str,
    data_dir: Path,
    concurrency: int = 4,
) -> dict[str, str]:
    """A worker's environment: our database, storage and emulator, none of the developer's."""
    return inherited_environment() | {
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


def inherited_environment() -> dict[str, str]:
    """The test run's environment without the developer's Reelforge, OpenAI and AWS settings."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REELFORGE_", "OPENAI_", "AWS_"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }


def server_environment(
    data_dir: Path, *, database_url: str | None = None, **settings: str
) -> dict[str, str]:
    """`reelforge serve` as it runs with nothing configured (SQLite unless `database_url`, local
    storage, the built-in emulator, the embedded worker) in `data_dir`, plus `settings`
    (REELFORGE_ names without the prefix, e.g. CREATE_RATE_LIMIT)."""
    database = {"REELFORGE_DATABASE_URL": database_url} if database_url else {}
    return (
        inherited_environment()
        | {
            "REELFORGE_DATA_DIR": str(data_dir),
            "REELFORGE_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
        | database
        | {f"REELFORGE_{name.upper()}": value for name, value in settings.items()}
    )


@dataclass
class ServerProcess:
    """One `reelforge serve` process (granian's main process) on a loopback port, and its log."""

    process: subprocess.Popen[bytes]
    log: Path
    base_url: str

    @property
    def url(self) -> str:
        return self.base_url

    def output(self, tail: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-tail:]

    @classmethod
    async def start(cls, environment: dict[str, str], directory: Path) -> Self:
        """Started and answering `/ready`, or the start fails with the server's log."""
        server = cls.spawn(environment, directory, free_port())
        try:
            await server.ready()
        except BaseException:
            server.stop()
            raise
        return server

    @classmethod
    def spawn(cls, environment: dict[str, str], directory: Path, port: int) -> Self:
        """`reelforge serve` started on `port`, not yet ready."""
        directory.mkdir(parents=True, exist_ok=True)
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
        return cls(process, log, f"http://127.0.0.1:{port}")

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
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            with anyio.move_on_after(seconds):
                while self.process.poll() is None:
                    try:
                        if (await client.get("/ready")).status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.1)
        raise AssertionError(f"server not ready within {seconds} s:\n{self.output()}")

    def stop(self) -> None:
        """SIGINT (what Ctrl-C sends), then SIGKILL if it hasn't ended in DRAIN_SECONDS; and
        granian's own children, should one outlive it."""
        workers = self.workers()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=DRAIN_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pid in workers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextmanager
def served(environment: dict[str, str], directory: Path) -> Iterator[ServerProcess]:
    """`reelforge serve` on a free port (not yet ready), stopped at the block's end."""
    server = ServerProcess.spawn(environment, directory, free_port())
    try:
        yield server
    finally:
        server.stop()
