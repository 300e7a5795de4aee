"""A tiny tmpfs mounted for one test, to make a disk fill up for real (ENOSPC)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Tmpfs:
    path: Path

    def fill(self, name: str = "filler") -> Path:
        """Write a file until the disk is full; delete it to free the space again."""
        filler = self.path / name
        block = b"\0" * 4096
        # ENOSPC is the point.
        with filler.open("wb", buffering=0) as handle, suppress(OSError):
            while True:
                handle.write(block)
        return filler

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Tmpfs]:
    """Mount a tmpfs of `size` (e.g. `256k`) at `path` for the block; needs root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True
    )
    try:
        yield Tmpfs(path)
    finally:
        # Lazy: a store or a server may still hold a file open for a moment.
        subprocess.run(["umount", "-l", str(path)], check=False)
