"""Public identifiers: a type prefix and random hex, like the protocol's `video_…` ids."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"
