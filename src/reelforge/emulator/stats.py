"""The emulator's call counters per route and answered status (for `GET /_emulator/stats`)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any


class Stats:
    """Call counts per route and per answered status; routes record from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._statuses: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def record(self, route: str, status: int) -> None:
        with self._lock:
            self._calls[route] += 1
            self._statuses[route][str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self._calls.values()),
                "calls": dict(self._calls),
                "statuses": {route: dict(counts) for route, counts in self._statuses.items()},
            }

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._statuses.clear()
