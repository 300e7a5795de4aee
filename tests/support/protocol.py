"""Checks of the /v1 gateway's wire format shared by its tests: the error envelope, multipart."""

from __future__ import annotations

import httpx


def assert_protocol_error(
    response: httpx.Response, status: int, code: str | None, param: str | None = None
) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["message", "type", "param", "code"]
    assert (body["error"]["code"], body["error"]["param"]) == (code, param), body
    message: str = body["error"]["message"]
    return message


def multipart(**fields: str) -> dict[str, tuple[None, str]]:
    """Text fields sent as multipart/form-data, as the SDK sends them (not urlencoded)."""
    return {name: (None, value) for name, value in fields.items()}
