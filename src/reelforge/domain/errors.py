"""The errors use cases raise, which every interface turns into its own status codes and shapes."""

from __future__ import annotations


class InputError(ValueError):
    """Input that can't be accepted; `field` names it and the message says what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NotFoundError(LookupError):
    """No such object, or not one the caller may see (the two look the same from outside)."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"no {kind} {ident!r}")


class ConflictError(Exception):
    """The request contradicts the current state (a duplicate, a reused idempotency key …)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


class NotReadyError(ConflictError):
    """The video isn't completed (yet), and the action needs a completed one."""


def json_type(value: object) -> str:
    """A JSON value's type as the protocol's `invalid_type` messages name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
