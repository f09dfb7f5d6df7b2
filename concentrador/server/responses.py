"""HTTP responses: SOAP messages, SOAP faults and the streamed DIME file answer.

Faults go out with HTTP 500, as SOAP 1.1 (§6.2 of the SOAP note) and SOAP
1.2 require, in the SOAP version the request used. The recogerFichero answer
is streamed from an already-open file descriptor: the file may be confirmed
(moved to ``delivered/``) while we are still sending it, and an open
descriptor keeps reading the same inode.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import BinaryIO

from aiohttp import web
from lxml import etree

from concentrador.protocol.dime import DimeMessageWriter
from concentrador.protocol.faults import Fault, FaultCode
from concentrador.protocol.soap import SOAP11, SoapError, SoapVersion, build_envelope

__all__ = [
    "DIME_CONTENT_TYPE",
    "fault_response",
    "soap_response",
    "stream_dime_file",
]

log = logging.getLogger(__name__)

DIME_CONTENT_TYPE = "application/dime"


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


def _read_exactly(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        # The file shrank under us (truncated by someone): the declared
        # Content-Length can no longer be honoured; aborting the connection is
        # the only honest answer.
        raise OSError(f"{handle.name}: expected {size} more bytes, got {len(data)}")
    return data


async def stream_dime_file(
    request: web.BaseRequest,
    envelope: bytes,
    handle: BinaryIO,
    size: int,
    *,
    piece_size: int,
) -> web.StreamResponse:
    """Send ``envelope`` and ``size`` bytes of ``handle`` as one DIME message.

    Reads go to the default executor in ``piece_size`` pieces: one thread hop
    per piece (~256 KiB) is cheap next to the TLS encryption of that piece,
    and the event loop never blocks on the disk. The handle is closed here.
    """
    loop = asyncio.get_running_loop()
    try:
        writer = DimeMessageWriter(envelope, size)
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": DIME_CONTENT_TYPE},
        )
        response.content_length = writer.total_length
        await response.prepare(request)
        await response.write(writer.begin())
        remaining = size
        while remaining:
            wanted = min(piece_size, remaining)
            piece = await loop.run_in_executor(None, _read_exactly, handle, wanted)
            remaining -= wanted
            for part in writer.write(piece):
                await response.write(part)
        await response.write(writer.end())
        await response.write_eof()
        return response
    finally:
        await loop.run_in_executor(None, handle.close)


def open_for_serving(path: os.PathLike[str] | str) -> tuple[BinaryIO, int]:
    """Open a published file and return it with its current size (blocking)."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by stream_dime_file
    try:
        size = os.fstat(handle.fileno()).st_size
    except OSError:
        handle.close()
        raise
    return handle, size
