"""Benchmark live updates: one bus notice fanned out to 1,000 SSE and 1,000 socket.io clients,
beside a bare in-process broadcast; and upstream completion to the client's `video:update`.

Run with `uv run python bench/fanout.py [--clients N] [--rounds R] [--videos M]
[--redis-url redis://...]`. Needs Redis (default: $REELFORGE_TEST_REDIS_URL, else
redis://127.0.0.1:6379/15; keys under a throwaway prefix), Node 20 and npm (the pinned
socket.io-client is installed into tests/support/node on first use). About a minute.

Servers: granian with one worker on a loopback port each, as `reelforge serve` runs. Reelforge
on SQLite with the Redis bus, its provider the emulator in its own process (`reelforge
emulator`), which signs `video.completed` webhooks to a relay in this script.

1. **Fan-out.** N SSE streams (`GET /api/videos/{id}/stream`) and N socket.io clients
   subscribed (`subscribe:video`) to one finished video of one user. A round publishes one
   VIDEO notice on Reelforge's bus channel: each process re-reads the video once and pushes it
   to every follower. The anchor, in the same run, is the **bare broadcast**: the same libraries
   (sse-starlette, python-socketio, granian, the same Redis hop) in an app that sends one
   pre-built payload of the same size to every connection on each channel message: no auth, no
   database read, no per-connection bookkeeping. Rounds alternate between the two servers; the
   first two of each are warm-up. A client's latency is its arrival time minus the publish time
   (one machine, one clock). The load is one Node process: the real socket.io-client (websocket
   transport) and fetch reading the SSE stream. Printed: p50 and p99 per transport and server,
   and Reelforge's p99 over the bare one's (goal: at most 1.5).
2. **Completion -> `video:update`.** M videos created at once (embedded worker, webhook mode),
   each followed by a socket.io client; latency = the completed `video:update`'s arrival minus
   the arrival of the upstream's `video.completed` webhook at the relay. It includes the
   engine's retrieve and the archive download (goal: p99 under 0.5 s plus the download; the
   download alone is not split out here).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NODE_DIR = ROOT / "tests" / "support" / "node"
CLIENTS = HERE / "fanout_clients.cjs"
HOST = "127.0.0.1"
PASSWORD = "bench-password-123"
GOAL_RATIO = 1.5
WARMUP_ROUNDS = 2
BARE_CHANNEL = "bare"
VERBOSE = bool(os.environ.get("BENCH_VERBOSE"))


# --- the bare broadcast (served by this script: `--serve-bare PORT`) --------------------------


def bare_app() -> Any:
    """The anchor: on every message on a Redis channel, one pre-built payload to every SSE
    stream and, through one room, every socket.io client."""
    import asyncio
    from contextlib import asynccontextmanager

    import socketio
    from redis.asyncio import Redis
    from sse_starlette import EventSourceResponse, ServerSentEvent
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    payload = json.loads(os.environ["BENCH_PAYLOAD"])
    data = json.dumps(payload, separators=(",", ":"))
    streams: set[asyncio.Queue[str]] = set()
    server = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)

    async def connect(sid: str, environ: dict[str, Any], auth: object = None) -> None:
        await server.enter_room(sid, "all")

    server.on("connect", connect)

    async def stream(request: Request) -> EventSourceResponse:
        queue: asyncio.Queue[str] = asyncio.Queue()
        streams.add(queue)

        async def events() -> AsyncIterator[ServerSentEvent]:
            try:
                while True:
                    sent = await queue.get()
                    yield ServerSentEvent(data=sent, event="video.update", id=str(time.time_ns()))
            finally:
                streams.discard(queue)

        return EventSourceResponse(events(), ping=15, send_timeout=30)

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def listen() -> None:
        redis = Redis.from_url(os.environ["BENCH_REDIS_URL"])
        async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(os.environ["BENCH_CHANNEL"])
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    for queue in streams:
                        queue.put_nowait(data)
                    await server.emit("video:update", payload, room="all")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(listen())
        yield
        task.cancel()

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/stream", stream),
            Mount("/socket.io", socketio.ASGIApp(server, socketio_path="/socket.io")),
        ],
        lifespan=lifespan,
    )


def _serve_bare(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(
        target="fanout:bare_app",
        factory=True,
        address=HOST,
        port=port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        working_dir=HERE,
    ).serve()


# --- the relay: upstream webhooks noted, then forwarded to Reelforge --------------------------


@dataclass
class Marks:
    """Wall-clock ms per upstream video id: the completed webhook's arrival at the relay, its
    answer from Reelforge, and each content download's (start, end) through the relay."""

    arrivals: dict[str, float]
    answered: dict[str, float]
    downloads: dict[str, list[tuple[float, float]]]


def relay_app(target: str, upstream: str, marks: Marks) -> Any:
    """Webhooks from the emulator to Reelforge, and Reelforge's calls to the emulator, timed:
    the goal is set beside "the download", which this measures per video."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=target, timeout=30)
    emulator = httpx.AsyncClient(base_url=upstream, timeout=60)
    arrivals, answered = marks.arrivals, marks.answered

    async def provider(request: Request) -> Response:
        started = time.time() * 1000
        path = request.url.path
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
        answer = await emulator.request(
            request.method,
            path,
            params=request.query_params,
            content=await request.body(),
            headers=headers,
        )
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[3] == "content":  # v1/videos/{id}/content
            marks.downloads.setdefault(parts[2], []).append((started, time.time() * 1000))
        kept = {
            k: v
            for k, v in answer.headers.items()
            if k not in ("content-length", "content-encoding", "transfer-encoding", "connection")
        }
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    async def relay(request: Request) -> Response:
        arrived = time.time() * 1000
        body = await request.body()
        completed = None
        with contextlib.suppress(ValueError, KeyError, TypeError):
            event = json.loads(body)
            if event["type"] == "video.completed":
                completed = event["data"]["id"]
                arrivals.setdefault(completed, arrived)
        headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
        headers["content-type"] = request.headers.get("content-type", "application/json")
        answer = await client.post("/webhooks/openai", content=body, headers=headers)
        if completed is not None:
            answered.setdefault(completed, time.time() * 1000)
        return Response(answer.content, status_code=answer.status_code)

    return Starlette(
        routes=[
            Route("/relay", relay, methods=["POST"]),
            Route("/v1/{path:path}", provider, methods=["GET", "POST", "DELETE"]),
        ]
    )


# --- processes ----------------------------------------------------------------------------------


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up:\n{log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _user_with_key(data_dir: Path) -> str:
    """Migrate the (SQLite) database and make the bench's user; its API key."""
    import asyncio

    from reelforge.db import migrate
    from reelforge.db.engine import Database
    from reelforge.services.accounts import Accounts
    from reelforge.services.keys import ApiKeys

    async def make() -> str:
        url = f"sqlite+aiosqlite:///{data_dir / 'reelforge.db'}"
        await migrate.upgrade(url)
        database = Database(url)
        try:
            account = await Accounts(database).create("bench@example.org", PASSWORD)
            _, key = await ApiKeys(database).create(account, "bench")
            return key
        finally:
            await database.close()

    return asyncio.run(make())


@dataclass
class Setup:
    reelforge: str
    bare: str
    key: str
    video_id: str
    payload: dict[str, Any]
    database: Path
    redis_url: str
    bus_channel: str
    marks: Marks


@contextlib.contextmanager
def servers(data_dir: Path, redis_url: str) -> Iterator[Setup]:
    """The emulator, the relay, Reelforge with a user, a key and a finished video, and the bare
    broadcast; stopped after."""
    import httpx

    from reelforge.emulator.server import free_port, running
    from reelforge.providers.registry import EMULATOR_API_KEY

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REELFORGE_", "OPENAI_"))}
    base.pop("DATABASE_URL", None)
    base.pop("REDIS_URL", None)
    ports = {name: free_port() for name in ("emulator", "reelforge", "bare")}
    reelforge_url = f"http://{HOST}:{ports['reelforge']}"
    marks = Marks({}, {}, {})
    started: list[subprocess.Popen[bytes]] = []
    with running(relay_app(reelforge_url, f"http://{HOST}:{ports['emulator']}", marks)) as relay:
        env = base | {
            "REELFORGE_DATA_DIR": str(data_dir),
            "REELFORGE_ADMIN_PASSWORD": PASSWORD,
            "REELFORGE_LOG_FORMAT": "json",
            "REELFORGE_LOG_LEVEL": "warning",
            "REELFORGE_REDIS_URL": redis_url,
            "REELFORGE_REDIS_KEY_PREFIX": prefix,
            "REELFORGE_PROVIDER": "openai",
            # Through the relay, which times each video's download.
            "REELFORGE_OPENAI_BASE_URL": f"{relay.root}/v1",
            "REELFORGE_OPENAI_API_KEY": EMULATOR_API_KEY,
            "REELFORGE_PROVIDER_WEBHOOK_SECRET": secret,
            "REELFORGE_REALTIME_CONNECTIONS_PER_USER": "10000",
            "REELFORGE_DEFAULT_VIDEO_QUOTA": "",
            "REELFORGE_CREATE_RATE_LIMIT": "1000/minute",
            "REELFORGE_EMULATOR_WEBHOOK_URL": f"{relay.root}/relay",
            "REELFORGE_EMULATOR_WEBHOOK_SECRET": secret,
        }
        try:
            log = data_dir / "emulator.log"
            started.append(
                _start(
                    [
                        sys.executable,
                        "-m",
                        "reelforge.cli.main",
                        "emulator",
                        "--host",
                        HOST,
                        "--port",
                        str(ports["emulator"]),
                    ],
                    env,
                    log,
                )
            )
            key = _user_with_key(data_dir)
            log = data_dir / "serve.log"
            serve = [sys.executable, "-m", "reelforge.cli.main", "serve", "--host", HOST]
            started.append(_start([*serve, "--port", str(ports["reelforge"])], env, log))
            _wait_until_up(f"{reelforge_url}/ready", started[-1], log)
            video_id, payload = _finished_video(reelforge_url, key)
            bare_env = env | {
                "BENCH_PAYLOAD": json.dumps(payload),
                "BENCH_REDIS_URL": redis_url,
                "BENCH_CHANNEL": f"{prefix}:{BARE_CHANNEL}",
            }
            log = data_dir / "bare.log"
            args = [sys.executable, str(Path(__file__).resolve()), "--serve-bare"]
            started.append(_start([*args, str(ports["bare"])], bare_env, log))
            bare_url = f"http://{HOST}:{ports['bare']}"
            _wait_until_up(f"{bare_url}/health", started[-1], log)
            with httpx.Client() as probe:
                probe.get(f"{bare_url}/health")
            yield Setup(
                reelforge=reelforge_url,
                bare=bare_url,
                key=key,
                video_id=video_id,
                payload=payload,
                database=data_dir / "reelforge.db",
                redis_url=redis_url,
                bus_channel=f"{prefix}:bus",
                marks=marks,
            )
        finally:
            for process in reversed(started):
                _stop(process)


def _finished_video(url: str, key: str) -> tuple[str, dict[str, Any]]:
    import httpx

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        made = c.post("/api/videos", json={"prompt": "a lighthouse in a storm"})
        if made.status_code != 201:
            raise SystemExit(f"creating the video failed: {made.status_code} {made.text}")
        video_id: str = made.json()["data"]["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            data: dict[str, Any] = c.get(f"/api/videos/{video_id}").json()["data"]
            if data["status"] == "completed":
                return video_id, {"videoId": video_id, **data}
            if data["status"] in ("failed", "cancelled"):
                raise SystemExit(f"the bench's video ended {data['status']}: {data}")
            time.sleep(0.2)
    raise SystemExit("the bench's video did not finish in two minutes")


# --- the clients ----------------------------------------------------------------------------


class Clients:
    """The Node process of clients, spoken to in JSON lines."""

    def __init__(self) -> None:
        if not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True
            )
        env = os.environ | {"NODE_PATH": str(NODE_DIR / "node_modules")}
        self.process = subprocess.Popen(
            ["node", str(CLIENTS)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def expect(self, **match: Any) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit("the Node clients exited")
            message: dict[str, Any] = json.loads(line)
            if "error" in message:
                raise SystemExit(f"a client failed: {message}")
            if VERBOSE:
                print("node:", str(message)[:200], file=sys.stderr)
            if all(
                message.get(k) == v if v is not None else k in message for k, v in match.items()
            ):
                return message

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def fan_out(setup: Setup, options: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    import asyncio

    from redis import Redis
    from redis.asyncio import Redis as AsyncRedis

    from reelforge.bus import Notice, Topic
    from reelforge.bus.redis import RedisBus

    clients = Clients()
    redis = Redis.from_url(setup.redis_url)
    # Reelforge's notice goes out as its lifecycle sends one, numbered by RedisBus: a raw
    # PUBLISH without the number is dropped by every server as malformed.
    loop = asyncio.new_event_loop()
    async_redis = AsyncRedis.from_url(setup.redis_url)
    bus = RedisBus(async_redis, setup.bus_channel)
    latencies: dict[str, dict[str, list[float]]] = {
        "bare": {"sse": [], "io": []},
        "reelforge": {"sse": [], "io": []},
    }
    try:
        started = time.monotonic()
        clients.send(
            op="open",
            target="bare",
            url=setup.bare,
            sse="/stream",
            n=options.clients,
            token=None,
            video=None,
        )
        clients.expect(target="bare", ready=True)
        clients.send(
            op="open",
            target="reelforge",
            url=setup.reelforge,
            sse=f"/api/videos/{setup.video_id}/stream",
            n=options.clients,
            token=setup.key,
            video=setup.video_id,
        )
        clients.expect(target="reelforge", ready=True)
        print(f"{2 * options.clients} clients on each server in {time.monotonic() - started:.1f} s")
        bare_channel = setup.bus_channel.rsplit(":", 1)[0] + f":{BARE_CHANNEL}"
        notice = Notice(Topic.VIDEO, setup.video_id)
        for round_ in range(options.rounds + WARMUP_ROUNDS):
            for target in ("bare", "reelforge"):
                clients.send(op="arm", target=target)
                clients.expect(target=target, armed=True)
                published = time.time() * 1000
                if target == "bare":
                    redis.publish(bare_channel, b"go")
                else:
                    loop.run_until_complete(bus.publish(notice))
                arrived = clients.expect(target=target, sse=None)
                if round_ >= WARMUP_ROUNDS:
                    for kind in ("sse", "io"):
                        latencies[target][kind] += [at - published for at in arrived[kind]]
                time.sleep(0.05)
    finally:
        clients.close()
        redis.close()
        loop.run_until_complete(bus.aclose())
        loop.run_until_complete(async_redis.aclose())
        loop.close()
    return latencies


def completions(setup: Setup, options: argparse.Namespace) -> list[tuple[float, float]]:
    """Per video: the completed `video:update`'s arrival minus the upstream webhook's, and that
    less the time spent downloading the video's files from upstream; with `--breakdown`, where
    each video's time went (printed)."""
    import httpx

    clients = Clients()
    ids: list[str] = []
    try:
        with httpx.Client(
            base_url=setup.reelforge, headers={"Authorization": f"Bearer {setup.key}"}, timeout=30
        ) as client:
            for n in range(options.videos):
                made = client.post("/api/videos", json={"prompt": f"a kite, take {n}"})
                if made.status_code != 201:
                    raise SystemExit(f"create failed: {made.status_code} {made.text}")
                ids.append(made.json()["data"]["id"])
                clients.send(op="watch", url=setup.reelforge, token=setup.key, video=ids[-1])
        done: dict[str, float] = {}
        while len(done) < len(ids):
            message = clients.expect(completed=None)
            done[message["video"]] = message["completed"]
    finally:
        clients.close()
    marks = ",".join("?" * len(ids))
    with sqlite3.connect(setup.database) as database:
        query = f"SELECT id, provider_video_id, archived_at FROM videos WHERE id IN ({marks})"
        rows = database.execute(query, ids).fetchall()
    timed = [_timed(setup.marks, done[video], pid, at) for video, pid, at in rows]
    measured = [t for t in timed if t is not None]
    if options.breakdown:
        print(f"{'webhook':>9}{'archive':>9}{'(download':>10}{')':1}{'pushed':>8}{'total':>8}")
        for total, hook, archive, download, push in sorted(measured):
            print(f"{hook:9.0f}{archive:9.0f}{download:10.0f} {push:8.0f}{total:8.0f}")
    return [(t[0], t[0] - t[3]) for t in measured]


def _timed(
    marks: Marks, done: float, provider_id: str, archived_at: str | None
) -> tuple[float, float, float, float, float] | None:
    """(total, webhook answered, archived, of which downloading, pushed), in ms: the
    webhook's arrival at the relay -> Reelforge answered it -> the video archived (the
    engine's claim, retrieve and downloads) -> its `video:update` at the client."""
    from datetime import UTC, datetime

    arrived = marks.arrivals.get(provider_id)
    answered = marks.answered.get(provider_id)
    if arrived is None or answered is None or archived_at is None:
        return None
    archived = datetime.fromisoformat(archived_at).replace(tzinfo=UTC).timestamp() * 1000
    spans = [(a, b) for a, b in marks.downloads.get(provider_id, []) if a >= arrived]
    download = max(b for _, b in spans) - min(a for a, _ in spans) if spans else 0.0
    return (done - arrived, answered - arrived, archived - answered, download, done - archived)


def _report(
    options: argparse.Namespace,
    latencies: dict[str, dict[str, list[float]]],
    completed: list[tuple[float, float]],
) -> None:
    def p(values: list[float], share: float) -> float:
        return _percentile(values, share)

    clients = options.clients
    print(
        f"\nfan-out: one publish -> {clients} SSE + {clients} socket.io clients per server, "
        f"{options.rounds} rounds (after {WARMUP_ROUNDS} warm-up)"
    )
    print(f"{'':26}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, name in (("sse", "SSE"), ("io", "socket.io")) if latencies else ():
        bare, ours = latencies["bare"][kind], latencies["reelforge"][kind]
        ratio = p(ours, 0.99) / p(bare, 0.99)
        print(f"{name + ', bare broadcast':26}{p(bare, 0.5):9.1f}{p(bare, 0.99):9.1f}")
        print(
            f"{name + ', Reelforge':26}{p(ours, 0.5):9.1f}{p(ours, 0.99):9.1f}"
            f"   p99 {ratio:.2f}x the bare (goal <= {GOAL_RATIO})"
        )
    if completed:
        totals = [total for total, _ in completed]
        beyond = [rest for _, rest in completed]
        print(
            f"\nupstream video.completed webhook -> video:update, {len(completed)} videos: "
            f"p50 {p(totals, 0.5):.0f} ms, p99 {p(totals, 0.99):.0f} ms; "
            f"less each video's download from upstream: p50 {p(beyond, 0.5):.0f} ms, "
            f"p99 {p(beyond, 0.99):.0f} ms (goal: p99 < 500 ms plus the download)"
        )
    else:
        print("\nno completion measured (no webhook arrived)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="per transport")
    parser.add_argument("--rounds", type=int, default=10, help="counted rounds per server")
    parser.add_argument("--videos", type=int, default=30, help="for completion -> video:update")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REELFORGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    parser.add_argument(
        "--completion-only", action="store_true", help="skip the fan-out (1,000s of clients)"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="print where each completion's time went"
    )
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        _serve_bare(options.serve_bare)
        return 0
    # Stopped from outside (a timeout), still stop the servers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="reelforge-fanout-") as tmp,
        servers(Path(tmp), options.redis_url) as setup,
    ):
        latencies = {} if options.completion_only else fan_out(setup, options)
        completed = completions(setup, options)
    _report(options, latencies, completed)
    print(f"\nwhole run: {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
