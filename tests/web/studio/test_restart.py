"""A video page keeps following its video across a restart of the server: the stream drops,
the page polls meanwhile, reconnects, and shows the video finished without a reload."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
from playwright.sync_api import Browser, expect

from tests.support.browser import ADMIN_PASSWORD, USER_PASSWORD, Inspector, make_user, signed_in
from tests.support.processes import ServerProcess, free_port, server_environment

FINISH_MS = 120_000


def _start(environment: dict[str, str], directory: Path, port: int) -> ServerProcess:
    server = ServerProcess.spawn(environment, directory, port)
    with ThreadPoolExecutor(1) as thread:
        thread.submit(anyio.run, server.ready).result()
    return server


def test_a_video_page_survives_a_server_restart(
    browser: Browser, tmp_path: Path, inspector: Inspector
) -> None:
    environment = server_environment(tmp_path / "data", ADMIN_PASSWORD=ADMIN_PASSWORD)
    directory, port = tmp_path, free_port()
    server = _start(environment, directory / "first", port)
    try:
        make_user(server, "steady@example.com")
        context, page = signed_in(browser, server, inspector, "steady@example.com", USER_PASSWORD)
        page.goto("/create")
        page.fill("#prompt", "A paper boat on a rainy street [[latency=8]]")
        page.select_option("#seconds", "4")
        page.click("#create-submit")
        page.wait_for_url(re.compile(r".*/videos/video_[0-9a-f]+$"))
        page.evaluate("() => { window.__sameDocument = true; }")
        root = page.locator("#video-root")
        expect(root).to_have_attribute("data-status", re.compile("queued|in_progress"))
    except BaseException:
        server.stop()
        raise

    server.stop()  # the stream ends, the page falls back to polling a server that isn't there
    server = _start(environment, directory / "second", port)
    try:
        # The restarted server's embedded worker resumes the job; the page hears of it.
        expect(root).to_have_attribute("data-status", "completed", timeout=FINISH_MS)
        expect(root).to_have_attribute("data-progress", "100")
        assert page.evaluate("() => window.__sameDocument === true")
        context.close()
    finally:
        server.stop()
    # While the server was down, the page's requests failed: expected, not a defect.
    inspector.problems = [p for p in inspector.problems if "ERR_CONNECTION_REFUSED" not in p]
    inspector.assert_clean()
