"""Reading a recogerFichero answer: one DIME message, streamed into a sink.

The message is parsed as it arrives (:class:`DimeReader`, with the
session's limits, so a hostile peer cannot make us buffer more than an
envelope): record 0 is the SOAP envelope, record 1 the file, and a third
record is refused (CPCSCC.md §5: exactly two). The file goes
to a caller-supplied sink in ~1 MiB batches written off the event loop, so
neither the whole file nor a thread hop per network read is ever needed.

A :class:`PendingDownload` sink creates its temp file only at its first
batch, in that batch's thread hop; an attachment that fits in one batch is
*held* in memory instead (its MD5 taken on the loop, cheap at that size) and
written by :meth:`PendingDownload.finish`, in the caller's commit hop: a small
file then costs one thread hop instead of three (open, write, commit).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Protocol

import aiohttp

from concentrador.client.errors import FileVanished, PeerConnectionError, PeerProtocolError
from concentrador.protocol import (
    NEED_DATA,
    DimeError,
    DimeLimits,
    DimeReader,
    DimeTruncatedError,
    Envelope,
    Fault,
    FaultCode,
    Fichero,
    MessageEnd,
    ProtocolError,
    RecogerFicheroResponse,
    RecordData,
    RecordEnd,
    RecordStart,
)
from concentrador.spool.inbound.store import InboundWriter

__all__ = ["DOWNLOAD_FLUSH", "DownloadSink", "PendingDownload", "read_dime_download", "vanished"]

OPERATION = "recogerFichero"
DOWNLOAD_FLUSH = 1024 * 1024
"""Attachment bytes gathered before one write hop to a worker thread."""

ParseAnswer = Callable[[str, int, bytes], Envelope]
"""``(operation, HTTP status, envelope bytes) -> Envelope``, raising the peer's fault."""


class DownloadSink(Protocol):
    """Where a fetched attachment goes; ``write`` is called in a worker thread."""

    def write(self, data: bytes) -> int: ...


class PendingDownload:
    """A download sink whose temp file is opened only when needed (see the module docstring)."""

    def __init__(self, open_writer: Callable[[], InboundWriter]) -> None:
        self._open_writer = open_writer
        self.writer: InboundWriter | None = None
        self._held = b""
        self._held_md5 = hashlib.md5(b"", usedforsecurity=False)

    def write(self, data: bytes) -> int:
        """In a worker thread: a batch of a larger file, into the temp file."""
        if self.writer is None:
            self.writer = self._open_writer()
        return self.writer.write(data)

    def hold(self, data: bytes) -> None:
        """On the loop: the whole attachment, written later by :meth:`finish`."""
        if self.writer is not None or self._held:
            raise ValueError("only a whole attachment that was never written can be held")
        self._held = data
        self._held_md5.update(data)

    @property
    def md5(self) -> str:
        return self.writer.md5 if self.writer is not None else self._held_md5.hexdigest()

    def finish(self) -> InboundWriter:
        """In a worker thread: the writer with everything received (opened now if need be)."""
        if self.writer is None:
            self.writer = self._open_writer()
        if self._held:
            self.writer.write_hashed(self._held, self._held_md5)  # hashed once, on the loop
            self._held = b""
        return self.writer

    def abort(self) -> None:
        """Drop the temp file, if one was opened (blocking: call it in a thread then)."""
        self._held = b""
        if self.writer is not None:
            self.writer.abort()


def vanished(peer: str, name: str, why: str) -> FileVanished:
    """The old-style "not found" (an empty ``Fichero``) as :class:`FileVanished`."""
    fault = Fault(FaultCode.FICHERO, f"{name}: {why} (old-style 'not found')")
    return FileVanished(peer, OPERATION, fault)


async def read_dime_download(
    response: aiohttp.ClientResponse,
    *,
    peer_id: str,
    name: str,
    sink: DownloadSink,
    on_bytes: Callable[[int], None] | None,
    limits: DimeLimits,
    parse: ParseAnswer,
    on_received: Callable[[int], None] | None = None,
) -> tuple[Fichero, int]:
    """Stream the DIME answer for ``name`` into ``sink``; the ``Fichero`` and byte count.

    ``on_received`` hears every network read's size (the call's deadline
    moves with it); ``on_bytes`` hears the attachment bytes as they are written.
    """
    loop = asyncio.get_running_loop()
    reader = DimeReader(limits)
    envelope = bytearray()
    fichero: Fichero | None = None
    pending: list[bytes] = []
    pending_size = 0
    received = 0
    attachment_ended = False
    flushed = False
    hold = sink.hold if isinstance(sink, PendingDownload) else None

    async def flush() -> None:
        nonlocal pending, pending_size, flushed
        if pending:
            flushed = True
            data = b"".join(pending)
            pending, pending_size = [], 0
            await loop.run_in_executor(None, sink.write, data)
            if on_bytes is not None:
                on_bytes(len(data))

    try:
        ended = False
        while not ended:
            chunk = await response.content.readany()
            if on_received is not None:
                on_received(len(chunk))
            reader.receive_data(chunk)  # b"" means end of input
            while (event := reader.next_event()) is not NEED_DATA:
                if isinstance(event, RecordStart) and event.index >= 2:
                    # CPCSCC.md §5: the envelope and the file, nothing else.
                    raise PeerProtocolError(
                        peer_id,
                        f"{OPERATION} {name}: DIME answer has more than two records "
                        "(the envelope and one file only)",
                    )
                if isinstance(event, RecordData):
                    if event.index == 0:
                        envelope += event.data
                    elif event.index == 1:
                        pending.append(bytes(event.data))
                        pending_size += len(event.data)
                        received += len(event.data)
                        if pending_size >= DOWNLOAD_FLUSH:
                            await flush()
                elif isinstance(event, RecordEnd):
                    if event.index == 0:
                        fichero = _answered_fichero(
                            peer_id, name, parse(OPERATION, response.status, bytes(envelope))
                        )
                    elif event.index == 1:
                        attachment_ended = True
                        if hold is not None and not flushed:  # written by its commit hop
                            held = b"".join(pending)
                            pending, pending_size = [], 0
                            hold(held)
                            if on_bytes is not None:
                                on_bytes(len(held))
                        await flush()
                elif isinstance(event, MessageEnd):
                    ended = True
                    break
            if not chunk:
                break
    except DimeTruncatedError as exc:
        raise PeerConnectionError(
            peer_id,
            f"{OPERATION} {name}: connection closed mid-DIME after {received} bytes ({exc})",
        ) from None
    except DimeError as exc:
        raise PeerProtocolError(peer_id, f"{OPERATION} {name}: {exc}") from None
    if fichero is None or not attachment_ended:
        raise PeerProtocolError(
            peer_id, f"{OPERATION} {name}: DIME answer without a file attachment"
        )
    return fichero, received


def _answered_fichero(peer_id: str, name: str, parsed: Envelope) -> Fichero:
    """The ``Fichero`` of the answer's envelope; it must name the file we asked for."""
    try:
        fichero = RecogerFicheroResponse.from_xml(parsed.body_elements).fichero
    except ProtocolError as exc:
        raise PeerProtocolError(peer_id, f"{OPERATION} {name}: {exc}") from None
    if fichero is None:
        raise vanished(peer_id, name, "answered an empty Fichero")
    if fichero.nombre != name:
        raise PeerProtocolError(peer_id, f"{OPERATION} {name}: the answer names {fichero.nombre!r}")
    return fichero
