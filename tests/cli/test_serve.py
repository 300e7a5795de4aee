"""`reelforge serve` and `reelforge migrate` as a person runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from reelforge.cli.main import app
from reelforge.db.migrate import head_revision
from reelforge.emulator.server import free_port

runner = CliRunner()


def _wait_ready(url: str, deadline: float) -> httpx.Response | None:
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if response.status_code == 200:
            return response
        time.sleep(0.1)
    return None


def test_serve_answers_ready_within_ten_seconds_on_an_empty_data_dir(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFORGE_")}
    env["REELFORGE_DATA_DIR"] = str(tmp_path / "fresh")
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "reelforge.cli.main", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}/ready", started + 10)
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=20)

    assert ready is not None, output
    assert ready.json()["status"] == "ready"
    assert f"http://127.0.0.1:{port}" in output
    assert "Created the first admin admin@localhost with the one-time password" in output
    assert (tmp_path / "fresh" / "reelforge.db").is_file()


def test_serve_refuses_a_bad_setting_and_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_PORT", "not-a-port")

    result = runner.invoke(app, ["serve"])

    assert result.exit_code == 2
    assert "REELFORGE_PORT" in result.output


def test_migrate_applies_and_rolls_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REELFORGE_DATA_DIR", str(tmp_path / "d"))

    up = runner.invoke(app, ["migrate"])
    down = runner.invoke(app, ["migrate", "--down", "--revision", "base"])
    status = runner.invoke(app, ["migrate", "--status"])

    assert up.exit_code == 0, up.output
    head = head_revision()
    assert f"database at revision {head} (head is {head})" in up.output
    assert "database at revision base" in down.output
    assert "database at revision base" in status.output


def test_emulator_serves_the_videos_api_on_its_own(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFORGE_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "reelforge.cli.main", "emulator", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        listed = None
        while listed is None and time.monotonic() < deadline:
            try:
                listed = httpx.get(
                    f"http://127.0.0.1:{port}/v1/videos",
                    headers={"Authorization": "Bearer any"},
                    timeout=1,
                )
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=20)

    assert listed is not None, output
    assert listed.json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    assert f"http://127.0.0.1:{port}/v1" in output


def test_emulator_refuses_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_EMULATOR_FAILURE_RATE", "lots")

    result = runner.invoke(app, ["emulator"])

    assert result.exit_code == 2
    assert "failure_rate" in result.output
