"""Benchmark `GET /api/videos/{id}` beside the guide's own stack, on SQLite and on PostgreSQL.

Run with `uv run python bench/api.py [--seconds 5] [--rounds 3] [--connections 64 200]`
(`--postgres-url postgresql+asyncpg://…` names the server to make a throwaway database on;
default: REELFORGE_TEST_POSTGRES_URL, else postgres@127.0.0.1:5432).

The anchor is what a user of the guide would run instead: its Express 4 app with the guide's
jsonwebtoken middleware and a pg pool doing one SELECT (`bench/api_guide_stack.cjs`; express@4,
pg@8 and jsonwebtoken@9 are installed with npm into a temporary directory; without npm the
anchor is skipped, and said so). It reads the same row of the same PostgreSQL database that
Reelforge serves, with the same JWT.

Reelforge runs as `reelforge serve` runs it (granian, one worker, the embedded worker and its
emulator, INFO access logs as JSON), twice: on its embedded SQLite and on that PostgreSQL. The
data is made as an operator would: `reelforge migrate`, `users create`, `keys create`, one video
created through the API and left to complete, a JWT from `/api/auth/token`. Each Reelforge is
loaded with the JWT (as the anchor is) and with the API key.

Every server is pinned to CPU 0 with taskset, `wrk` (one thread) to CPU 1. Each figure is the
median of the rounds; rounds alternate the servers so all see the same machine load, and each
measurement follows one uncounted second of the same load. Goal, at each connection count and
on each database: at least 2x the anchor's rate, with a p99 no higher than the anchor's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
PASSWORD = "bench-password-123"
EMAIL = "bench@example.org"
GOAL_RATE = 2.0  # times the anchor's requests per second
SERVER_CPU, LOAD_CPU = "0", "1"
ANCHOR_PACKAGES = ["express@4", "pg@8", "jsonwebtoken@9"]


@dataclass
class Target:
    name: str
    port: int
    path: str
    token: str
    goal: bool = True  # judged against the goal, or shown for comparison only


@dataclass
class Sample:
    rate: float
    p50: float
    p99: float
    errors: int  # non-2xx answers, socket errors and timeouts


def _free_port() -> int:
    from reelforge.emulator.server import free_port

    return free_port()


def _pinned(cpu: str, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *args] if shutil.which("taskset") else args


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            _pinned(SERVER_CPU, args), env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"http://{HOST}:{port}/", timeout=2)
            return
        time.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not come up:\n{log.read_text()[-2000:]}")


def _environment(
    data_dir: Path, secret: str, database_url: str | None, redis_url: str | None = None
) -> dict[str, str]:
    """The caller's environment without any Reelforge setting, on a throwaway data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFORGE_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env |= {
        "REELFORGE_DATA_DIR": str(data_dir),
        "REELFORGE_ADMIN_PASSWORD": PASSWORD,
        "REELFORGE_LOG_FORMAT": "json",
        "REELFORGE_SECRET_KEY": secret,
    }
    if database_url:
        env["REELFORGE_DATABASE_URL"] = database_url
    if redis_url:
        env["REELFORGE_REDIS_URL"] = redis_url
        env["REELFORGE_REDIS_KEY_PREFIX"] = f"bench-{uuid.uuid4().hex[:12]}"
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


def _serve_reelforge(
    name: str, env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> tuple[Target, Target]:
    """A user, a key, a completed video and a JWT; the server, loaded by JWT and by key."""
    _reelforge(env, "migrate")
    _reelforge(env, "users", "create", EMAIL, "--password", PASSWORD)
    made = _reelforge(env, "keys", "create", "--user", EMAIL, "--name", "bench")
    key = re.search(r"rf_[A-Za-z0-9_-]+", made)
    if key is None:
        raise SystemExit(f"no key in the output of `reelforge keys create`:\n{made}")
    port, log = _free_port(), Path(env["REELFORGE_DATA_DIR"]) / "serve.log"
    serve = [sys.executable, "-m", "reelforge.cli.main", "serve", "--host", HOST]
    started.append(_start([*serve, "--port", str(port)], env, log))
    _wait_until_up(port, started[-1], log)
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30) as client:
        auth = {"Authorization": f"Bearer {key.group()}"}
        created = client.post("/api/videos", json={"prompt": "a lighthouse"}, headers=auth)
        if created.status_code != 201:
            raise SystemExit(f"creating the video failed: {created.status_code} {created.text}")
        video_id = created.json()["data"]["id"]
        deadline, status = time.monotonic() + 180, "queued"
        while status not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.5)
            status = client.get(f"/api/videos/{video_id}", headers=auth).json()["data"]["status"]
        if status != "completed":
            raise SystemExit(f"the bench video ended {status}:\n{log.read_text()[-2000:]}")
        signed = client.post("/api/auth/token", json={"email": EMAIL, "password": PASSWORD})
        token = signed.json()["data"]["access_token"]
    path = f"/api/videos/{video_id}"
    return Target(f"{name}, JWT", port, path, token), Target(
        f"{name}, key", port, path, key.group()
    )


def _also_serve(
    name: str, env: dict[str, str], like: Target, started: list[subprocess.Popen[bytes]]
) -> Target:
    """Another server on data made already, loaded as `like` is."""
    port, log = _free_port(), Path(env["REELFORGE_DATA_DIR"]) / "serve.log"
    serve = [sys.executable, "-m", "reelforge.cli.main", "serve", "--host", HOST]
    started.append(_start([*serve, "--port", str(port)], env, log))
    _wait_until_up(port, started[-1], log)
    return Target(name, port, like.path, like.token, goal=False)


def _serve_anchor(
    directory: Path,
    postgres_url: str,
    secret: str,
    video: Target,
    started: list[subprocess.Popen[bytes]],
) -> Target | None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        print("npm or node is missing: the guide's stack (the anchor) is skipped")
        return None
    print(f"installing {', '.join(ANCHOR_PACKAGES)} with npm into {directory} …", flush=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", *ANCHOR_PACKAGES],
        cwd=directory,
        check=True,
    )
    shutil.copy(HERE / "api_guide_stack.cjs", directory / "server.cjs")
    from sqlalchemy import make_url

    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    port = _free_port()
    env = os.environ | {"PORT": str(port), "DATABASE_URL": dsn, "JWT_SECRET": secret}
    started.append(_start(["node", str(directory / "server.cjs")], env, directory / "node.log"))
    _wait_until_up(port, started[-1], directory / "node.log")
    return Target("guide's stack (Express)", port, video.path, video.token)


@contextlib.contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    import asyncpg
    from sqlalchemy import make_url

    name = f"reelforge_bench_{uuid.uuid4().hex[:12]}"
    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- measuring and reporting --------------------------------------------------------------------


def _wrk(target: Target, connections: int, seconds: float) -> str:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    args += [
        "-H",
        f"Authorization: Bearer {target.token}",
        f"http://{HOST}:{target.port}{target.path}",
    ]
    done = subprocess.run(_pinned(LOAD_CPU, args), capture_output=True, text=True, check=True)
    return done.stdout


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _measure(target: Target, connections: int, options: argparse.Namespace) -> Sample:
    _wrk(target, connections, options.warmup)
    out = _wrk(target, connections, options.seconds)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _milliseconds(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _milliseconds(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if found := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(found.group(1))
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(n) for n in found.groups())
    return Sample(rate, p50, p99, errors)


def _median(samples: list[Sample]) -> Sample:
    return Sample(
        rate=statistics.median(s.rate for s in samples),
        p50=statistics.median(s.p50 for s in samples),
        p99=statistics.median(s.p99 for s in samples),
        errors=sum(s.errors for s in samples),
    )


def _row(target: Target, connections: int, s: Sample, anchor: Sample | None) -> str:
    row = f"{target.name:<28}{connections:>6}{s.rate:>9.0f}{s.p50:>9.1f}{s.p99:>9.1f}"
    row += f"{s.errors:>8}"
    if anchor is not None and anchor is not s:
        rate, p99 = s.rate / anchor.rate, s.p99 / anchor.p99
        met = rate >= GOAL_RATE and s.p99 <= anchor.p99
        verdict = ("MET" if met else "MISSED") if target.goal else "(not judged)"
        row += f"{rate:>9.2f}x{p99:>9.2f}x   {verdict}"
    return row


def benchmark(options: argparse.Namespace) -> int:
    secret = uuid.uuid4().hex * 2
    started: list[subprocess.Popen[bytes]] = []
    with (
        tempfile.TemporaryDirectory(prefix="reelforge-bench-") as tmp,
        _postgres_database(options.postgres_url) as postgres_url,
    ):
        root = Path(tmp)
        try:
            for name in ("sqlite", "postgres", "alone", "anchor"):
                (root / name).mkdir()
            sqlite = _serve_reelforge(
                "Reelforge SQLite", _environment(root / "sqlite", secret, None), started
            )
            postgres = _serve_reelforge(
                "Reelforge PG + Redis",
                _environment(root / "postgres", secret, postgres_url, options.redis_url),
                started,
            )
            # The same rows without Redis: nothing can be kept in memory (shown, not judged).
            alone = _also_serve(
                "Reelforge PG alone, JWT",
                _environment(root / "alone", secret, postgres_url),
                postgres[0],
                started,
            )
            anchor = _serve_anchor(root / "anchor", postgres_url, secret, postgres[0], started)
            targets = [t for t in (anchor, *sqlite, *postgres, alone) if t is not None]
            for target in targets:
                answer = httpx.get(
                    f"http://{HOST}:{target.port}{target.path}",
                    headers={"Authorization": f"Bearer {target.token}"},
                )
                if answer.status_code != 200:
                    raise SystemExit(f"{target.name}: {answer.status_code} {answer.text[:300]}")
            return _report(targets, anchor, options)
        finally:
            for process in started:
                _stop(process)


def _report(targets: list[Target], anchor: Target | None, options: argparse.Namespace) -> int:
    print(f"{os.cpu_count()} CPUs; servers on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU};", end=" ")
    print(f"load average {os.getloadavg()[0]:.1f} before the run;", end=" ")
    print(f"medians of {options.rounds} rounds of {options.seconds:g} s\n")
    header = f"{'':<28}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    print(header + (f"{'rate':>10}{'p99':>10}   goal" if anchor else ""))
    missed = 0
    for connections in options.connections:
        runs: dict[str, list[Sample]] = {t.name: [] for t in targets}
        for _ in range(options.rounds):
            for target in targets:
                runs[target.name].append(_measure(target, connections, options))
        results = {name: _median(samples) for name, samples in runs.items()}
        base = results[anchor.name] if anchor is not None else None
        for target in targets:
            line = _row(target, connections, results[target.name], base)
            missed += line.endswith("MISSED")
            print(line, flush=True)
        print()
    print(f"goal: at least {GOAL_RATE:g}x the anchor's rate with a p99 no higher than its p99")
    print(f"load average {os.getloadavg()[0]:.1f} after the run")
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="counted seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server and level")
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 200])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "REELFORGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="the PostgreSQL server to make a throwaway database on",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REELFORGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="the Redis beside PostgreSQL (a key prefix of the run's own)",
    )
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    return benchmark(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
