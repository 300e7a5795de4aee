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


def test_a_separate_worker_makes_the_videos_and_metrics_count_them(
    upstream: RunningServer, tmp_path: Path
) -> None:
    provider = {
        "REELFORGE_PROVIDER": "openai",
        "REELFORGE_OPENAI_BASE_URL": upstream.base_url,
        "REELFORGE_OPENAI_API_KEY": EMULATOR_API_KEY,
        "REELFORGE_EMBEDDED_WORKER": "false",
        # Workers don't record heartbeats yet (the engine's loop will): leave them out of /ready.
        "REELFORGE_WORKER_SILENCE_SECONDS": "",
    }
    with serving(tmp_path / "api", provider) as server:
        data = server.data_dir
        environment = worker_environment(
            database_url=f"sqlite+aiosqlite:///{data / 'reelforge.db'}",
            storage_url=(data / "objects").as_uri(),
            provider_base_url=upstream.base_url,
            data_dir=data,
        )
        cli = CliRunner(env={"REELFORGE_URL": server.url, "REELFORGE_API_KEY": _key(server)})
        with workers_in(environment, tmp_path / "workers") as workers:
            workers.start()
            made = [
                cli.invoke(app, ["generate", prompt, "--size", "1280x720", "--wait"])
                for prompt in ("a kite", "a boat")
            ]
            assert [result.exit_code for result in made] == [0, 0], workers.logs()
        cost = sum(
            float(
                json.loads(cli.invoke(app, ["show", r.stdout.strip(), "--json"]).stdout)["cost"][
                    "final"
                ]
            )
            for r in made
        )
        text = httpx.get(f"{server.url}/metrics").text

    figures = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    completed = (("provider", "openai"), ("state", "completed"))
    assert figures[("reelforge_videos", completed)] == 2
    assert figures[("reelforge_upstream_polls_total", (("provider", "openai"),))] >= 2
    assert figures[("reelforge_archive_bytes", ())] > 0
    assert figures[("reelforge_spend_usd", ())] == pytest.approx(cost)
    assert figures[("reelforge_queue_lag_seconds", ())] == 0
