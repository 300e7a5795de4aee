"""Reading a Server-Sent Events stream as a client sees it: events, and the comment pings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    event: str
    id: str | None
    data: Any  # the JSON `data:` decoded


@dataclass(frozen=True)
class Comment:
    text: str


async def messages(response: httpx.Response) -> AsyncIterator[Event | Comment]:
    """The stream's events and comments in order, as the EventSource rules split them."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                data = json.loads(fields["data"])
                yield Event(fields.get("event", "message"), fields.get("id"), data)
            fields = {}
        elif line.startswith(":"):
            yield Comment(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            joined = name == "data" and name in fields
            fields[name] = f"{fields[name]}\n{value}" if joined else value


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    async for message in messages(response):
        if isinstance(message, Event):
            yield message
