"""HTTP responses: SOAP messages, SOAP faults and the streamed DIME file answer.

Faults go out with HTTP 500, as SOAP 1.1 (§6.2 of the SOAP note) and SOAP
1.2 require, in the SOAP version the request used. The recogerFichero answer
is streamed from an already-open file descriptor: the file may be confirmed
(moved to ``delivered/``) while we are still sending it, and an open
descriptor keeps reading the same inode.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import BinaryIO

from aiohttp import web
from lxml import etree

from concentrador.protocol import (
    DIME_CONTENT_TYPE,
    SOAP11,
    DimeMessageWriter,
    Fault,
    FaultCode,
    SoapError,
    SoapVersion,
    build_envelope,
)

__all__ = [
    "dime_file_response",
    "fault_response",
    "open_for_serving",
    "read_exactly",
    "read_parts",
    "soap_response",
    "stream_dime_file",
]

log = logging.getLogger(__name__)

# The largest write handed to aiohttp while streaming a file. asyncio's TLS
# transport encrypts a whole write at once into its outgoing buffer, then
# copies what the socket does not take: a 256 KiB write keeps ~0.5 MiB of
# ciphertext per connection. 64 KiB writes cut bench/server_bench.py's peak
# RSS with 32 clients from 118-122 MB to 108-115 MB; the server's CPU for its
# 480 MB single-connection run stayed 0.53-0.61 s either way (disk reads stay
# ``piece_size``: thread hops, not writes, are what smaller pieces would cost).
WRITE_SLICE = 64 * 1024


def soap_response(body: etree._Element, version: SoapVersion) -> web.Response:
    """A 200 answer whose SOAP Body holds ``body``."""
    return envelope_response(build_envelope(body, version=version), version)


def envelope_response(envelope: bytes, version: SoapVersion, *, status: int = 200) -> web.Response:
    """An answer carrying an already serialised envelope."""
    return web.Response(
        status=status, body=envelope, headers={"Content-Type": version.content_type}
    )


def fault_response(fault: Fault, version: SoapVersion | None) -> web.Response:
    """A SOAP fault with HTTP 500, in ``version`` (SOAP 1.1 when unknown)."""
    version = version or SOAP11
    try:
        envelope = fault.to_envelope(version)
    except SoapError:
        # The message came from hostile input XML cannot carry (a control
        # character in a name): answer a fault we can certainly write.
        log.warning("fault text not writable as XML, sending a generic one: %r", fault.string)
        envelope = Fault(
            fault.code if fault.code.isascii() else FaultCode.SERVER,
            "the request could not be processed",
        ).to_envelope(version)
    return envelope_response(envelope, version, status=500)


def read_exactly(handle: BinaryIO, size: int, *, close: bool = False) -> bytes:
    """Read ``size`` bytes; with ``close``, close the handle in the same thread hop."""
    try:
        data = handle.read(size)
        if len(data) != size:
            # The file shrank under us (truncated by someone): the declared
            # Content-Length can no longer be honoured; aborting the connection
            # is the only honest answer.
            raise OSError(f"{handle.name}: expected {size} more bytes, got {len(data)}")
        return data
    finally:
        if close:
            handle.close()


def dime_file_response(envelope: bytes, payload: bytes) -> web.Response:
    """The whole DIME answer for a file already in memory (a small one).

    One ``Response`` means one write of headers and body: a 2 KB file costs
    one TLS record and one ``send`` instead of five.
    """
    writer = DimeMessageWriter(envelope, len(payload))
    body = b"".join([writer.begin(), *writer.write(payload), writer.end()])
    return web.Response(status=200, body=body, headers={"Content-Type": DIME_CONTENT_TYPE})


async def stream_dime_file(
    request: web.BaseRequest,
    envelope: bytes,
    handle: BinaryIO,
    size: int,
    *,
    piece_size: int,
    head: bytes = b"",
) -> web.StreamResponse:
    """Send ``envelope`` and ``size`` bytes of ``handle`` as one DIME message.

    ``head`` is the start of the file when the caller already read it (in
    the same thread hop as the open); the rest is read from ``handle`` in
    ``piece_size`` pieces by the default executor, so the event loop never
    blocks on the disk. Reads run one piece ahead: while piece k is being
    encrypted and sent, piece k+1 is read, so the thread hop's latency is
    hidden behind the TLS work instead of added to it. Each piece comes back
    as :data:`WRITE_SLICE`-sized parts, each freed once sent, so a connection
    holds about 1.5 pieces on average rather than 2: with the parts, the
    32-client peak RSS of bench/server_bench.py went from 102 to 96-97 MB
    (issue 11), for about 5 % more server CPU per byte on one connection
    (four reads and DIME writes per piece instead of one). The handle is
    closed here, by the hop that reads the last piece.
    """
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[list[bytes]] | None = None
    remaining = size - len(head)

    def read_next() -> asyncio.Future[list[bytes]] | None:
        nonlocal remaining
        if not remaining:
            return None
        wanted = min(piece_size, remaining)
        remaining -= wanted
        return loop.run_in_executor(
            None, functools.partial(read_parts, handle, wanted, close=not remaining)
        )

    try:
        writer = DimeMessageWriter(envelope, size)
        response = web.StreamResponse(status=200, headers={"Content-Type": DIME_CONTENT_TYPE})
        response.content_length = writer.total_length
        pending = read_next()
        await response.prepare(request)
        await response.write(writer.begin())
        # Reversed, so that pop() hands out the parts in order, dropping each.
        parts = [head] if head else []
        while True:
            while parts:
                for data in writer.write(parts.pop()):
                    await _write_sliced(response, data)
            if pending is None:
                break
            parts = (await pending)[::-1]
            pending = read_next()
        await response.write(writer.end())
        await response.write_eof()
        return response
    finally:
        _close_after(handle, pending)


def read_parts(handle: BinaryIO, size: int, *, close: bool = False) -> list[bytes]:
    """:func:`read_exactly` as parts of at most :data:`WRITE_SLICE` bytes, each
    its own object so that each can be freed as soon as it is sent."""
    try:
        return [
            read_exactly(handle, min(WRITE_SLICE, size - start))
            for start in range(0, size, WRITE_SLICE)
        ]
    finally:
        if close:
            handle.close()


async def _write_sliced(response: web.StreamResponse, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` in slices of at most :data:`WRITE_SLICE` bytes (views, not copies)."""
    if len(data) <= WRITE_SLICE:
        await response.write(data)
        return
    view = memoryview(data)
    for start in range(0, len(view), WRITE_SLICE):
        await response.write(view[start : start + WRITE_SLICE])


def _close_after(handle: BinaryIO, pending: asyncio.Future[list[bytes]] | None) -> None:
    """Close ``handle`` once no read is running on it (it may be closed already).

    Closing a descriptor opened read-only flushes nothing, so it is done
    right here rather than paying a thread hop for it.
    """
    if pending is None or pending.done():
        handle.close()
        return

    # Cancelled or failed mid-stream with a read in flight: a worker thread is
    # still inside handle.read(); close after it, never under it.
    def close(finished: asyncio.Future[list[bytes]]) -> None:
        if not finished.cancelled():
            finished.exception()  # retrieved: nobody else will look at it
        handle.close()

    pending.add_done_callback(close)


def open_for_serving(path: os.PathLike[str] | str) -> tuple[BinaryIO, int]:
    """Open a published file and return it with its current size (blocking)."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by stream_dime_file
    try:
        size = os.fstat(handle.fileno()).st_size
    except OSError:
        handle.close()
        raise
    return handle, size
