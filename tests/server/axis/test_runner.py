"""The Axis 1.x DIME Content-Length tolerance, through the real server and on its own.

End to end (real app, mutual TLS, raw sockets so that we control the bytes):
an Axis HTTP/1.0 upload and a keep-alive request after a re-framed body are
served, a never-ending body is cut with a clear fault, a quiet client gets its
fault after the grace time; aiohttp still has the hook the runner overrides.
Then :class:`AxisTolerantProtocol` alone, over a fake transport, for what
the network cannot show deterministically (flow control, EOF).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import os
import ssl
import time

import aiohttp
import pytest
from aiohttp import web

from concentrador.protocol.dime import HEADER_SIZE, RecordHeader, TypeFormat, encode_message
from concentrador.protocol.messages import (
    EnviarFichero,
    EnviarFicheroResponse,
    Fichero,
    PeticionFechaHora,
)
from concentrador.protocol.soap import build_envelope, parse_envelope
from concentrador.server.axis.reframer import DECLARED_LENGTH_HEADER
from concentrador.server.axis.runner import AxisTolerantAppRunner, AxisTolerantProtocol
from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node, client_context

NAME = "F1_0086_20240101_20240102.0.bz2"


def upload(data: bytes, *, chunk_size: int = 1 << 16) -> tuple[bytes, int]:
    """An enviarFichero DIME message and the Content-Length Axis 1.x declares for it."""
    fichero = Fichero(NAME, hashlib.md5(data).hexdigest())
    envelope = build_envelope(EnviarFichero(fichero).to_xml(), concentrador_id="CREC")
    message = encode_message(envelope, data, chunk_size=chunk_size)
    records = 1 + max(1, -(-len(data) // chunk_size))
    return message, len(message) - HEADER_SIZE * (records - 2)


def post_head(length: int, *, version: str = "1.0", action: str = "enviarFichero") -> bytes:
    content_type = "application/dime" if action == "enviarFichero" else "text/xml"
    return (
        f"POST /cpcscc HTTP/{version}\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
        f'SOAPAction: "{action}"\r\nContent-Length: {length}\r\n\r\n'
    ).encode()


async def connect(node: Node, pki) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = int(node.url.split(":")[2].split("/")[0])
    return await asyncio.open_connection("localhost", port, ssl=client_context(pki, "CREC-client"))


def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        writer.transport.abort()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(status line, body) of one response with a Content-Length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status, *lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(v) for k, _, v in (x.partition(": ") for x in lines) if k.lower() == "content-length"
    )
    return status.encode(), await asyncio.wait_for(reader.readexactly(length), timeout=10)


async def test_keep_alive_request_after_a_reframed_body_is_served(node: Node, pki) -> None:
    data = os.urandom(300_000)  # 5 DIME chunks of 64 KiB: 48 bytes miscounted
    message, declared = upload(data)
    assert len(message) - declared == 48
    ask_time = build_envelope(PeticionFechaHora().to_xml(), concentrador_id="CREC")
    reader, writer = await connect(node, pki)
    try:
        # HTTP/1.1, both requests in one write: the second starts right after
        # the 48 bytes that the first one's Content-Length does not count.
        writer.write(
            post_head(declared, version="1.1")
            + message
            + post_head(len(ask_time), version="1.1", action="peticionFechaHora")
            + ask_time
        )
        await writer.drain()
        status, body = await read_response(reader)
        assert status.startswith(b"HTTP/1.1 200 ")
        first = parse_envelope(body).first_body_element
        assert EnviarFicheroResponse.from_xml(first).codigo == 0
        status, body = await read_response(reader)
        assert status.startswith(b"HTTP/1.1 200 ")
        assert "peticionFechaHoraResponse" in parse_envelope(body).first_body_element.tag
    finally:
        close(writer)
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == data


def endless_upload(data_length: int) -> tuple[bytes, int]:
    """Envelope, two small chunks, a last chunk announcing ``data_length`` bytes:
    the bytes and a Content-Length that ends right after that last header."""
    envelope = build_envelope(
        EnviarFichero(Fichero(NAME, "0" * 32)).to_xml(), concentrador_id="CREC"
    )
    message = encode_message(envelope, b"BZh91234", chunk_size=4)[: -HEADER_SIZE - 4]
    last = RecordHeader(False, True, False, TypeFormat.UNCHANGED, 0, 0, 0, data_length)
    message += last.encode()
    return message, len(message)


async def test_never_ending_body_is_cut_with_a_clear_fault(node: Node, pki, caplog) -> None:
    start, declared = endless_upload(4 << 20)
    reader, writer = await connect(node, pki)
    try:
        writer.write(post_head(declared) + start + bytes(20_000))  # and it would go on
        await writer.drain()
        status, body = await read_response(reader)
    finally:
        close(writer)
    assert b" 500 " in status
    fault = parse_envelope(body).fault
    assert fault.is_client
    # One continuation record: 12 bytes past the Content-Length are read, no more.
    assert fault.string.startswith(f"DIME message incomplete after {declared + 12} bytes")
    assert f"Content-Length of {declared}" in fault.string and "12 bytes" in fault.string
    assert [p.name for p in node.folder("CREC", SpoolState.INBOX).iterdir()] == []
    assert any("DIME body cut 12 bytes past" in r.message for r in caplog.records)


async def test_quiet_client_gets_its_fault_after_the_grace_time(start_server, pki) -> None:
    node = await start_server(surplus_grace=0.3)
    message, declared = upload(os.urandom(300_000))
    reader, writer = await connect(node, pki)
    try:
        started = time.monotonic()
        writer.write(post_head(declared) + message[:declared])  # counts like Axis, sends less
        await writer.drain()
        status, body = await read_response(reader)
        waited = time.monotonic() - started
    finally:
        close(writer)
    assert b" 500 " in status
    fault = parse_envelope(body).fault
    assert fault.is_client
    assert f"incomplete at the end of its Content-Length of {declared} bytes" in fault.string
    assert 0.25 <= waited < 5


async def test_axis_http10_upload_goes_through_the_reframer(node: Node, pki, caplog) -> None:
    # Axis's default: HTTP/1.0, Content-Length 48 bytes short, every byte sent.
    data = os.urandom(300_000)
    message, declared = upload(data)
    reader, writer = await connect(node, pki)
    try:
        with caplog.at_level(logging.WARNING, logger="concentrador.server.axis.runner"):
            writer.write(post_head(declared) + message)
            await writer.drain()
            status, body = await read_response(reader)
    finally:
        close(writer)
    assert b" 200 " in status
    assert EnviarFicheroResponse.from_xml(parse_envelope(body).first_body_element).codigo == 0
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == data
    tolerated = [r.message for r in caplog.records if "tolerated the Axis 1.x" in r.message]
    assert tolerated and f"Content-Length {declared}, DIME message {len(message)}" in tolerated[0]


def test_aiohttp_still_has_the_make_server_hook_we_override() -> None:
    """``AxisTolerantAppRunner`` overrides aiohttp's private ``_make_server``.

    If an aiohttp upgrade renames it or changes its shape, the runner would
    silently serve without the reframer: fail here instead (and see the
    aiohttp pin in pyproject.toml).
    """
    for base in (web.BaseRunner, web.AppRunner):
        hook = base.__dict__.get("_make_server")
        assert hook is not None, f"aiohttp {aiohttp.__version__}: {base.__name__}._make_server gone"
        assert inspect.iscoroutinefunction(hook)
        assert list(inspect.signature(hook).parameters) == ["self"]
    assert "self._server = await self._make_server()" in inspect.getsource(web.BaseRunner.setup)
    assert AxisTolerantAppRunner._make_server is not web.AppRunner._make_server


async def test_forged_declared_length_header_only_words_the_fault(node: Node, pki) -> None:
    reader, writer = await connect(node, pki)
    try:
        writer.write(
            b"POST /cpcscc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/dime\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n"
            + DECLARED_LENGTH_HEADER.encode()
            + ": \u00b2\r\n\r\n4\r\n\x0c\x20\x00\x00\r\n0\r\n\r\n".encode()
        )
        await writer.drain()
        status, body = await read_response(reader)
    finally:
        close(writer)
    assert b" 500 " in status
    fault = parse_envelope(body).fault
    assert fault.is_client and "Content-Length" not in fault.string


# ------------------------------------------------------------ the protocol alone


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("192.0.2.7", 4443) if name == "peername" else default


class RecordingProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.events: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.received += data

    def eof_received(self) -> bool:
        self.events.append("eof")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")


def quiet_request() -> bytes:
    message, declared = upload(bytes(300_000))
    return post_head(declared) + message[:declared]


def wrapped(grace: float) -> tuple[AxisTolerantProtocol, RecordingProtocol, FakeTransport]:
    inner, transport = RecordingProtocol(), FakeTransport()
    protocol = AxisTolerantProtocol(inner, surplus_grace=grace)
    protocol.connection_made(transport)
    return protocol, inner, transport


async def test_other_traffic_reaches_the_handler_unchanged() -> None:
    protocol, inner, _ = wrapped(0.01)
    stream = post_head(5, action="peticionFechaHora") + b"<a/>x" + b"GET /?wsdl HTTP/1.1\r\n\r\n"
    for index in range(0, len(stream), 7):
        protocol.data_received(stream[index : index + 7])
    assert inner.received == stream
    protocol.connection_lost(None)
    assert inner.events == ["made", "lost"]


async def test_grace_time_does_not_run_while_the_server_paused_reading(caplog) -> None:
    caplog.set_level(logging.WARNING)
    protocol, inner, transport = wrapped(0.05)
    transport.reading = False  # aiohttp's buffer is full: the bytes may be ours to read
    protocol.data_received(quiet_request())
    await asyncio.sleep(0.2)
    assert not inner.received.endswith(b"\r\n0\r\n\r\n")
    transport.reading = True
    await asyncio.sleep(0.2)
    assert inner.received.endswith(b"\r\n0\r\n\r\n")
    assert any(
        "no more bytes arrived" in r.message and "192.0.2.7:4443" in r.message
        for r in caplog.records
    )
    protocol.connection_lost(None)


async def test_eof_ends_an_awaited_body_before_it_is_passed_on() -> None:
    protocol, inner, _ = wrapped(60)
    protocol.data_received(quiet_request())
    assert protocol.eof_received() is True
    assert inner.received.endswith(b"\r\n0\r\n\r\n") and inner.events == ["made", "eof"]
    protocol.connection_lost(None)


@pytest.mark.parametrize("grace", [0.05])
async def test_timer_is_dropped_when_the_connection_is_lost(grace: float) -> None:
    protocol, inner, _ = wrapped(grace)
    protocol.data_received(quiet_request())
    protocol.connection_lost(None)
    await asyncio.sleep(grace * 3)
    assert not inner.received.endswith(b"\r\n0\r\n\r\n")
