"""`reelforge users …` and `reelforge keys …` on an embedded data directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelforge.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REELFORGE_DATA_DIR", str(tmp_path / "data"))


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def test_create_list_disable_and_enable_a_user() -> None:
    code, out = invoke("users", "create", "ada@example.org", "--password", "long enough pw")
    assert code == 0, out
    assert "created user ada@example.org" in out

    code, out = invoke("users", "disable", "ada@example.org")
    assert code == 0
    assert "ada@example.org is disabled" in out
    assert "yes" in invoke("users", "list")[1]

    code, out = invoke("users", "disable", "ada@example.org", "--enable")
    assert "ada@example.org is enabled" in out


def test_password_is_asked_hidden_and_confirmed() -> None:
    code, out = invoke("users", "create", "bob@example.org", "--admin", stdin="s3cret pass\n" * 2)

    assert code == 0, out
    assert "s3cret pass" not in out
    assert "created admin bob@example.org" in out


def test_errors_name_the_field_and_exit_non_zero() -> None:
    code, out = invoke("users", "create", "no-at-sign", "--password", "long enough pw")
    assert code == 1
    assert "email: must look like name@domain" in out

    invoke("users", "create", "ada@example.org", "--password", "long enough pw")
    code, out = invoke("users", "create", "ada@example.org", "--password", "long enough pw")
    assert code == 1
    assert "already has an account" in out

    code, out = invoke("users", "set-password", "nobody@example.org", "--password", "x" * 12)
    assert code == 1
    assert "no user 'nobody@example.org'" in out


def test_keys_are_printed_once_listed_without_secret_and_revoked() -> None:
    invoke("users", "create", "ada@example.org", "--password", "long enough pw")

    code, out = invoke("keys", "create", "--user", "ada@example.org", "--name", "laptop")
    assert code == 0, out
    token = re.search(r"rf_\S+", out)
    key_id = re.search(r"key_[0-9a-f]+", out)
    assert token is not None
    assert key_id is not None

    listed = invoke("keys", "list", "--user", "ada@example.org")[1]
    assert "laptop" in listed
    assert token.group() not in listed

    code, out = invoke("keys", "revoke", key_id.group(), "--user", "ada@example.org")
    assert code == 0
    assert f"revoked {key_id.group()}" in out
