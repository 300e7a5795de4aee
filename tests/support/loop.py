"""The event loop the tests run on: uvloop, as `reelforge serve` and `reelforge worker` do."""

from typing import Any

BACKEND: tuple[str, dict[str, Any]] = ("asyncio", {"use_uvloop": True})
