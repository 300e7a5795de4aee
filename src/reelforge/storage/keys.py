"""Object keys: the one rule that keeps every key inside its store's root."""

from __future__ import annotations

import re

MAX_KEY_LENGTH = 512
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


class InvalidKeyError(ValueError):
    """A key that could name something outside the store, or that stores can't hold alike."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid object key {key!r}: {reason}")


def validate_key(key: str) -> str:
    """Return `key` if it is a relative path of plain segments, else raise InvalidKeyError.

    A whitelist rather than a blacklist: segments are letters, digits, `_`, `.` and `-`, never
    starting with a dot, so `..`, absolute paths, backslashes, drive letters, control characters
    and empty segments are all impossible by construction, on every backend alike.
    """
    if not key:
        raise InvalidKeyError(key, "must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(key, f"must be at most {MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidKeyError(
                key,
                "segments separated by '/' must be 1-128 of A-Z a-z 0-9 _ . - "
                "and must not start with '.' or '-'",
            )
    return key
