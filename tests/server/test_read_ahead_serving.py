"""recogerFichero's read-ahead serving (``open_published_file(read_ahead=...)``,
``dime_file_response``, ``stream_dime_file(head=...)``): exact bytes and
Content-Length at the piece boundaries, and no descriptor left behind when a
client walks away mid-download.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from concentrador.protocol.dime import DimeLimits, DimeMessageWriter, read_message
from concentrador.protocol.messages import RecogerFichero, RecogerFicheroResponse
from concentrador.protocol.soap import SOAP11, build_envelope, parse_envelope
from concentrador.server import app as app_module
from concentrador.server.operations.recoger import FileToServe
from concentrador.server.responses import WRITE_SLICE, stream_dime_file
from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node, ServerFactory

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NAME = "F1_0086_20240101_20240102.0.bz2"
PIECE = 4096
DEADLINE = 20.0  # seconds; generous: the machine may be busy with benchmarks


def open_descriptors_of(path: Path) -> int:
    """How many of this process's descriptors point at ``path``."""
    target = str(path)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                count += 1
        except OSError:  # closed between listdir and readlink
            continue
    return count


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling, bounded by DEADLINE) until ``condition()`` holds."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {DEADLINE} s: {what}")
        await asyncio.sleep(0.01)


def recoger_request() -> bytes:
    return build_envelope(RecogerFichero(NAME).to_xml(), concentrador_id="CREC")


async def fetch_raw(session: aiohttp.ClientSession, node: Node) -> tuple[dict[str, str], bytes]:
    headers = {"Content-Type": SOAP11.content_type}
    async with session.post(node.url, data=recoger_request(), headers=headers) as response:
        assert response.status == 200
        return dict(response.headers), await response.read()


def keep_served_files(monkeypatch: pytest.MonkeyPatch) -> list[FileToServe]:
    """Keep every opened file: a handle dropped unclosed would otherwise be
    closed by the garbage collector and hide the leak from /proc/self/fd."""
    served: list[FileToServe] = []
    real = app_module.open_published_file

    def open_published_file(*args: Any, **kwargs: Any) -> FileToServe:
        served.append(real(*args, **kwargs))
        return served[-1]

    monkeypatch.setattr(app_module, "open_published_file", open_published_file)
    return served


def spy_on_answers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record which of the two answer paths the handler takes."""
    taken: list[str] = []
    whole, streamed = app_module.dime_file_response, app_module.stream_dime_file

    def dime_file_response(envelope: bytes, payload: bytes) -> web.Response:
        taken.append("whole")
        return whole(envelope, payload)

    async def stream_dime_file(*args: Any, **kwargs: Any) -> web.StreamResponse:
        taken.append("streamed")
        return await streamed(*args, **kwargs)

    monkeypatch.setattr(app_module, "dime_file_response", dime_file_response)
    monkeypatch.setattr(app_module, "stream_dime_file", stream_dime_file)
    return taken


@pytest.mark.parametrize(
    ("size", "path"),
    [
        (0, "whole"),
        (1, "whole"),
        (PIECE - 1, "whole"),
        (PIECE, "whole"),  # exactly one piece: the read-ahead is the whole file
        (PIECE + 1, "streamed"),  # head of one piece, then a one-byte read
        (2 * PIECE, "streamed"),
        (2 * PIECE + 1, "streamed"),
        (5 * PIECE - 3, "streamed"),
    ],
)
async def test_exact_bytes_and_content_length_at_piece_boundaries(
    start_server: ServerFactory, crec, monkeypatch: pytest.MonkeyPatch, size: int, path: str
) -> None:
    node = await start_server(state_changes={"read_piece": PIECE})
    data = os.urandom(size)
    node.publish("CREC", NAME, data)
    taken = spy_on_answers(monkeypatch)
    served = keep_served_files(monkeypatch)

    headers, raw = await fetch_raw(crec, node)

    assert taken == [path]
    envelope_record, file_record = read_message(raw)
    assert file_record.data == data
    fichero = RecogerFicheroResponse.from_xml(parse_envelope(envelope_record.data).body).fichero
    assert fichero.checksum == hashlib.md5(data).hexdigest()
    # One exact Content-Length, never chunked: Axis cannot read anything else.
    assert "Transfer-Encoding" not in headers
    expected_length = DimeMessageWriter(envelope_record.data, size).total_length
    assert int(headers["Content-Length"]) == len(raw) == expected_length
    # Closed by the thread hop that read the last byte, before that byte was sent.
    assert len(served) == 1 and served[0].handle.closed
    published = node.folder("CREC", SpoolState.PUBLISHED) / NAME
    assert open_descriptors_of(published) == 0


async def test_client_leaving_mid_download_closes_the_file_and_server_serves_on(
    start_server: ServerFactory, open_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await start_server(state_changes={"read_piece": 64 * 1024})
    # Far more than loopback socket buffers hold: the server is mid-stream
    # (its handle open) when the client walks away.
    data = os.urandom(24 * 1024 * 1024)
    node.publish("CREC", NAME, data)
    published = node.folder("CREC", SpoolState.PUBLISHED) / NAME
    served = keep_served_files(monkeypatch)

    leaver = open_client("CREC-client")
    headers = {"Content-Type": SOAP11.content_type}
    response = await leaver.post(node.url, data=recoger_request(), headers=headers)
    assert response.status == 200
    first = await response.content.read(64 * 1024)
    assert first
    assert open_descriptors_of(published) == 1, "precondition: still streaming"
    response.close()  # drops the connection, mid-DIME

    await eventually(lambda: served[0].handle.closed, "the file handle is closed")
    assert open_descriptors_of(published) == 0

    # The server is unharmed: the same file is served again, whole.
    _, raw = await fetch_raw(open_client("CREC-client"), node)
    records = read_message(raw, DimeLimits(max_attachment=32 * 1024 * 1024))
    assert records[1].data == data
    await eventually(lambda: served[1].handle.closed, "closed after a full download")
    assert open_descriptors_of(published) == 0


# -- stream_dime_file on its own, with a slow disk ------------------------------------------


class SlowHandle:
    """A file handle whose reads after the first wait for ``gate`` and then dawdle.

    It records whether ``close`` ever ran while a read was still inside it,
    which is what closing "after, never under" a read in flight must avoid.
    """

    def __init__(self, data: bytes, gate: threading.Event, dawdle: float) -> None:
        self.name = "slow-handle"
        self._data = io.BytesIO(data)
        self._gate = gate
        self._dawdle = dawdle
        self._lock = threading.Lock()
        self.reads = 0
        self.reading = 0
        self.closed = False
        self.closed_during_read = False
        self.read_after_close = False

    def read(self, size: int) -> bytes:
        with self._lock:
            self.read_after_close |= self.closed
            self.reads += 1
            self.reading += 1
            first = self.reads == 1
        try:
            if not first:
                assert self._gate.wait(DEADLINE)
                time.sleep(self._dawdle)
            return self._data.read(size)
        finally:
            with self._lock:
                self.reading -= 1

    def close(self) -> None:
        with self._lock:
            self.closed_during_read |= self.reading > 0
            self.closed = True


@contextlib.asynccontextmanager
async def plain_http_server(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` at ``GET /`` on a loopback port (plain HTTP); yields the URL."""
    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@pytest.fixture
async def slow_server() -> AsyncIterator[tuple[str, list[SlowHandle], threading.Event]]:
    """A bare app whose only handler streams a 1 MiB SlowHandle."""
    handles: list[SlowHandle] = []
    gate = threading.Event()
    data = bytes(range(256)) * 4096

    async def handler(request: web.Request) -> web.StreamResponse:
        handle = SlowHandle(data, gate, dawdle=0.1)
        handles.append(handle)
        envelope = build_envelope(None)
        head_size = 1000  # an odd head: the pieces then never align with it
        head = handle._data.read(head_size)
        return await stream_dime_file(
            request, envelope, handle, len(data), piece_size=64 * 1024, head=head
        )

    async with plain_http_server(handler) as url:
        try:
            yield url, handles, gate
        finally:
            gate.set()


async def test_disconnect_with_a_read_in_flight_closes_after_the_read(slow_server) -> None:
    url, handles, gate = slow_server
    async with aiohttp.ClientSession() as session:
        response = await session.get(url)
        assert response.status == 200
        assert await response.content.read(1)
        # The first piece is read; the second is stuck behind the gate.
        await eventually(lambda: handles[0].reading == 1, "a read is in flight")
        response.close()
        gate.set()  # the disk answers after the client has gone
        handle = handles[0]
        await eventually(lambda: handle.closed, "the handle is closed")
        assert handle.reading == 0
        assert not handle.closed_during_read, "closed under a running read"
        assert not handle.read_after_close
        assert handle.reads < 1 + (1024 * 1024 - 1000) // (64 * 1024), "kept reading for nobody"

        # And the next request is served in full.
        async with session.get(url) as again:
            body = await again.read()
        assert read_message(body)[1].data == bytes(range(256)) * 4096
        await eventually(lambda: handles[1].closed, "the second handle is closed")
        assert not handles[1].closed_during_read


async def test_large_pieces_reach_the_transport_in_bounded_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pieces read from disk may be large; each write to the TLS transport is
    at most WRITE_SLICE (its ciphertext buffer holds a whole write), and the
    bytes still arrive exact."""
    data = os.urandom(3 * WRITE_SLICE + 1234)
    written: list[int] = []
    real_write = web.StreamResponse.write

    async def recording_write(self: web.StreamResponse, chunk: Any) -> None:
        written.append(len(chunk))
        await real_write(self, chunk)

    monkeypatch.setattr(web.StreamResponse, "write", recording_write)

    async def handler(request: web.Request) -> web.StreamResponse:
        handle = io.BytesIO(data)
        head = handle.read(10)
        return await stream_dime_file(
            request, build_envelope(None), handle, len(data), piece_size=len(data), head=head
        )

    async with (
        plain_http_server(handler) as url,
        aiohttp.ClientSession() as session,
        session.get(url) as response,
    ):
        body = await response.read()
    assert read_message(body)[1].data == data
    assert max(written) == WRITE_SLICE  # the one big piece was sliced, not written whole
    assert sum(written) == len(body)
