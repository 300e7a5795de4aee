"""`serve` and `worker` refuse a bad provider setting before starting or printing anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from reelforge.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REELFORGE_PROVIDER": "openai"}, "OPENAI_API_KEY"),
        (
            {
                "REELFORGE_PROVIDER": "openai",
                "OPENAI_API_KEY": "sk-x",
                "OPENAI_BASE_URL": "ftp://x",
            },
            "OPENAI_BASE_URL",
        ),
        ({"REELFORGE_EMULATOR_FAILURE_RATE": "lots"}, "REELFORGE_EMULATOR_FAILURE_RATE"),
        ({"REELFORGE_PROVIDER": "veo3"}, "REELFORGE_PROVIDER"),
        # A provider beside the default is built at start too: checked the same way.
        ({"REELFORGE_PROVIDERS": "emulator,fal"}, "FAL_KEY"),
        ({"REELFORGE_STORAGE_URL": "s3://"}, "REELFORGE_STORAGE_URL"),
        ({"REELFORGE_DATABASE_URL": "postgresql+asyncpg://x:y@host:port/db"}, "DATABASE_URL"),
    ],
)
def test_a_bad_provider_setting_stops_start_up_with_one_message(
    monkeypatch: pytest.MonkeyPatch, command: str, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    result = runner.invoke(app, [command])

    assert result.exit_code == 2
    assert result.output.startswith("invalid settings:")
    assert named in result.output
    assert "serving" not in result.output
    assert "running" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
