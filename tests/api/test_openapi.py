"""The served OpenAPI document: every reference resolves, and the rules the server enforces
are in it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from reelforge.api.app import create_app
from reelforge.settings import Settings


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app: FastAPI = create_app(Settings(_env_file=None))
    return app.openapi()


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    return []


def _resolve(document: dict[str, Any], reference: str) -> Any:
    assert reference.startswith("#/"), reference
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_reference_resolves_in_the_document(document: dict[str, Any]) -> None:
    references = _references(document)

    assert "#/components/schemas/ImageUrlReference" in references
    for reference in references:
        _resolve(document, reference)


def test_prompts_are_documented_non_blank(document: dict[str, Any]) -> None:
    bodies = [
        document["paths"][path]["post"]["requestBody"]["content"][media_type]["schema"]
        for path in ("/api/videos", "/v1/videos", "/v1/videos/{video_id}/remix")
        for media_type in ("application/json", "multipart/form-data")
    ]
    for prompt in (
        *(body["properties"]["prompt"] for body in bodies),
        document["components"]["schemas"]["RemixIn"]["properties"]["prompt"],
    ):
        assert (prompt["minLength"], prompt["pattern"]) == (1, "\\S")


def test_enumerations_and_the_endpoint_url_are_documented(document: dict[str, Any]) -> None:
    listing = document["paths"]["/api/videos"]["get"]["parameters"]
    status = next(p for p in listing if p["name"] == "status")["schema"]
    endpoint = document["components"]["schemas"]["EndpointIn"]["properties"]

    assert status["items"]["enum"] == ["cancelled", "completed", "failed", "in_progress", "queued"]
    assert "video.completed" in endpoint["event_types"]["items"]["enum"]
    assert endpoint["url"]["minLength"] == 1


def test_routes_declare_their_body_limits(document: dict[str, Any]) -> None:
    create = document["paths"]["/v1/videos"]["post"]

    assert create["x-max-body-bytes"] > 20 * 1024 * 1024
