"""recogerFichero answers must have exactly two DIME records (CPCSCC.md §5)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from concentrador.client.errors import PeerProtocolError
from concentrador.client.session import PeerSession
from concentrador.pki import DevPki
from concentrador.protocol.messages import Fichero, RecogerFicheroResponse
from concentrador.protocol.soap import build_envelope
from tests.client.conftest import client_config
from tests.server.test_dime_record_count import DATA, NAME, dime_with_records


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


@pytest.fixture
async def dime_peer() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A plain-HTTP peer answering every call with the DIME body in ``bodies[0]``."""
    bodies: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/dime\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(bodies[0]) + bodies[0]
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/", bodies


async def fetch(pki: DevPki, tmp_path: Path, url: str) -> bytes:
    config = client_config(pki, tmp_path, url)
    sink = _Sink()
    async with PeerSession.open(config, config.peers[0]) as session:
        await session.recoger_fichero(NAME, sink)
    return sink.data


ANSWER = build_envelope(
    RecogerFicheroResponse(Fichero(NAME, hashlib.md5(DATA).hexdigest())).to_xml()
)


async def test_two_records_are_read(dime_peer, pki: DevPki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, bodies = dime_peer
    bodies.append(dime_with_records(ANSWER, DATA))
    assert await fetch(pki, tmp_path, url) == DATA


async def test_a_third_record_is_refused(dime_peer, pki: DevPki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, bodies = dime_peer
    bodies.append(dime_with_records(ANSWER, DATA, b"extra"))
    with pytest.raises(PeerProtocolError, match="DIME answer has more than two records"):
        await fetch(pki, tmp_path, url)
