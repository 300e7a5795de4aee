"""The README's five-minute walkthrough, run as written against a live server."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest

from tests.support.server import Server

README = Path(__file__).parents[2] / "README.md"


# The SDK warns of the shutdown on every videos call; it is why Reelforge exists.
@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
def test_the_sdk_in_five_lines_makes_a_playable_video(
    server: Server, api_key: str, tmp_path: Path
) -> None:
    walkthrough = README.read_text().split("## Set up")[0]
    (snippet,) = re.findall(r"```python\n(.*?)```", walkthrough, flags=re.DOTALL)
    assert len(snippet.strip().splitlines()) <= 5
    code = snippet.replace("http://127.0.0.1:8000", server.url).replace("rf_...", api_key)

    exec(compile(code, "README.md", "exec"), {})

    with av.open(str(tmp_path / "lighthouse.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) > 0
