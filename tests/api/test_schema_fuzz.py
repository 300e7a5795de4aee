"""Schemathesis over the app's own OpenAPI schema, in-process: no operation ever answers 5xx.

Every operation in `/openapi.json` (the guide's /api, the /v1 gateway, health) is fuzzed through
schemathesis' ASGI transport, with a real admin API key and anonymously, and every response must
be a non-5xx that matches its documented schema and media type. Generation is seeded and
derandomized, so a CI failure reproduces locally with the same examples.

How it is wired (schemathesis 4.32 with pytest 9):
- The schema is read at import from an app that is never started, because `schema.parametrize()`
  needs it at collection; `schemathesis.pytest.from_fixture` would avoid that, but it fails on
  pytest 9.2 (it sets `Function._nodeid`, which pytest 9.2 no longer has).
- The cases run against the module's own app (`app=api`), on a throwaway data dir seeded with an
  admin, keys and a completed video. Schemathesis' ASGI transport runs the app in its own event
  loop thread and starts the lifespan itself (the conftest `app` fixture's LifespanManager would
  start a second one in pytest's loop); its pytest plugin stops the lifespan after each item.
- Each case with path parameters runs twice: as generated (ids that name nothing) and with the
  seeded objects' ids, so the routes' found-object paths are fuzzed too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
)
from schemathesis.config import SchemathesisConfig

from reelforge.api.app import create_app
from reelforge.db import migrate
from reelforge.domain.accounts import Role
from reelforge.runtime import open_runtime
from reelforge.services.videos import NewVideo
from reelforge.settings import Settings
from tests.support.api import archive

ASSETS = {
    "video": b"\x00\x00\x00\x18ftypmp42",
    "thumbnail": b"RIFF....WEBP",
    "spritesheet": b"\xff",
}
SIGN_IN = "/api/auth/"
ALL_VIDEOS_STREAM = "/api/stream"
STREAM_SUFFIX = "/stream"
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
# Generation health checks guard Hypothesis' own speed, not the app; on a busy CI runner they
# would only make the run flaky.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _settings(data_dir: Path) -> Settings:
    """Settings that read nothing from the environment (module fixtures run before conftest's
    per-test clean-up). No quota and no create rate limit, so creates reach the services
    instead of a 429; no worker, as with conftest's `settings`, so no answer depends on timing.
    """
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith(("REELFORGE_", "OPENAI_", "AWS_")) or name in (
                "DATABASE_URL",
                "REDIS_URL",
            ):
                env.delenv(name)
        return Settings(
            _env_file=None,
            data_dir=data_dir,
            embedded_worker=False,
            worker_silence_seconds=None,  # no worker runs: /ready is not to wait for one
            default_video_quota=None,
            create_rate_limit="1000000/minute",
        )


schema = schemathesis.openapi.from_dict(
    create_app(_settings(Path("never-started"))).openapi(),
    config=SchemathesisConfig.from_dict(
        {"seed": 20260924, "generation": {"deterministic": True, "database": "none"}}
    ),
)


@dataclass(frozen=True)
class Seeded:
    """What the fuzzed app's database holds before the first request."""

    key: str
    # Path parameter values that name real objects: DELETEs get their own, so a deleted video
    # or a revoked key doesn't take the other operations' found-object paths away.
    ids: dict[str, str]
    doomed_ids: dict[str, str]


async def _seed(settings: Settings) -> Seeded:
    await migrate.upgrade(settings.resolved_database_url)
    runtime = open_runtime(settings)
    try:
        admin = await runtime.accounts.create(
            "fuzz@example.org", "correct horse battery", role=Role.ADMIN
        )
        _, key = await runtime.keys.create(admin, "fuzz")
        spare, _ = await runtime.keys.create(admin, "spare")
        videos = []
        for prompt in ("kept", "doomed"):
            view, _ = await runtime.videos.create(admin, NewVideo(prompt=prompt))
            await archive(runtime, view.id, ASSETS)
            videos.append(view.id)
        return Seeded(
            key=key,
            ids={"video_id": videos[0], "user_id": admin.id},
            doomed_ids={"video_id": videos[1], "key_id": spare.id},
        )
    finally:
        await runtime.close()


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return _settings(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def seeded(fuzz_settings: Settings) -> Seeded:
    return anyio.run(_seed, fuzz_settings)


@pytest.fixture(scope="module")
def api(fuzz_settings: Settings, seeded: Seeded) -> FastAPI:
    return create_app(fuzz_settings)


def _with_real_ids(case: Case[Any], seeded: Seeded) -> Case[Any] | None:
    """The same request aimed at seeded objects, or None when it names no object."""
    if not case.path_parameters:
        return None
    known = seeded.doomed_ids if case.method.upper() == "DELETE" else seeded.ids
    aimed: Case[Any] = case.operation.Case(
        method=case.method,
        path_parameters={
            name: known.get(name, value) for name, value in case.path_parameters.items()
        },
        headers=case.headers,
        cookies=case.cookies,
        query=case.query,
        body=case.body,
        media_type=case.media_type,
        multipart_content_types=case.multipart_content_types,
    )
    return aimed


def _call(case: Case[Any], api: FastAPI, headers: dict[str, str]) -> None:
    case.call_and_validate(app=api, headers=headers, checks=CHECKS)


@schema.parametrize()
@settings(FUZZ, max_examples=25)
def test_no_operation_answers_5xx(case: Case[Any], api: FastAPI, seeded: Seeded) -> None:
    with_key = {"Authorization": f"Bearer {seeded.key}"}
    # A live stream that opens never ends, and the in-process transport answers only once the
    # app is done: streams are fuzzed anonymously and at ids that name nothing (their open
    # streams are tested over HTTP in tests/web).
    opens_a_stream = case.path == ALL_VIDEOS_STREAM
    if not opens_a_stream:
        _call(case, api, with_key)
    # Signing in ignores the Authorization header, and each of its calls costs an argon2 check.
    if not case.path.startswith(SIGN_IN):
        _call(case, api, {})
    aimed = _with_real_ids(case, seeded)
    if aimed is not None and not case.path.endswith(STREAM_SUFFIX):
        _call(aimed, api, with_key)
