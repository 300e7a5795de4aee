"""The guide's own front end against /api: its lib/api/videos.ts (axios, on Node) and what its
components show, run against `reelforge serve` as a real process on each database.

The client is ported to plain JavaScript in tests/api/guide_client (client.mjs, videos.mjs,
components.mjs); scenario.mjs walks it through create, status polling, download, remix,
offset paging, a cancel while its status view polls, delete and errors, and prints what it saw.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.server import RunningServer, free_port, running
from reelforge.emulator.settings import EmulatorSettings
from reelforge.providers.registry import EMULATOR_API_KEY
from reelforge.services.accounts import Accounts
from tests.support.accounts import PASSWORD
from tests.support.processes import START_SECONDS, worker_environment

pytestmark = pytest.mark.anyio

CLIENT = Path(__file__).with_name("guide_client")
EMAIL = "guide@example.org"
# Creating, rendering and archiving one 4-second video on a busy machine, with room to spare.
SCENARIO_SECONDS = 300


@pytest.fixture(scope="module")
def node_client() -> Path:
    """The client's directory with axios installed (`npm ci` from its lock file if missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed to run the guide's front-end client")
    if not (CLIENT / "node_modules" / "axios" / "package.json").is_file():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENT,
            check=True,
            timeout=300,
        )
    return CLIENT


@pytest.fixture
def emulator() -> Iterator[RunningServer]:
    """The upstream on a real socket, which the server and the scenario both reach."""
    upstream = create_emulator_app(EmulatorSettings(poll_after_ms=0))
    try:
        with running(upstream) as serving:
            yield serving
    finally:
        upstream.state.emulator.close()


@pytest.fixture
async def reelforge(
    migrated_url: str, accounts: Accounts, emulator: RunningServer, tmp_path: Path
) -> AsyncIterator[str]:
    """`reelforge serve` (API and embedded worker) on its own port; yields its /api URL."""
    await accounts.create(EMAIL, PASSWORD)
    port = free_port()
    environment = worker_environment(
        database_url=migrated_url,
        storage_url=(tmp_path / "objects").as_uri(),
        provider_base_url=emulator.base_url,
        data_dir=tmp_path / "data",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "reelforge.cli.main", "serve", "--port", str(port)],
            env=environment,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}"
    try:
        await _until_ready(root, server, log)
        yield f"{root}/api"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


async def _until_ready(root: str, server: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        with anyio.move_on_after(START_SECONDS):
            while server.poll() is None:
                try:
                    if (await client.get(f"{root}/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.1)
    raise AssertionError(f"reelforge serve not ready:\n{log.read_text(errors='replace')[-4000:]}")


async def run_scenario(client: Path, api_url: str, emulator: RunningServer) -> dict[str, Any]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "NEXT_PUBLIC_API_URL": api_url,
        "GUIDE_EMAIL": EMAIL,
        "GUIDE_PASSWORD": PASSWORD,
        "EMULATOR_URL": emulator.root,
        "EMULATOR_KEY": EMULATOR_API_KEY,
    }
    with anyio.fail_after(SCENARIO_SECONDS):
        done = await anyio.run_process(
            ["node", "scenario.mjs"], cwd=client, env=environment, check=False
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


async def test_the_guides_front_end_works_unchanged(
    node_client: Path, reelforge: str, emulator: RunningServer
) -> None:
    """One walk through the app (a real video renders on the way), checked part by part."""
    report = await run_scenario(node_client, reelforge, emulator)

    errors_are_text_the_creator_form_shows(report)
    a_created_video_is_the_guides_video_job(report)
    the_status_view_stops_at_completed_and_links_the_file(report)
    remix_and_quality_tiers(report)
    offset_pages_and_dates_on_the_cards(report)
    a_cancelled_video_stops_the_status_poll(report)
    a_deleted_video_is_gone(report)


def errors_are_text_the_creator_form_shows(report: dict[str, Any]) -> None:
    errors = report["errors"]

    assert {name: error["errorType"] for name, error in errors.items()} == {
        "blank": "string",
        "quality": "string",
        "unknown": "string",
        "missing": "string",
    }
    assert (errors["blank"]["status"], errors["blank"]["field"]) == (400, "prompt")
    assert errors["blank"]["shown"] == "prompt: is required and must not be blank"
    assert (errors["quality"]["status"], errors["quality"]["field"]) == (400, "quality")
    assert "'standard' and 'high'" in errors["quality"]["shown"]
    assert errors["unknown"] == {
        "status": 400,
        "shown": errors["unknown"]["shown"],
        "errorType": "string",
        "code": "unknown_parameter",
        "field": "style",
    }
    assert errors["unknown"]["shown"].startswith("style: unknown field")
    assert errors["missing"]["status"] == 404
    assert "video_0000000000000000" in errors["missing"]["shown"]


def a_created_video_is_the_guides_video_job(report: dict[str, Any]) -> None:
    created = report["created"]

    assert (created["object"], created["status"], created["model"], created["quality"]) == (
        "video",
        "queued",
        "sora-2",
        "standard",
    )
    assert abs(created["created_at"] - time.time()) < 3600
    assert (created["completed_at"], created["expires_at"], created["file_url"]) == (
        None,
        None,
        None,
    )


def the_status_view_stops_at_completed_and_links_the_file(report: dict[str, Any]) -> None:
    watched, download = report["watched"], report["download"]
    video = watched["video"]

    assert watched["stopped"] is True
    assert (watched["seen"][-1], watched["heading"]) == ("completed", "Completed")
    assert set(watched["seen"]) <= {"queued", "in_progress", "completed"}
    assert video["created_at"] <= video["completed_at"]
    # A signed URL of the file; the guide's own link (with the token) sends the same bytes.
    assert video["file_url"].startswith(f"/api/files/{video['id']}/video?expires=")
    assert download == {
        "status": 200,
        "type": "video/mp4",
        "bytes": download["bytes"],
        "box": "ftyp",
        "guideLinkSameBytes": True,
    }
    assert download["bytes"] > 1000


def remix_and_quality_tiers(report: dict[str, Any]) -> None:
    assert report["remix"]["remixed_from_video_id"] == report["created"]["id"]
    assert report["remix"]["quality"] == "standard"
    assert [(v["model"], v["quality"]) for v in report["more"]] == [("sora-2-pro", "high")] * 2


def offset_pages_and_dates_on_the_cards(report: dict[str, Any]) -> None:
    newest_first = [
        report["more"][1]["id"],
        report["more"][0]["id"],
        report["remix"]["id"],
        report["created"]["id"],
    ]

    assert [[card["id"] for card in page] for page in report["pages"]] == [
        newest_first[:2],
        newest_first[2:],
        [],
    ]
    assert report["pagination"] == {
        "limit": 2,
        "offset": 2,
        "hasMore": False,
        "has_more": False,
        "next_cursor": None,
    }
    assert [card["id"] for card in report["cards"]] == newest_first
    year = str(time.gmtime().tm_year)
    for card in report["cards"]:
        assert card["date"] != "Invalid Date"
        assert year in card["date"] or str(int(year) - 1) in card["date"], card


def a_cancelled_video_stops_the_status_poll(report: dict[str, Any]) -> None:
    cancelled = report["cancelled"]

    assert (cancelled["stopped"], cancelled["polls"]) == (True, 2)
    assert cancelled["seen"][0] in ("queued", "in_progress")
    assert cancelled["seen"][1] == "failed"
    assert cancelled["heading"] == "Failed"
    assert isinstance(cancelled["shown"], str)
    assert cancelled["shown"]
    assert cancelled["video"]["error"]["code"] == "cancelled"


def a_deleted_video_is_gone(report: dict[str, Any]) -> None:
    deleted = report["deleted"]

    assert (deleted["get"]["status"], deleted["get"]["errorType"]) == (404, "string")
    assert report["remix"]["id"] not in deleted["listed"]
    assert deleted["listed"] == [
        report["cancelled"]["video"]["id"],
        report["more"][1]["id"],
        report["more"][0]["id"],
        report["created"]["id"],
    ]
