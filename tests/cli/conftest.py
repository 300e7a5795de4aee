"""A live `reelforge serve` (embedded emulator) shared by a module's client-command tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, Server, serving

# Long enough that a video just created is still pending when the next command runs; the
# emulator fails any prompt with the moderation word.
SERVER_ENV = {
    "REELFORGE_EMULATOR_LATENCY_SECONDS": "2",
    "REELFORGE_EMULATOR_MODERATION_WORDS": "forbidden",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("server"), SERVER_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def api_key(server: Server) -> str:
    """An API key of the admin, made the way a user would: sign in, then ask for a key."""
    with httpx.Client(base_url=server.url) as client:
        signed = client.post(
            "/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        token = signed.json()["data"]["access_token"]
        made = client.post(
            "/api/keys", json={"name": "tests"}, headers={"Authorization": f"Bearer {token}"}
        )
    key: str = made.json()["data"]["key"]
    return key
