"""The scale-out shape in real processes: `reelforge serve` without its worker, a separate
`reelforge worker`, an emulator over HTTP; the CLI makes videos, `/metrics` adds them up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from reelforge.cli.main import app
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.server import RunningServer, running
from reelforge.emulator.settings import EmulatorSettings
from reelforge.providers.registry import EMULATOR_API_KEY
from tests.support.processes import worker_environment, workers_in
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, Server, serving


@pytest.fixture
def upstream() -> Iterator[RunningServer]:
    emulator = create_emulator_app(EmulatorSettings(poll_after_ms=0))
    with running(emulator) as server:
        yield server
    emulator.state.emulator.close()


def _key(server: Server) -> str:
    with httpx.Client(base_url=server.url) as client:
        token = client.post(
            "/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        ).json()["data"]["access_token"]
        made = client.post(
            "/api/keys", json={"name": "t"}, headers={"Authorization": f"Bearer {token}"}
        )
    key: str = made.json()["data"]["key"]
    return key


def _migrated(database_url: str, data: Path) -> str:
    """The database the servers share: PostgreSQL migrated as an operator would (`reelforge
    migrate`), or SQLite in the API server's data directory (it migrates its own)."""
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{data / 'reelforge.db'}"
    env = {"REELFORGE_DATABASE_URL": database_url, "REELFORGE_DATA_DIR": str(data)}
    migrated = CliRunner(env=env).invoke(app, ["migrate"])
    assert migrated.exit_code == 0, migrated.output
    return database_url


def test_a_separate_worker_makes_the_videos_and_metrics_count_them(
    upstream: RunningServer, tmp_path: Path, database_url: str, anyio_backend: object
) -> None:
    database = _migrated(database_url, tmp_path / "api" / "data")
    provider = {
        "REELFORGE_PROVIDER": "openai",
        "REELFORGE_OPENAI_BASE_URL": upstream.base_url,
        "REELFORGE_OPENAI_API_KEY": EMULATOR_API_KEY,
        "REELFORGE_EMBEDDED_WORKER": "false",
        "REELFORGE_DATABASE_URL": database,
        # The server is up before any worker: /ready's workers entry has its own tests.
        "REELFORGE_WORKER_SILENCE_SECONDS": "",
    }
    with serving(tmp_path / "api", provider) as server:
        data = server.data_dir
        environment = worker_environment(
            database_url=database,
            storage_url=(data / "objects").as_uri(),
            provider_base_url=upstream.base_url,
            data_dir=data,
        )
        cli = CliRunner(env={"REELFORGE_URL": server.url, "REELFORGE_API_KEY": _key(server)})
        with workers_in(environment, tmp_path / "workers") as workers:
            worker = workers.start()
            made = [
                cli.invoke(app, ["generate", prompt, "--size", "1280x720", "--wait"])
                for prompt in ("a kite", "a boat")
            ]
            assert [result.exit_code for result in made] == [0, 0], workers.logs()
            # Stopped as an orchestrator stops it: it writes its last upstream counts.
            worker.terminate()
            assert worker.process.wait(timeout=60) == 0, workers.logs()
        shown = [
            json.loads(cli.invoke(app, ["show", r.stdout.strip(), "--json"]).stdout) for r in made
        ]
        text = httpx.get(f"{server.url}/metrics").text

    figures = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    def calls(name: str, operation: str, code: str) -> float:
        labels = (("code", code), ("operation", operation), ("provider", "openai"))
        return figures.get((name, labels), 0.0)

    completed = (("provider", "openai"), ("state", "completed"))
    assert figures[("reelforge_videos", completed)] == 2
    # The worker's calls, counted in its process and read here from the database.
    assert calls("reelforge_upstream_calls_total", "create", "ok") == 2
    assert calls("reelforge_upstream_calls_total", "retrieve", "ok") >= 2
    assert calls("reelforge_upstream_calls_total", "download", "ok") >= 2
    assert not [key for key in figures if key[0] == "reelforge_upstream_errors_total"]
    assert figures[("reelforge_video_polls", (("provider", "openai"),))] >= 2
    for step in ("queue", "generation", "archive"):
        labels = (("provider", "openai"), ("step", step))
        assert figures[("reelforge_job_step_seconds_count", labels)] == 2
    assert figures[("reelforge_archive_bytes", ())] > 0
    cost = sum(float(video["cost"]["final"]) for video in shown)
    assert figures[("reelforge_spend_usd", ())] == pytest.approx(cost)
    assert figures[("reelforge_queue_lag_seconds", ())] == 0
    # The separate worker said it was alive.
    assert ("reelforge_worker_heartbeat_age_seconds", ()) in figures
