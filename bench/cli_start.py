"""Benchmark how long the CLI takes to start: `--help` and client commands, beside the anchors.

Run with `uv run python bench/cli_start.py [--runs N]`. Each command is started N times (default
7) as a fresh interpreter, the way a shell runs `reelforge`, and the median wall time printed
beside two anchors measured in the same run: a bare `python -c pass` (the floor) and importing
the server's stack (`reelforge.api.app`, what every command paid before the CLI imported lazily).
The goal (issue 21): `--help` and the client commands well under a second. The client command
`list` runs against a port nobody listens on, so it measures start-up and its error path, not a
server.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

PYTHON = sys.executable
UNREACHABLE = {"REELFORGE_URL": "http://127.0.0.1:9", "REELFORGE_API_KEY": "rf_bench"}

COMMANDS: dict[str, list[str]] = {
    "anchor: python -c pass": [PYTHON, "-c", "pass"],
    "anchor: import the server (reelforge.api.app)": [PYTHON, "-c", "import reelforge.api.app"],
    "reelforge --help": [PYTHON, "-m", "reelforge.cli.main", "--help"],
    "reelforge generate --help": [PYTHON, "-m", "reelforge.cli.main", "generate", "--help"],
    "reelforge list (no server)": [PYTHON, "-m", "reelforge.cli.main", "list"],
    "reelforge estimate --help": [PYTHON, "-m", "reelforge.cli.main", "estimate", "--help"],
}


def _median_seconds(command: list[str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the child: on a loaded machine
    the wall time waits for the CPU, the CPU time much less."""
    env = os.environ | UNREACHABLE
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    print(f"median of {runs} starts, {time.strftime('%Y-%m-%d %H:%M')} (noisy on a shared VM)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("     wall       cpu")
    for name, command in COMMANDS.items():
        wall, cpu = _median_seconds(command, runs)
        print(f"  {wall * 1000:7.0f} ms {cpu * 1000:7.0f} ms  {name}")


if __name__ == "__main__":
    main()
