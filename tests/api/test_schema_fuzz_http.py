"""Schemathesis over real HTTP against a live `reelforge serve` on PostgreSQL, with NUL characters
and oversized values mixed into what it generates: no operation ever answers 5xx.

The in-process run (test_schema_fuzz.py) checks every answer against its documented schema; this
one checks what only a real server on the real database shows: PostgreSQL text refuses NUL,
granian delivers (or drops) refusals, bodies past a route's limit. Its hooks are the schema's
own, so they leave the in-process run alone. Seeded and derandomized, as that one is; bounded to
about a minute of requests (`max_examples`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import schemathesis
from hypothesis import settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from reelforge.api.app import create_app
from reelforge.api.edge import DEFAULT_MAX_BODY_BYTES
from tests.api.test_schema_fuzz import FUZZ, SIGN_IN, Seeded, _seed, _settings, _with_real_ids
from tests.conftest import POSTGRES_ENV
from tests.support.databases import create_database, drop_database
from tests.support.processes import ServerProcess, served, server_environment

# Values no field accepts: NUL characters alone and inside text, a query value past any field's
# length, and a JSON string past the default body limit.
_POISONS = ["\x00", "video_\x00", "a\x00" * 50, "x" * 5000]
_OVERSIZED = "x" * (DEFAULT_MAX_BODY_BYTES + 1)

schema = schemathesis.openapi.from_dict(
    create_app(_settings(Path("never-started"))).openapi(),
    config=SchemathesisConfig.from_dict(
        {"seed": 20261204, "generation": {"deterministic": True, "database": "none"}}
    ),
)


def _poisoned(values: Any, poisons: list[str]) -> st.SearchStrategy[Any]:
    """The generated values as they are, or with one of them replaced by a poison."""
    if not isinstance(values, dict) or not values:
        return st.just(values)
    replaced = st.tuples(st.sampled_from(sorted(values)), st.sampled_from(poisons)).map(
        lambda choice: {**values, choice[0]: choice[1]}
    )
    return st.one_of(st.just(values), replaced)


@schema.hook("flatmap_query")
def poison_query(_context: Any, query: Any) -> st.SearchStrategy[Any]:
    return _poisoned(query, _POISONS)


@schema.hook("flatmap_path_parameters")
def poison_path(_context: Any, parameters: Any) -> st.SearchStrategy[Any]:
    return _poisoned(parameters, _POISONS[:3])


@schema.hook("flatmap_body")
def poison_body(_context: Any, body: Any) -> st.SearchStrategy[Any]:
    return _poisoned(body, [*_POISONS, _OVERSIZED])


@dataclass(frozen=True)
class Live:
    server: ServerProcess
    seeded: Seeded


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    admin = os.environ.get(POSTGRES_ENV)
    if not admin:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    directory = tmp_path_factory.mktemp("fuzz-http")
    url = anyio.run(create_database, admin)
    try:
        data_dir = directory / "data"
        fuzz_settings = _settings(data_dir).model_copy(update={"database_url": url})
        seeded = anyio.run(_seed, fuzz_settings)
        environment = server_environment(
            database_url=url,
            data_dir=data_dir,
            embedded_worker="false",
            # No worker runs: /ready is not to wait for one.
            worker_silence_seconds="",
            default_video_quota="",
            create_rate_limit="1000000/minute",
            admin_password="fuzz-admin-password",
        )
        with served(environment, directory / "serve") as server:
            anyio.run(server.ready)
            yield Live(server, seeded)
    finally:
        anyio.run(drop_database, admin, url)


def _call(case: Case[Any], live: Live, headers: dict[str, str]) -> None:
    case.call_and_validate(
        base_url=live.server.url, headers=headers, checks=[not_a_server_error], timeout=30
    )


@schema.parametrize()
@settings(FUZZ, max_examples=15)
def test_no_operation_answers_5xx_over_http_on_postgresql(case: Case[Any], live: Live) -> None:
    with_key = {"Authorization": f"Bearer {live.seeded.key}"}
    _call(case, live, with_key)
    if not case.path.startswith(SIGN_IN):
        _call(case, live, {})
    aimed = _with_real_ids(case, live.seeded)
    if aimed is not None:
        _call(aimed, live, with_key)
