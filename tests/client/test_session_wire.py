"""Raw-socket peers for the wire quirks aiohttp's test server cannot produce:
an unsolicited ``100 Continue`` before the answer (CPCSCC.md Annex 3), and an
HTTP/1.0 answer with no Content-Length that ends when the connection closes
(Axis's SimpleAxisServer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from concentrador.client.session import PeerSession
from concentrador.protocol.messages import PeticionFechaHoraResponse
from concentrador.protocol.soap import build_envelope
from tests.client.conftest import client_config

ANSWER = build_envelope(PeticionFechaHoraResponse(datetime(2005, 8, 24, 12, 45, 13)).to_xml())


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return head


@pytest.fixture
async def raw_peer() -> AsyncIterator[tuple[str, list[bytes], dict[str, bytes]]]:
    heads: list[bytes] = []
    script: dict[str, bytes] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            heads.append(await _read_request(reader))
            writer.write(script["answer"])
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/", heads, script


async def _ask_time(tmp_path: Path, pki, url: str) -> datetime:  # type: ignore[no-untyped-def]
    config = client_config(pki, tmp_path, url)
    async with PeerSession.open(config, config.peers[0]) as session:
        return await session.peticion_fecha_hora()


async def test_unsolicited_100_continue_before_the_answer_is_skipped(
    raw_peer, tmp_path: Path, pki
) -> None:  # type: ignore[no-untyped-def]
    url, heads, script = raw_peer
    script["answer"] = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
        b"Content-Length: " + str(len(ANSWER)).encode() + b"\r\nConnection: close\r\n\r\n" + ANSWER
    )
    assert await _ask_time(tmp_path, pki, url) == datetime(2005, 8, 24, 12, 45, 13)
    # And we never asked for it ourselves.
    assert b"expect:" not in heads[0].lower()


async def test_http10_answer_delimited_by_connection_close(raw_peer, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
    url, _heads, script = raw_peer
    script["answer"] = b"HTTP/1.0 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n\r\n" + ANSWER
    assert await _ask_time(tmp_path, pki, url) == datetime(2005, 8, 24, 12, 45, 13)
