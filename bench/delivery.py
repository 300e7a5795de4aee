"""Benchmark downloads of an archived video beside nginx sending the same file from disk.

Run with `uv run python bench/delivery.py [--seconds 5] [--rounds 3] [--connections 64 200]`.

The video is made the way an operator would: `reelforge migrate`, a user, an API key, one video
created through the API and left to the embedded worker (the built-in emulator) to complete and
archive. Then Reelforge is served as `reelforge serve` runs it (granian, one worker, INFO access
logs) without the embedded worker, and nginx (Debian's `nginx-light`, one worker process,
`sendfile on`, its access log on) serves the archive directory. Each server is pinned to CPU 0
with `taskset`, `wrk` (one thread) to CPU 1, so both servers get one core and the load generator
the other. Rounds alternate the servers so both see the same machine load; each figure is the
median of the rounds.

Measured, at each number of connections: full downloads (MB/s) and 256 KiB `Range` requests
(req/s) of the same file, from nginx, from Reelforge by the signed URL its API hands out
(`file_url`: no credential or database lookup), and from Reelforge by
`/api/videos/{id}/download` with an API key (a key lookup and a video read per request).
Goals (issue 20): full downloads at least 0.5x nginx, 256 KiB ranges at least 0.25x nginx.
Without nginx or wrk on the PATH the bench says so and stops.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
PASSWORD = "bench-password-123"
RANGE_BYTES = 256 * 1024
GOALS = {"full": 0.5, "range": 0.25}
SERVER_CPU, CLIENT_CPU = "0", "1"
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    access_log {root}/nginx-access.log;
    client_body_temp_path {root}/nginx-tmp;
    server {{
        listen {host}:{port};
        root {archive};
    }}
}}
"""


@dataclass(frozen=True)
class Target:
    name: str
    server: str
    url: str
    headers: tuple[str, ...] = ()


@dataclass
class Sample:
    rate: float
    megabytes: float
    p99_ms: float
    errors: int


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFORGE_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return env | {
        "REELFORGE_DATA_DIR": str(data_dir),
        "REELFORGE_ADMIN_PASSWORD": PASSWORD,
        "REELFORGE_LOG_FORMAT": "json",
        "REELFORGE_HOST": HOST,
    }


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
        return subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up:\n{log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT if "nginx" not in str(process.args) else signal.SIGQUIT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serve(env: dict[str, str], data_dir: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    from reelforge.emulator.server import free_port

    port, log = free_port(), data_dir / f"{name}.log"
    command = [sys.executable, "-m", "reelforge.cli.main", "serve", "--port", str(port)]
    process = _start(command, env, log)
    base = f"http://{HOST}:{port}"
    _wait_until_up(f"{base}/health", process, log)
    return process, base


def _make_video(base: str, key: str) -> dict[str, object]:
    """One video made through the API and waited for until the embedded worker archives it."""
    import httpx

    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        made = client.post(
            "/api/videos", json={"prompt": "a lighthouse in a storm", "seconds": "12"}
        )
        if made.status_code != 201:
            raise SystemExit(f"creating the video failed: {made.status_code} {made.text}")
        video: dict[str, object] = made.json()["data"]
        deadline = time.monotonic() + 300
        while video["status"] not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.5)
            video = client.get(f"/api/videos/{video['id']}").json()["data"]
        if video["status"] != "completed":
            raise SystemExit(f"the video did not complete: {video}")
        return video


@contextlib.contextmanager
def servers(data_dir: Path) -> Iterator[tuple[list[Target], int]]:
    """nginx and Reelforge on the same archived file; the targets to measure, the file's size."""
    import httpx

    from reelforge.emulator.server import free_port

    env = _environment(data_dir)
    _reelforge(env, "migrate")
    _reelforge(env, "users", "create", "bench@example.org", "--password", PASSWORD)
    made = _reelforge(env, "keys", "create", "--user", "bench@example.org", "--name", "bench")
    found = re.search(r"rf_[A-Za-z0-9_-]+", made)
    if found is None:
        raise SystemExit(f"no key in the output of `reelforge keys create`:\n{made}")
    key = found.group()
    first, base = _serve(env, data_dir, "make")
    try:
        video = _make_video(base, key)
    finally:
        _stop(first)
    started: list[subprocess.Popen[bytes]] = []
    try:
        reelforge, base = _serve(env | {"REELFORGE_EMBEDDED_WORKER": "false"}, data_dir, "serve")
        started.append(reelforge)
        # A fresh signed URL from the server that is measured (the first one's may expire).
        video = httpx.get(
            f"{base}/api/videos/{video['id']}", headers={"Authorization": f"Bearer {key}"}
        ).json()["data"]
        archive = data_dir / "objects"
        key_path = f"videos/{video['id']}/video.mp4"
        size = (archive / key_path).stat().st_size
        port = free_port()
        (data_dir / "nginx-tmp").mkdir()
        conf = data_dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=data_dir, host=HOST, port=port, archive=archive))
        nginx = _start(["nginx", "-c", str(conf), "-p", str(data_dir)], env, data_dir / "n.log")
        started.append(nginx)
        _wait_until_up(f"http://{HOST}:{port}/{key_path}", nginx, data_dir / "n.log")
        targets = [
            Target("nginx", "nginx", f"http://{HOST}:{port}/{key_path}"),
            Target("reelforge, signed URL", "reelforge", f"{base}{video['file_url']}"),
            Target(
                "reelforge, API key",
                "reelforge",
                f"{base}/api/videos/{video['id']}/download",
                (f"Authorization: Bearer {key}",),
            ),
        ]
        _check(targets, size)
        yield targets, size
    finally:
        for process in started:
            _stop(process)


def _check(targets: list[Target], size: int) -> None:
    """Every target answers the whole file and a range with the same bytes."""
    import httpx

    wanted = f"bytes={size // 3}-{size // 3 + RANGE_BYTES - 1}"
    seen: set[tuple[bytes, bytes]] = set()
    for target in targets:
        headers = dict(line.split(": ", 1) for line in target.headers)
        whole = httpx.get(target.url, headers=headers)
        part = httpx.get(target.url, headers={**headers, "Range": wanted})
        if whole.status_code != 200 or part.status_code != 206 or len(whole.content) != size:
            raise SystemExit(f"{target.name}: {whole.status_code} / {part.status_code}")
        seen.add((whole.content, part.content))
    if len(seen) != 1:
        raise SystemExit("the servers do not send the same bytes")


def _readable(directory: Path) -> Path:
    """nginx's worker runs as another user when started by root: it must see the archive."""
    directory.chmod(0o755)
    return directory


def _wrk(target: Target, connections: int, seconds: int, ranged: str | None) -> Sample:
    headers = [*target.headers, *([f"Range: {ranged}"] if ranged else [])]
    command = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}"]
    command += [f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for header in headers:
        command += ["-H", header]
    done = subprocess.run(
        [*command, target.url], capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    return _parse(done.stdout)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_BYTES = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}


def _parse(output: str) -> Sample:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", output)
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", output)
    if rate is None or transfer is None or p99 is None:
        raise SystemExit(f"unexpected wrk output:\n{output}")
    # "Non-2xx or 3xx responses: N" and "Socket errors: connect N, read N, write N, timeout N".
    problems = re.findall(r"(?:responses:|connect|read|write|timeout) (\d+)", output)
    errors = sum(int(n) for n in problems)
    return Sample(
        rate=float(rate.group(1)),
        megabytes=float(transfer.group(1)) * _BYTES[transfer.group(2)],
        p99_ms=float(p99.group(1)) * _UNITS[p99.group(2)],
        errors=errors,
    )


def _median(samples: list[Sample]) -> Sample:
    return Sample(
        rate=statistics.median(s.rate for s in samples),
        megabytes=statistics.median(s.megabytes for s in samples),
        p99_ms=statistics.median(s.p99_ms for s in samples),
        errors=sum(s.errors for s in samples),
    )


def benchmark(options: argparse.Namespace) -> int:
    missing = [tool for tool in ("nginx", "wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        print(f"skipped: {', '.join(missing)} not on the PATH (Debian: nginx-light, wrk)")
        return 0
    with (
        tempfile.TemporaryDirectory(prefix="reelforge-delivery-") as tmp,
        servers(_readable(Path(tmp))) as (targets, size),
    ):
        print(
            f"{size / 1e6:.2f} MB archived mp4; each server on CPU {SERVER_CPU}, wrk on CPU "
            f"{CLIENT_CPU}; {os.cpu_count()} CPUs, load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {options.rounds} rounds of "
            f"{options.seconds:g} s, medians"
        )
        start = size // 3
        every = {"full": None, "range": f"bytes={start}-{start + RANGE_BYTES - 1}"}
        kinds = {kind: every[kind] for kind in options.kinds}
        results: dict[tuple[str, str, int], list[Sample]] = {}
        for round_number in range(options.rounds):
            # Alternate which server goes first, so neither always follows the other.
            order = targets if round_number % 2 == 0 else [*targets[1:], targets[0]]
            for connections in options.connections:
                for kind, ranged in kinds.items():
                    for target in order:
                        sample = _wrk(target, connections, options.seconds, ranged)
                        results.setdefault((kind, target.name, connections), []).append(sample)
        return _report(targets, results, options.connections, options.kinds)


def _report(
    targets: list[Target],
    results: dict[tuple[str, str, int], list[Sample]],
    levels: list[int],
    kinds: list[str],
) -> int:
    print(f"\n{'':<34}{'req/s':>9}{'MB/s':>9}{'p99 ms':>9}{'errors':>8}{'x nginx':>9}  goal")
    failed = 0
    for kind in kinds:
        goal = GOALS[kind]
        for connections in levels:
            anchor = _median(results[(kind, "nginx", connections)])
            label = "full download" if kind == "full" else "256 KiB range"
            print(f"{label}, {connections} connections")
            for target in targets:
                sample = _median(results[(kind, target.name, connections)])
                ratio = sample.rate / anchor.rate
                verdict = ""
                if target.server != "nginx":
                    met = ratio >= goal
                    verdict = f"{'met' if met else 'MISSED'} (>= {goal:g}x)"
                    failed += 0 if met or target.name.endswith("API key") else 1
                print(
                    f"  {target.name:<32}{sample.rate:>9.0f}{sample.megabytes:>9.0f}"
                    f"{sample.p99_ms:>9.1f}{sample.errors:>8}{ratio:>9.2f}  {verdict}"
                )
    print("\nsigned URLs: " + ("every goal met" if not failed else f"{failed} goal(s) missed"))
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 200])
    parser.add_argument("--kinds", nargs="+", choices=list(GOALS), default=list(GOALS))
    return benchmark(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
