"""A loopback TCP proxy for HTTP/1.1 that resets connections on chosen requests (RST, not FIN)."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.I | re.M)
_CHUNKED = re.compile(rb"^transfer-encoding:.*chunked", re.I | re.M)


@dataclass
class ResetRule:
    """Reset the next `count` requests whose request line (`GET /v1/videos/x`) matches `pattern`.

    `after_forwarding`: the request reaches upstream and only its answer is lost (what a
    connection dropped mid-response looks like); otherwise upstream never sees it.
    """

    pattern: re.Pattern[str]
    count: int
    after_forwarding: bool = False
    done: int = 0


@dataclass
class FaultProxy:
    """Forwards bytes both ways; each request line is read (framed by Content-Length)."""

    upstream_host: str
    upstream_port: int
    host: str = "127.0.0.1"
    port: int = 0
    rules: list[ResetRule] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    resets: list[str] = field(default_factory=list)

    def reset_next(self, pattern: str, count: int, *, after_forwarding: bool = False) -> ResetRule:
        rule = ResetRule(re.compile(pattern), count, after_forwarding)
        self.rules.append(rule)
        return rule

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _rule_for(self, line: str) -> ResetRule | None:
        for rule in self.rules:
            if rule.done < rule.count and rule.pattern.search(line):
                rule.done += 1
                return rule
        return None

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            _reset(client_w)
            return
        doomed = asyncio.Event()  # set when the next answer upstream gives must be lost
        tasks = [
            asyncio.create_task(self._requests(client_r, upstream_w, client_w, doomed)),
            asyncio.create_task(self._answers(upstream_r, client_w, upstream_w, doomed)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(BaseException):
                    await task
            for writer in (client_w, upstream_w):
                writer.close()

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        upstream: asyncio.StreamWriter,
        client: asyncio.StreamWriter,
        doomed: asyncio.Event,
    ) -> None:
        buffer = b""
        while True:
            while _HEAD_END not in buffer:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, rest = buffer.partition(_HEAD_END)
            if _CHUNKED.search(head):
                # Not framed here (our clients send Content-Length): pass the rest through.
                upstream.write(buffer)
                while chunk := await reader.read(65536):
                    upstream.write(chunk)
                return
            length_match = _CONTENT_LENGTH.search(head)
            length = int(length_match.group(1)) if length_match else 0
            while len(rest) < length:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                rest += chunk
            request, buffer = head + _HEAD_END + rest[:length], rest[length:]
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            line = line.rsplit(" ", 1)[0]  # without the HTTP version
            self.requests.append(line)
            rule = self._rule_for(line)
            if rule is not None and not rule.after_forwarding:
                self.resets.append(line)
                _reset(client)
                return
            if rule is not None:
                self.resets.append(line)
                doomed.set()
            upstream.write(request)
            await upstream.drain()

    async def _answers(
        self,
        reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
        doomed: asyncio.Event,
    ) -> None:
        while chunk := await reader.read(65536):
            if doomed.is_set():
                _reset(client)
                _reset(upstream)
                return
            client.write(chunk)
            await client.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0, so the peer gets a TCP RST (ECONNRESET), not an orderly close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@asynccontextmanager
async def fault_proxy(upstream_host: str, upstream_port: int) -> AsyncIterator[FaultProxy]:
    """Serve a FaultProxy on a free loopback port for the block (in the running event loop)."""
    proxy = FaultProxy(upstream_host, upstream_port)
    server = await asyncio.start_server(proxy.handle, proxy.host, 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()
