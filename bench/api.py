"""Benchmark `GET /api/videos/{id}` (API-key auth + a database read) beside a FastAPI hello-world.

Run with `uv run python bench/api.py [--seconds 5] [--rounds 3] [--connections 64 200]`
(`--database-url postgresql+asyncpg://…` to serve from PostgreSQL instead of the embedded SQLite).

All apps are served the same way, by granian with one worker on a loopback port: Reelforge as
`reelforge serve` runs it (a throwaway data dir, the embedded worker, INFO access logs), the
hello-world by the same `Granian(...)` call with the same defaults. A third server runs the same
Reelforge app on the same data with its key lookup and video read memoized after their first
answer ("reads memoized", no worker): the route with no database work left, which bounds what any
cache could win and is printed as the ceiling. A fourth server is the hello-world whose handler
reads the same video row by primary key through the bare async driver (asyncpg or aiosqlite,
pooled, no ORM, no auth): the floor of any route that reads the database once per request.
The data is made the way an operator would: `reelforge migrate`, `reelforge users create`,
`reelforge keys create`, then one video created through the API and left to complete before
anything is measured.

The load generator runs in its own process: a closed loop over N keep-alive HTTP/1.1
connections with one request in flight on each, written on asyncio's transports so that a Python
client keeps up with the hello-world (httpx tops out below it on one core). Each figure is the
median of the rounds, which alternate the servers so both see the same machine load. The
CPU columns are measured over the counted window (100 % = one core): a server well below 100 %
beside a client near 100 % would mean the client is the bottleneck. Goals: at least 60 % of the
hello-world's rate, and a p99 at 200 connections under twice the hello-world's.

`--profile N` instead measures, in-process (httpx's ASGI transport, no server), the CPU one request
costs with the key lookup and then the video read replaced by constants: where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = str(Path(__file__).resolve())
HOST = "127.0.0.1"
PASSWORD = "bench-password-123"
GOAL_RATE = 0.60  # of the hello-world's requests per second, at each level
GOAL_P99 = 2.0  # times the hello-world's p99, at 200 connections


def hello_app() -> Any:
    """FastAPI's hello-world (a factory, so the load generator's process never imports FastAPI)."""
    from fastapi import FastAPI

    hello = FastAPI()

    @hello.get("/")
    async def hello_world() -> dict[str, str]:
        return {"message": "Hello World"}

    return hello


def floor_app() -> Any:
    """The hello-world plus one read of the video row by primary key through the bare async
    driver Reelforge's database uses (asyncpg or aiosqlite, pooled as Reelforge pools, no ORM,
    no auth): the least any route that reads the database on each request can cost here."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from sqlalchemy import make_url

    from reelforge.settings import load_settings

    settings = load_settings()
    url = make_url(settings.resolved_database_url)
    read: Callable[[str], Awaitable[Any]]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        nonlocal read
        size = settings.database_pool_size
        if url.get_backend_name() == "sqlite":
            import aiosqlite

            idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
            for _ in range(size):
                idle.put_nowait(await aiosqlite.connect(str(url.database)))

            async def read_sqlite(video_id: str) -> Any:
                connection = await idle.get()
                try:
                    query = "SELECT id, status FROM videos WHERE id = ?"
                    async with connection.execute(query, (video_id,)) as cursor:
                        return await cursor.fetchone()
                finally:
                    idle.put_nowait(connection)

            read = read_sqlite
            yield
            while not idle.empty():
                await idle.get_nowait().close()
        else:
            import asyncpg

            dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
            async with asyncpg.create_pool(dsn, min_size=size, max_size=size) as pool:

                async def read_postgres(video_id: str) -> Any:
                    query = "SELECT id, status FROM videos WHERE id = $1"
                    return await pool.fetchrow(query, video_id)

                read = read_postgres
                yield

    floor = FastAPI(lifespan=lifespan)

    @floor.get("/videos/{video_id}")
    async def one_read(video_id: str) -> dict[str, str]:
        row = await read(video_id)
        return {"id": row[0], "status": row[1]}

    return floor


# --- the load generator (this script's own subprocess: `--load PORT`) ---------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends the same request again as soon as it is answered."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buffer = b""
        self.need: int | None = None
        self.status = 0
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.need is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                length = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
                if length is None:
                    raise RuntimeError("the load generator reads Content-Length responses only")
                self.status = int(head[9:12])
                self.need = end + 4 + int(length.group(1))
            if len(self.buffer) < self.need:
                return
            self.buffer = self.buffer[self.need :]
            self.need = None
            now = time.perf_counter()
            self.run.record(self.status, now - self.sent, now)
            if now >= self.run.stop_at:
                assert self.transport is not None
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.closed()


class _Run:
    def __init__(self, request: bytes, connections: int, warmup: float, seconds: float) -> None:
        self.request = request
        self.count_from = time.perf_counter() + warmup
        self.stop_at = self.count_from + seconds
        self.latencies: list[float] = []
        self.errors = 0
        self.open = connections
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def record(self, status: int, latency: float, now: float) -> None:
        if self.count_from <= now < self.stop_at:
            self.latencies.append(latency)
            self.errors += status != 200

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.done.done():
            self.done.set_result(None)


async def _generate(options: argparse.Namespace) -> dict[str, Any]:
    """Load one server; the latencies and the CPU both sides used in the counted window."""
    port, connections = options.load, options.connections[0]
    lines = [f"GET {options.path} HTTP/1.1", f"Host: {HOST}:{port}", *options.header, "", ""]
    run = _Run("\r\n".join(lines).encode(), connections, options.warmup, options.seconds)
    loop = asyncio.get_running_loop()
    for _ in range(connections):
        await loop.create_connection(lambda: _Connection(run), HOST, port)
    await asyncio.sleep(max(0.0, run.count_from - time.perf_counter()))
    server, client, started = (
        _tree_cpu(options.server_pid),
        time.process_time(),
        time.perf_counter(),
    )
    await asyncio.sleep(max(0.0, run.stop_at - time.perf_counter()))
    window = time.perf_counter() - started
    server = (_tree_cpu(options.server_pid) - server) / window
    client = (time.process_time() - client) / window
    await asyncio.wait_for(run.done, 60)
    return {
        "latencies": run.latencies,
        "errors": run.errors,
        "seconds": options.seconds,
        "server_cpu": server,
        "client_cpu": client,
    }


def _tree_cpu(root: int) -> float:
    """User + system CPU seconds of a process and all its descendants (granian's workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    total = 0.0
    for pid in tree:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# --- the servers --------------------------------------------------------------------------------


def memoized_app() -> Any:
    """Reelforge's app as `reelforge serve` builds it, with the key lookup and the video read
    memoized after their first answer: the same route with no database work left, the ceiling
    that any cache in front of the database could reach."""
    from reelforge.api.app import app_from_environment

    return _MemoizeReads(app_from_environment())


class _MemoizeReads:
    """Wraps the app; patches its runtime's reads on the first request (after the lifespan)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.patched = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.patched:
            runtime = self.app.state.runtime
            runtime.keys.authenticate = _memoized(runtime.keys.authenticate)
            runtime.videos.get = _memoized(runtime.videos.get)
            self.patched = True
        await self.app(scope, receive, send)


def _memoized(read: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[object]]:
    answers: dict[tuple[object, ...], object] = {}

    async def memoized(*args: object) -> object:
        key = tuple(getattr(arg, "id", arg) for arg in args)
        if key not in answers:
            answers[key] = await read(*args)
        return answers[key]

    return memoized


def _serve(factory: str, port: int) -> None:
    """Serve one of this script's app factories as `reelforge serve` serves Reelforge: same
    class, same defaults."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(
        target=f"api:{factory}",
        factory=True,
        address=HOST,
        port=port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        working_dir=HERE,
    ).serve()


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    path: str
    headers: list[str]


@dataclass
class Servers:
    hello: Server
    reelforge: Server
    memoized: Server
    floor: Server

    def everyone(self) -> tuple[Server, ...]:
        return (self.hello, self.reelforge, self.memoized, self.floor)


def _environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    """The caller's environment without any Reelforge setting, on a throwaway data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFORGE_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env |= {
        "REELFORGE_DATA_DIR": str(data_dir),
        "REELFORGE_ADMIN_PASSWORD": PASSWORD,
        "REELFORGE_LOG_FORMAT": "json",
    }
    if database_url:
        env["REELFORGE_DATABASE_URL"] = database_url
    return env


def _reelforge(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "reelforge.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"`reelforge {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_until_up(port: int, path: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://{HOST}:{port}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not come up:\n{log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _make_video(port: int, key: str) -> tuple[str, str]:
    """One video made through the API, then waited for until the embedded worker finishes it."""
    import httpx

    with httpx.Client(
        base_url=f"http://{HOST}:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        made = client.post("/api/videos", json={"prompt": "a lighthouse in a storm"})
        if made.status_code != 201:
            raise SystemExit(f"creating the video failed: {made.status_code} {made.text}")
        video_id: str = made.json()["data"]["id"]
        status, deadline = "queued", time.monotonic() + 180
        while status not in ("completed", "failed", "cancelled") and time.monotonic() < deadline:
            time.sleep(0.5)
            status = client.get(f"/api/videos/{video_id}").json()["data"]["status"]
        return video_id, status


@contextlib.contextmanager
def servers(data_dir: Path, database_url: str | None) -> Iterator[tuple[Servers, str]]:
    """The hello-world; Reelforge with a user, a key and a finished video; the same app with
    its reads memoized (on the same data, without a worker); the hello-world with one raw read
    of that video. Stopped after."""
    import httpx

    from reelforge.emulator.server import free_port

    env = _environment(data_dir, database_url)
    _reelforge(env, "migrate")
    _reelforge(env, "users", "create", "bench@example.org", "--password", PASSWORD)
    made = _reelforge(env, "keys", "create", "--user", "bench@example.org", "--name", "bench")
    key = re.search(r"rf_[A-Za-z0-9_-]+", made)
    if key is None:
        raise SystemExit(f"no key in the output of `reelforge keys create`:\n{made}")
    started: list[subprocess.Popen[bytes]] = []
    try:
        port, log = free_port(), data_dir / "serve.log"
        serve = [sys.executable, "-m", "reelforge.cli.main", "serve", "--host", HOST]
        started.append(_start([*serve, "--port", str(port)], env, log))
        _wait_until_up(port, "/health", started[-1], log)
        video_id, status = _make_video(port, key.group())
        auth = [f"Authorization: Bearer {key.group()}"]
        path = f"/api/videos/{video_id}"
        reelforge = Server("GET /api/videos/{id}", started[-1], port, path, auth)
        port, log = free_port(), data_dir / "hello.log"
        args = [sys.executable, SCRIPT, "--serve", "hello_app", str(port)]
        started.append(_start(args, env, log))
        _wait_until_up(port, "/", started[-1], log)
        hello = Server("hello-world", started[-1], port, "/", [])
        port, log = free_port(), data_dir / "memoized.log"
        quiet = env | {"REELFORGE_EMBEDDED_WORKER": "false"}
        args = [sys.executable, SCRIPT, "--serve", "memoized_app", str(port)]
        started.append(_start(args, quiet, log))
        _wait_until_up(port, "/health", started[-1], log)
        memoized = Server("  reads memoized", started[-1], port, path, auth)
        port, log = free_port(), data_dir / "floor.log"
        args = [sys.executable, SCRIPT, "--serve", "floor_app", str(port)]
        started.append(_start(args, quiet, log))
        floor_path = f"/videos/{video_id}"
        _wait_until_up(port, floor_path, started[-1], log)
        floor = Server("hello + 1 raw read", started[-1], port, floor_path, [])
        apps = Servers(hello, reelforge, memoized, floor)
        for server in apps.everyone():
            headers = dict(line.split(": ", 1) for line in server.headers)
            answer = httpx.get(f"http://{HOST}:{server.port}{server.path}", headers=headers)
            if answer.status_code != 200 or "content-length" not in answer.headers:
                raise SystemExit(f"{server.name}: {answer.status_code} {answer.text[:300]}")
        yield apps, status
    finally:
        for process in started:
            _stop(process)


# --- measuring and reporting --------------------------------------------------------------------


@dataclass
class Sample:
    rate: float
    p50: float
    p99: float
    errors: int
    server_cpu: float
    client_cpu: float


def _measure(server: Server, connections: int, options: argparse.Namespace) -> Sample:
    args = [sys.executable, SCRIPT, "--load", str(server.port), "--path", server.path]
    args += ["--connections", str(connections), "--server-pid", str(server.process.pid)]
    args += ["--warmup", str(options.warmup), "--seconds", str(options.seconds)]
    for header in server.headers:
        args += ["--header", header]
    result = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    latencies = sorted(result["latencies"])
    if not latencies:
        raise SystemExit(f"{server.name}: no answer at {connections} connections")
    return Sample(
        rate=len(latencies) / result["seconds"],
        p50=latencies[len(latencies) // 2] * 1000,
        p99=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        errors=result["errors"],
        server_cpu=result["server_cpu"],
        client_cpu=result["client_cpu"],
    )


def _median(samples: list[Sample]) -> Sample:
    return Sample(
        rate=statistics.median(s.rate for s in samples),
        p50=statistics.median(s.p50 for s in samples),
        p99=statistics.median(s.p99 for s in samples),
        errors=sum(s.errors for s in samples),
        server_cpu=statistics.median(s.server_cpu for s in samples),
        client_cpu=statistics.median(s.client_cpu for s in samples),
    )


COLUMNS = f"{'':<22}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
COLUMNS += f"{'server CPU':>12}{'client CPU':>12}"


def _row(name: str, connections: int, s: Sample) -> str:
    return (
        f"{name:<22}{connections:>6}{s.rate:>9.0f}{s.p50:>9.1f}{s.p99:>9.1f}{s.errors:>8}"
        f"{s.server_cpu:>12.0%}{s.client_cpu:>12.0%}"
    )


def benchmark(options: argparse.Namespace) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="reelforge-bench-") as tmp,
        servers(Path(tmp), options.database_url) as (apps, status),
    ):
        database = "PostgreSQL" if options.database_url else "SQLite (embedded)"
        print(f"granian, 1 worker each; {database}; {os.cpu_count()} CPUs, load average", end=" ")
        print(f"{os.getloadavg()[0]:.1f} before the run")
        print(f"{apps.reelforge.path} is {status}; medians of {options.rounds} rounds of", end=" ")
        print(f"{options.seconds:g} s after {options.warmup:g} s of warm-up\n")
        print(COLUMNS)
        results: dict[tuple[str, int], Sample] = {}
        for connections in options.connections:
            runs: dict[str, list[Sample]] = {server.name: [] for server in apps.everyone()}
            for _ in range(options.rounds):
                for server in apps.everyone():
                    runs[server.name].append(_measure(server, connections, options))
            for server in apps.everyone():
                results[server.name, connections] = _median(runs[server.name])
                print(_row(server.name, connections, results[server.name, connections]))
            print()
        levels = options.connections
        print("ceiling: with every database read memoized the route reaches", end=" ")
        print(_shares(results, apps.hello.name, apps.memoized.name, levels))
        print("floor: the hello-world plus one raw driver read (no ORM, no auth) reaches", end=" ")
        print(_shares(results, apps.hello.name, apps.floor.name, levels))
        return _verdict(results, apps.hello.name, apps.reelforge.name, levels)


def _shares(
    results: dict[tuple[str, int], Sample], hello: str, name: str, levels: list[int]
) -> str:
    shares = ", ".join(
        f"{results[name, level].rate / results[hello, level].rate:.0%} ({level} connections)"
        for level in levels
    )
    return f"{shares} of the hello-world's rate"


def _verdict(
    results: dict[tuple[str, int], Sample], hello: str, name: str, levels: list[int]
) -> int:
    missed = 0
    for level in levels:
        share = results[name, level].rate / results[hello, level].rate
        missed += share < GOAL_RATE
        verdict = "PASS" if share >= GOAL_RATE else "MISS"
        print(f"{verdict}  rate at {level} connections: {share:.0%} of the hello-world's", end="")
        print(f" (goal: at least {GOAL_RATE:.0%})")
    if 200 in levels:
        ratio = results[name, 200].p99 / results[hello, 200].p99
        missed += ratio >= GOAL_P99
        verdict = "PASS" if ratio < GOAL_P99 else "MISS"
        print(f"{verdict}  p99 at 200 connections: {ratio:.1f}x the hello-world's", end="")
        print(f" (goal: under {GOAL_P99:g}x)")
    if any(sample.errors for sample in results.values()):
        print("note: some answers were not 200 (see the errors column)")
    return 1 if missed else 0


# --- where the time goes, in-process (`--profile N`) --------------------------------------------


def profile(requests: int) -> None:
    """CPU per request of the route as is, then with its database work replaced by constants."""
    import httpx
    from asgi_lifespan import LifespanManager

    from reelforge.api.app import create_app
    from reelforge.logs import configure_logging
    from reelforge.services.videos import NewVideo
    from reelforge.settings import Settings

    async def cpu_per_request(
        client: httpx.AsyncClient, path: str, headers: dict[str, str]
    ) -> float:
        remaining = requests

        async def loop() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                (await client.get(path, headers=headers)).raise_for_status()

        started = time.process_time()
        await asyncio.gather(*(loop() for _ in range(64)))
        return (time.process_time() - started) / requests * 1e6

    async def main(data_dir: Path) -> list[tuple[str, float]]:
        settings = Settings(_env_file=None, data_dir=data_dir, embedded_worker=False)
        configure_logging(settings.log_level, settings.log_format)
        app = create_app(settings)
        rows: list[tuple[str, float]] = []
        async with LifespanManager(app):
            runtime = app.state.runtime
            account = await runtime.accounts.create("profile@example.org", PASSWORD)
            _, key = await runtime.keys.create(account, "profile")
            view, _ = await runtime.videos.create(account, NewVideo(prompt="a fox"))
            path, auth = f"/api/videos/{view.id}", {"Authorization": f"Bearer {key}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await cpu_per_request(client, path, auth)  # warm-up
                rows.append(("GET /api/videos/{id}", await cpu_per_request(client, path, auth)))
                signed_in = await runtime.keys.authenticate(key)
                runtime.keys.authenticate = _constant(signed_in)
                rows.append(("  key lookup replaced", await cpu_per_request(client, path, auth)))
                found = await runtime.videos.get(account, view.id)
                runtime.videos.get = _constant(found)
                rows.append(
                    ("  and video read replaced", await cpu_per_request(client, path, auth))
                )
                rows.append(("GET /health", await cpu_per_request(client, "/health", {})))
            transport = httpx.ASGITransport(app=hello_app())
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await cpu_per_request(client, "/", {})
                rows.append(("hello-world", await cpu_per_request(client, "/", {})))
        return rows

    with (
        tempfile.TemporaryDirectory(prefix="reelforge-profile-") as tmp,
        open(os.devnull, "w") as sink,
        contextlib.redirect_stderr(sink),
    ):
        rows = asyncio.run(main(Path(tmp)))
    print(f"CPU per request in-process, 64 concurrent, {requests} requests (client included):")
    for name, micros in rows:
        print(f"  {name:<28}{micros:>8.0f} µs")


def _constant(value: object) -> Callable[..., Awaitable[object]]:
    async def constant(*_: object) -> object:
        return value

    return constant


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="counted seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server and level")
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 200])
    parser.add_argument("--database-url", help="serve from this database instead of SQLite")
    parser.add_argument("--profile", type=int, metavar="N", help="profile N requests in-process")
    # The roles this script plays in its own subprocesses.
    parser.add_argument("--serve", nargs=2, metavar=("FACTORY", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/", help=argparse.SUPPRESS)
    parser.add_argument("--header", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve is not None:
        _serve(options.serve[0], int(options.serve[1]))
    elif options.load is not None:
        json.dump(asyncio.run(_generate(options)), sys.stdout)
    elif options.profile is not None:
        profile(options.profile)
    else:
        return benchmark(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
