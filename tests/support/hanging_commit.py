"""A `reelforge worker` whose first archive commit writes a marker file, then hangs forever.

Run as `python tests/support/hanging_commit.py [worker options]` with the marker's path in
REELFORGE_TEST_COMMIT_MARKER. The test waits for the marker and SIGKILLs the process: the
worker dies between `Storage.put_temporary` and `Storage.commit`, leaving a temporary object.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from reelforge.cli.main import app
from reelforge.storage import Storage, StoredObject

MARKER_ENV = "REELFORGE_TEST_COMMIT_MARKER"


async def _hang_before_commit(self: Storage, temporary: StoredObject, key: str) -> StoredObject:
    marker = Path(os.environ[MARKER_ENV])
    # Written aside and renamed, so the test never reads half a marker.
    draft = marker.with_name(f".{marker.name}.draft")
    draft.write_text(f"{temporary.key}\n{key}\n")
    draft.rename(marker)
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


def main() -> None:
    # The fault: the upload is done and the commit never happens.
    Storage.commit = _hang_before_commit  # type: ignore[method-assign]
    app(args=["worker", *sys.argv[1:]], prog_name="reelforge")


if __name__ == "__main__":
    main()
