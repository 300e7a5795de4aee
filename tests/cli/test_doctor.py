"""`reelforge doctor` names each broken part and the command or setting that fixes it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner, Result

from reelforge.cli.main import app
from reelforge.runtime import open_runtime
from reelforge.settings import load_settings

runner = CliRunner()

PARTS = ("configuration", "database", "migrations", "storage", "provider", "workers")


def lines(result: Result) -> dict[str, str]:
    """Each part's line (and its fix line after it), by part."""
    found: dict[str, str] = {}
    part = ""
    for line in result.stdout.splitlines():
        words = line.split()
        if words and words[0] in ("ok", "FAIL"):
            part = words[1]
            found[part] = line
        elif part:
            found[part] += "\n" + line
    return found


def failed(result: Result) -> set[str]:
    return {part for part, line in lines(result).items() if line.startswith("FAIL")}


@pytest.fixture
def migrated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("REELFORGE_DATA_DIR", str(tmp_path / "d"))
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    return tmp_path / "d"


def test_a_healthy_installation(migrated: Path) -> None:
    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 0, result.stdout
    assert tuple(lines(result)) == PARTS
    assert failed(result) == set()


def test_an_unmigrated_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REELFORGE_DATA_DIR", str(tmp_path / "d"))

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert failed(result) == {"migrations"}
    assert "fix: reelforge migrate" in lines(result)["migrations"]


def test_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_PORT", "eighty")

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert failed(result) == {"configuration"}
    assert "REELFORGE_PORT" in lines(result)["configuration"]


def test_a_malformed_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_DATABASE_URL", "postgresql+asyncpg://x:y@host:port/db")

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert failed(result) == {"configuration"}
    assert "REELFORGE_DATABASE_URL" in lines(result)["configuration"]


def test_an_unreachable_database(migrated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/x")

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert {"database", "migrations"} <= failed(result) <= {"database", "migrations", "workers"}
    assert "REELFORGE_DATABASE_URL" in lines(result)["database"]


def test_storage_that_cannot_be_written(
    migrated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("REELFORGE_STORAGE_URL", (blocker / "objects").as_uri())

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert failed(result) == {"storage"}
    assert "REELFORGE_STORAGE_URL" in lines(result)["storage"]


def test_an_unreachable_redis(migrated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_REDIS_URL", "redis://127.0.0.1:1/0")

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert failed(result) == {"redis"}
    assert "REELFORGE_REDIS_URL" in lines(result)["redis"]


def test_an_unreachable_provider(migrated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert failed(result) == {"provider"}
    assert "http://127.0.0.1:1/v1" in lines(result)["provider"]
    assert "OPENAI_API_KEY" in lines(result)["provider"]


def test_each_configured_provider_is_checked_by_name(
    migrated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REELFORGE_PROVIDERS", "emulator,fal")
    monkeypatch.setenv("FAL_KEY", "fal-test")
    monkeypatch.setenv("REELFORGE_FAL_BASE_URL", "http://127.0.0.1:1")

    result = runner.invoke(app, ["doctor"])

    assert result.exit_code == 1
    assert failed(result) == {"provider:fal"}
    assert "http://127.0.0.1:1" in lines(result)["provider:fal"]
    assert "fix: check REELFORGE_FAL_BASE_URL and FAL_KEY" in lines(result)["provider:fal"]
    assert "emulator at the built-in emulator answers" in lines(result)["provider"]


def test_separate_workers_silent_then_beating(
    migrated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REELFORGE_EMBEDDED_WORKER", "false")

    silent = runner.invoke(app, ["doctor"])

    async def beat() -> None:
        runtime = open_runtime(load_settings())
        try:
            await runtime.heartbeats.beat("worker-1")
        finally:
            await runtime.close()

    anyio.run(beat)
    beating = runner.invoke(app, ["doctor"])

    assert silent.exit_code == 1
    assert failed(silent) == {"workers"}
    assert "fix: reelforge worker" in lines(silent)["workers"]
    assert beating.exit_code == 0, beating.stdout
