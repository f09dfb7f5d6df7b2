"""Issue 13, items 1-3: hostile connections are closed in time, and capped.

Driven at the socket level against the in-process daemon with short
configured deadlines; each test asserts the precise answer (or the close)
and a generous bound on how long it took.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from concentrador.daemon.serve import Daemon
from tests.daemon.helpers import (
    client_context,
    config_text,
    fecha_hora_envelope,
    write_config,
)

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

LIMITS = {
    "handshake_timeout": 1,
    "header_timeout": 1,
    "keepalive_timeout": 2,
    "body_interval": 1,
    "body_min_bytes": 1024,
    "max_connections": 6,
    "max_connections_per_address": 3,
}


def limited_config(pki: Path, spool: Path, **limits: float) -> str:
    lines = "".join(f"{key} = {value}\n" for key, value in {**LIMITS, **limits}.items())
    return config_text(pki, spool).replace("client_ca = ", lines + "client_ca = ", 1)


@pytest.fixture
async def daemon(start_daemon, tmp_path: Path, pki: Path) -> Daemon:
    path = write_config(tmp_path / "limited.toml", limited_config(pki, tmp_path / "spool"))
    return await start_daemon(path=path)


@pytest.fixture
async def connect(daemon: Daemon, pki: Path) -> AsyncIterator[Callable[..., Awaitable[Streams]]]:
    """``await connect(tls=True, source="127.0.0.1")`` → streams, closed after the test."""
    host, port = daemon.addresses[0]
    opened: list[asyncio.StreamWriter] = []
    context = client_context(pki)

    async def open_one(*, tls: bool = True, source: str = "127.0.0.1") -> Streams:
        reader, writer = await asyncio.open_connection(
            host,
            port,
            ssl=context if tls else None,
            server_hostname="localhost" if tls else None,
            local_addr=(source, 0),
        )
        opened.append(writer)
        return reader, writer

    yield open_one
    for writer in opened:
        writer.close()


async def read_until_closed(reader: asyncio.StreamReader, limit: float = 10.0) -> bytes:
    """Everything the server sends until it closes (an abort reads as the end too)."""
    data = b""
    async with asyncio.timeout(limit):
        while True:
            try:
                chunk = await reader.read(65536)
            except (ConnectionResetError, ssl.SSLError):
                return data
            if not chunk:
                return data
            data += chunk


async def test_an_idle_tls_connection_gets_408_when_its_first_head_is_late(connect) -> None:
    reader, _ = await connect()
    started = time.monotonic()
    answer = await read_until_closed(reader)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Connection: close" in answer
    assert 0.8 <= elapsed < 4.0


async def test_a_dripping_head_gets_408_within_the_header_timeout(connect) -> None:
    reader, writer = await connect()
    started = time.monotonic()

    async def drip() -> None:
        for byte in b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Slow: yes":
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)

    dripping = asyncio.create_task(drip())
    answer = await read_until_closed(reader)
    elapsed = time.monotonic() - started
    dripping.cancel()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert 0.8 <= elapsed < 4.0


async def test_an_idle_keepalive_connection_is_closed_after_keepalive_timeout(connect) -> None:
    reader, writer = await connect()
    body = fecha_hora_envelope()
    writer.write(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\n"
        b'SOAPAction: "urn:peticionFechaHora"\r\n'
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    answer = await reader.readuntil(b"</soapenv:Envelope>")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    started = time.monotonic()
    rest = await read_until_closed(reader)
    elapsed = time.monotonic() - started
    assert rest == b""  # aiohttp closes an idle connection without a word
    assert 1.5 <= elapsed < 5.0


async def test_a_stalled_handshake_is_closed_after_handshake_timeout(connect) -> None:
    reader, _ = await connect(tls=False)  # TCP only: no ClientHello ever
    started = time.monotonic()
    assert await read_until_closed(reader) == b""
    assert 0.8 <= time.monotonic() - started < 4.0


async def test_a_stalled_body_is_aborted_after_one_body_interval(connect, daemon) -> None:
    reader, writer = await connect()
    writer.write(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
        b"Content-Length: 100000\r\n\r\n" + b"<" * 100
    )
    started = time.monotonic()

    async def drip() -> None:  # 10 bytes a second: under 1024 per second
        while True:
            await asyncio.sleep(0.1)
            writer.write(b" ")

    dripping = asyncio.create_task(drip())
    answer = await read_until_closed(reader)
    elapsed = time.monotonic() - started
    dripping.cancel()
    assert answer == b""
    assert 0.8 <= elapsed < 4.0
    assert daemon._listener.guard.timed_out == 1


async def test_connections_over_the_per_address_cap_get_503(connect, daemon) -> None:
    held = [await connect() for _ in range(3)]
    reader, _ = await connect()
    started = time.monotonic()
    answer = await read_until_closed(reader)
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert answer.endswith(b"too many connections from 127.0.0.1 (3)\n")
    assert time.monotonic() - started < 3.0
    # Another address still gets in while 127.0.0.1 is at its cap.
    _, other = await connect(source="127.0.0.2")
    await asyncio.sleep(0.2)
    assert not other.is_closing()
    assert daemon._listener.guard.per_address == {"127.0.0.1": 3, "127.0.0.2": 1}
    held[0][1].close()
    await asyncio.sleep(0.3)
    assert daemon._listener.guard.per_address["127.0.0.1"] == 2


async def test_connections_over_the_overall_cap_get_503(connect) -> None:
    for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        for _ in range(2):
            await connect(source=source)
    reader, _ = await connect(source="127.0.0.4")
    answer = await read_until_closed(reader)
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert answer.endswith(b"too many connections (6)\n")
