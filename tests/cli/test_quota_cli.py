"""`reelforge quota show|set` on the installation's own database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelforge.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _installation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REELFORGE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("REELFORGE_DEFAULT_VIDEO_QUOTA", "100")
    made = runner.invoke(app, ["users", "create", "ada@example.com", "--password", "x" * 12])
    assert made.exit_code == 0, made.output


def test_set_changes_only_what_is_given() -> None:
    first = runner.invoke(app, ["quota", "set", "ada@example.com", "--videos", "5"])
    second = runner.invoke(
        app, ["quota", "set", "ada@example.com", "--budget", "12.5", "--period-days", "7"]
    )
    shown = runner.invoke(app, ["quota", "show", "ada@example.com"])

    assert first.exit_code == 0, first.output
    assert "0 of 5 videos per 30 days" in first.stdout
    assert "of unlimited" in first.stdout
    assert "0 of 5 videos per 7 days" in second.stdout
    assert "of 12.50 USD" in second.stdout
    assert shown.stdout == second.stdout


def test_unlimited_lifts_a_limit() -> None:
    result = runner.invoke(app, ["quota", "set", "ada@example.com", "--videos", "unlimited"])

    assert result.exit_code == 0, result.output
    assert "0 of unlimited videos" in result.stdout


@pytest.mark.parametrize(
    ("option", "value"), [("--videos", "-3"), ("--videos", "2.5"), ("--budget", "lots")]
)
def test_a_bad_limit_is_refused_naming_the_option(option: str, value: str) -> None:
    result = runner.invoke(app, ["quota", "set", "ada@example.com", option, value])

    assert result.exit_code == 2
    assert option in result.output


def test_an_unknown_user_is_named() -> None:
    result = runner.invoke(app, ["quota", "set", "bob@example.com", "--videos", "1"])

    assert result.exit_code == 1
    assert "bob@example.com" in result.output
