"""Where the client commands find their server and API key: flags, environment, config file.

The file `reelforge login` writes is JSON, `{"url": …, "api_key": …}`, readable by its owner
only (0600). Its place is `$REELFORGE_CONFIG`, else `$XDG_CONFIG_HOME/reelforge/client.json`,
else `~/.config/reelforge/client.json`.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from reelforge.cli.exits import CommandError, ExitCode

URL_ENV = "REELFORGE_URL"
API_KEY_ENV = "REELFORGE_API_KEY"
CONFIG_ENV = "REELFORGE_CONFIG"
DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class ClientConfig:
    url: str
    api_key: str | None


def config_path() -> Path:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "reelforge" / "client.json"


def read_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(ExitCode.USAGE, f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError(ExitCode.USAGE, f"{path} is not a JSON object")
    return {key: value for key, value in data.items() if isinstance(value, str)}


def resolve(url: str | None, api_key: str | None) -> ClientConfig:
    """Each value from its flag, else the environment, else the config file."""
    saved = read_file(config_path())
    return ClientConfig(
        url=(url or os.environ.get(URL_ENV) or saved.get("url") or DEFAULT_URL).rstrip("/"),
        api_key=api_key or os.environ.get(API_KEY_ENV) or saved.get("api_key"),
    )


def save(config: ClientConfig) -> Path:
    """Write the config file, owner-only from its first byte, replacing any old one at once."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"url": config.url, "api_key": config.api_key}, handle, indent=2)
            handle.write("\n")
        os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return path
