"""Public identifiers: a type prefix and random hex, like the protocol's `video_…` ids."""

from __future__ import annotations

import secrets
from datetime import datetime


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def new_video_id(created_at: datetime) -> str:
    """`video_` and 48 hex digits, the first 8 being the creation time, as upstream's ids are."""
    return f"video_{int(created_at.timestamp()):08x}{secrets.token_hex(20)}"
