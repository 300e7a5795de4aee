"""Settings: embedded-mode defaults, environment overrides, errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelforge.settings import LogFormat, ProviderName, SettingsError, load_settings


def test_defaults_are_the_embedded_mode(tmp_path: Path) -> None:
    settings = load_settings()

    assert settings.data_dir == Path(".reelforge")
    assert settings.resolved_database_url == (
        f"sqlite+aiosqlite:///{tmp_path / '.reelforge' / 'reelforge.db'}"
    )
    assert settings.resolved_storage_url == (tmp_path / ".reelforge" / "objects").as_uri()
    assert settings.provider is ProviderName.EMULATOR
    assert settings.redis_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.is_embedded_database


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REELFORGE_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@db/reelforge")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("REELFORGE_PORT", "9001")
    monkeypatch.setenv("REELFORGE_LOG_FORMAT", "json")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")

    settings = load_settings()

    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.resolved_database_url == "postgresql+asyncpg://u@db/reelforge"
    assert not settings.is_embedded_database
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.port == 9001
    assert settings.log_format is LogFormat.JSON
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-secret-value"
    assert "sk-secret-value" not in repr(settings)


def test_prefixed_name_wins_over_plain_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_DATABASE_URL", "postgresql+asyncpg://a@one/x")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://b@two/x")

    assert load_settings().database_url == "postgresql+asyncpg://a@one/x"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REELFORGE_PORT=8123\nREELFORGE_PROVIDER=openai\n")

    settings = load_settings()

    assert settings.port == 8123
    assert settings.provider is ProviderName.OPENAI


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("REELFORGE_PORT", "eighty", "REELFORGE_PORT: Input should be a valid integer"),
        ("REELFORGE_PORT", "70000", "REELFORGE_PORT: Input should be less than or equal to 65535"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL: Value error, must start with one of"),
        (
            "REELFORGE_PROVIDER",
            "runway",
            "REELFORGE_PROVIDER: Input should be 'emulator', 'openai', 'fal' or 'veo'",
        ),
        ("REDIS_URL", "http://cache", "REDIS_URL: Value error, must be a redis://"),
        (
            "REELFORGE_STORAGE_URL",
            "ftp://x",
            "REELFORGE_STORAGE_URL: Value error, must be a file://",
        ),
        ("REELFORGE_LOG_LEVEL", "loud", "REELFORGE_LOG_LEVEL: Input should be 'debug'"),
    ],
)
def test_bad_value_names_the_variable_and_what_it_accepts(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert expected in str(caught.value)
    assert repr(value) in str(caught.value)


def test_every_bad_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_PORT", "0")
    monkeypatch.setenv("REELFORGE_LOG_FORMAT", "xml")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "REELFORGE_PORT" in str(caught.value)
    assert "REELFORGE_LOG_FORMAT" in str(caught.value)
