"""The official Node SDK (npm `openai`, run by Node) against a live `reelforge serve`.

tests/node/gateway.mjs drives every Videos method through the SDK, with real rendering by
the built-in emulator behind the embedded worker, and prints what it saw; this test starts
the server, makes the users, and checks the report.
"""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from reelforge.db import migrate
from reelforge.db.engine import Database
from reelforge.domain.quotas import QuotaPolicy
from reelforge.services.accounts import Accounts
from reelforge.services.keys import ApiKeys
from tests.support.accounts import FAST_HASHER, PASSWORD
from tests.support.loop import BACKEND
from tests.support.node import node_sdk
from tests.support.processes import ServerProcess, inherited_environment, server_environment

CREATE_RATE_LIMIT = 12
# Guards against a hung script; rendering the one video it waits for takes far less.
SCRIPT_SECONDS = 300


async def make_users(database_url: str) -> dict[str, str]:
    """ADA_KEY (no limits), BOB_KEY (a quota of one video), CAROL_KEY: the script's keys."""
    database = Database(database_url)
    try:
        keys = ApiKeys(database)
        unlimited = Accounts(database, FAST_HASHER)
        one = QuotaPolicy(max_videos=1, period_days=30, monthly_budget=None)
        one_video = Accounts(database, FAST_HASHER, quota=one)
        found = {}
        for name, accounts in (("ADA", unlimited), ("BOB", one_video), ("CAROL", unlimited)):
            account = await accounts.create(f"{name.lower()}@example.org", PASSWORD)
            found[f"{name}_KEY"] = (await keys.create(account, "node sdk"))[1]
        return found
    finally:
        await database.close()


async def drive(directory: Path) -> dict[str, Any]:
    """Serve, run the script against the server, and parse its report."""
    sdk = node_sdk()
    data_dir = directory / "data"
    data_dir.mkdir()
    database_url = f"sqlite+aiosqlite:///{data_dir / 'reelforge.db'}"  # serve's own default
    await migrate.upgrade(database_url)
    keys = await make_users(database_url)
    environment = server_environment(data_dir, CREATE_RATE_LIMIT=f"{CREATE_RATE_LIMIT}/minute")
    server = await ServerProcess.start(environment, directory / "serve")
    try:
        with anyio.fail_after(SCRIPT_SECONDS):
            done = await anyio.run_process(
                [shutil.which("node") or "node", str(sdk / "gateway.mjs")],
                env=inherited_environment() | keys | {"REELFORGE_URL": server.base_url},
                check=False,
            )
    finally:
        server.stop()
    assert done.returncode == 0, f"{done.stderr.decode()}\n--- server ---\n{server.output()}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the script for the module's tests (it renders a real video)."""
    directory = tmp_path_factory.mktemp("node-sdk")
    backend, options = BACKEND
    return anyio.run(partial(drive, directory), backend=backend, backend_options=options)


def test_the_node_sdk_works_unchanged(report: dict[str, Any]) -> None:
    created, remix = report["created"], report["remix"]
    assert (created["object"], created["status"], created["progress"]) == ("video", "queued", 0)
    assert (created["model"], created["size"], created["seconds"]) == ("sora-2", "720x1280", "4")
    assert report["retrieved"]["id"] == created["id"]
    completed = report["completed"]
    assert (completed["status"], completed["progress"]) == ("completed", 100)
    assert completed["completed_at"] >= completed["created_at"]
    # The poll loop slept as the server asked (the header on every unfinished answer).
    assert all(interval > 0 for interval in report["pollIntervals"])
    assert report["video"]["type"] == "video/mp4"
    assert report["video"]["box"] == "ftyp"
    assert report["thumbnail"] == {"type": "image/webp", "riff": "RIFF", "webp": "WEBP"}
    assert remix["remixed_from_video_id"] == created["id"]
    assert (remix["status"], remix["prompt"]) == ("queued", "the same fox at night")


def test_auto_pagination_goes_on_while_it_deletes(report: dict[str, Any]) -> None:
    newest_first = [*report["clips"][::-1], report["remix"]["id"], report["created"]["id"]]

    assert report["seen"] == newest_first
    assert report["deletions"] == [
        {"id": video_id, "object": "video.deleted", "deleted": True} for video_id in newest_first
    ]
    assert report["left"] == []


def error(
    report: dict[str, Any], name: str, cls: str, status: int, code: str | None
) -> dict[str, Any]:
    seen: dict[str, Any] = report["errors"][name] if name in report["errors"] else report[name]
    assert seen is not None, f"{name}: no error raised"
    assert (seen["class"], seen["isAPIError"], seen["status"], seen["code"]) == (
        cls,
        True,
        status,
        code,
    ), seen
    return seen


def test_errors_raise_the_sdks_classes(report: dict[str, Any]) -> None:
    assert error(report, "badValue", "BadRequestError", 400, "invalid_value")["param"] == "seconds"
    unknown = error(report, "unknownParameter", "BadRequestError", 400, "unknown_parameter")
    assert unknown["param"] == "duration"
    assert "video_000" in error(report, "notFound", "NotFoundError", 404, "not_found")["message"]
    error(report, "wrongKey", "AuthenticationError", 401, "invalid_api_key")


def test_over_quota_the_sdk_does_not_retry(report: dict[str, Any]) -> None:
    quota = error(report, "quota", "RateLimitError", 429, "quota_exceeded")

    assert quota["type"] == "insufficient_quota"
    assert (quota["shouldRetry"], quota["retryAfter"]) == ("false", None)
    # The create, then the refused one, sent once despite the SDK's default two retries.
    assert report["quotaCalls"] == ["POST /v1/videos", "POST /v1/videos"]


def test_over_the_rate_limit_a_short_truthful_wait(report: dict[str, Any]) -> None:
    limited = error(report, "rateLimited", "RateLimitError", 429, "rate_limit_exceeded")

    assert report["acceptedBeforeRateLimit"] == CREATE_RATE_LIMIT
    assert 0 < int(limited["retryAfter"]) <= 60
    assert limited["shouldRetry"] is None
