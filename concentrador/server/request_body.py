"""Reading request bodies: bounded plain SOAP, and streamed DIME.

A plain (``text/xml`` / ``application/soap+xml``) body is read whole, but
never more than the envelope limit: a CPCSCC request is a few hundred bytes.

A DIME body (enviarFichero) is streamed through the core's
:class:`~concentrador.protocol.dime.DimeReader`: the envelope record is
collected (bounded by ``DimeLimits.max_envelope``), then the attachment is
handed out piece by piece and never held whole. The reader raises a
``DimeLimitError`` as soon as a header *announces* too much, before the bytes
arrive, so an oversized block is refused without reading it.

Apache Axis 1.x's Content-Length bug (CPCSCC.md §10): with chunked DIME
records and HTTP/1.0, Axis declares a Content-Length 12 bytes short per
extra record and sends those bytes after the declared body. aiohttp ends the
body at Content-Length, so the DIME message looks truncated by exactly
``12 * (records - 2)`` bytes. :class:`RecordBoundaryTracker` follows the
record headers independently of the reader so that this exact signature can
be recognised and answered with a fault that names the bug and its fix.
Tolerating it would mean reading past Content-Length under aiohttp's HTTP
parser, which takes those bytes as the next request; we do not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from concentrador.protocol.dime import (
    HEADER_SIZE,
    NEED_DATA,
    DimeError,
    DimeLimits,
    DimeReader,
    DimeTruncatedError,
    MessageEnd,
    RecordData,
    RecordEnd,
    RecordHeader,
    RecordStart,
)
from concentrador.protocol.errors import ProtocolError

__all__ = [
    "AXIS_CONTENT_LENGTH_MESSAGE",
    "AxisContentLengthBug",
    "BodyTooLarge",
    "IncomingDime",
    "RecordBoundaryTracker",
    "read_plain_body",
]

AXIS_CONTENT_LENGTH_MESSAGE = (
    "Axis 1.x DIME Content-Length bug: send with HTTP/1.1 chunked transfer encoding"
)


class BodyTooLarge(ProtocolError):
    """A plain SOAP request over the envelope limit (answered as a Client fault)."""

    fault_from_body = True


class AxisContentLengthBug(DimeTruncatedError):
    """The DIME body ends exactly where Axis 1.x's miscounted Content-Length ends."""

    fault_from_body = True


async def read_plain_body(request: web.BaseRequest, limit: int) -> bytes:
    """The whole body, refusing (before reading) anything over ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"request body of {declared} bytes is over the {limit}-byte limit")
    parts: list[bytes] = []
    size = 0
    async for piece in request.content.iter_chunked(64 * 1024):
        size += len(piece)
        if size > limit:
            # Chunked transfer has no declared length: stop at the limit.
            raise BodyTooLarge(f"request body is over the {limit}-byte limit")
        parts.append(piece)
    return b"".join(parts)


class RecordBoundaryTracker:
    """Follows DIME record headers through a byte stream, skipping the payloads.

    Only used to diagnose truncation; the real validation is the reader's. On
    anything it cannot decode it stops tracking (``broken``).
    """

    def __init__(self) -> None:
        self.received = 0
        self.records = 0
        self.record_end = 0  # offset where the current record (with padding) ends
        self._header = bytearray()
        self.broken = False

    def feed(self, data: bytes) -> None:
        position = 0
        size = len(data)
        while not self.broken and position < size:
            offset = self.received + position
            if offset < self.record_end:
                position += min(self.record_end - offset, size - position)
                continue
            take = min(HEADER_SIZE - len(self._header), size - position)
            self._header += data[position : position + take]
            position += take
            if len(self._header) == HEADER_SIZE:
                try:
                    header = RecordHeader.decode(bytes(self._header))
                except DimeError:
                    self.broken = True
                    break
                self._header.clear()
                self.records += 1
                self.record_end = self.received + position - HEADER_SIZE + header.record_length
        self.received += size

    def axis_bug_signature(self) -> bool:
        """True when the input is short by exactly 12 bytes per extra record."""
        if self.broken or self.records < 3 or self._header:
            return False
        missing = self.record_end - self.received
        return missing == HEADER_SIZE * (self.records - 2)


class IncomingDime:
    """A DIME request body read incrementally from an aiohttp request."""

    def __init__(self, request: web.BaseRequest, limits: DimeLimits) -> None:
        self._content = request.content
        self._reader = DimeReader(limits)
        # Content-Length framing is the only case where Axis's miscount bites.
        self._tracker = RecordBoundaryTracker() if request.content_length is not None else None
        self._eof = False
        self.attachment_length = 0

    async def _events(self) -> AsyncIterator[RecordStart | RecordData | RecordEnd | MessageEnd]:
        reader = self._reader
        while True:
            try:
                event = reader.next_event()
            except DimeTruncatedError as exc:
                if self._tracker is not None and self._tracker.axis_bug_signature():
                    raise AxisContentLengthBug(
                        f"{AXIS_CONTENT_LENGTH_MESSAGE} (the body ended "
                        f"{self._tracker.record_end - self._tracker.received} bytes short "
                        "of its last DIME record)"
                    ) from exc
                raise
            if event is NEED_DATA:
                if self._eof:  # pragma: no cover - the reader raises after EOF instead
                    raise DimeTruncatedError("DIME input ended")
                piece = await self._content.readany()
                if not piece:
                    self._eof = True
                    reader.receive_data(b"")
                else:
                    if self._tracker is not None:
                        self._tracker.feed(piece)
                    reader.receive_data(piece)
                continue
            yield event  # type: ignore[misc]

    async def read_envelope(self) -> bytes:
        """Record 0's bytes (bounded by the reader's ``max_envelope``)."""
        self._stream = self._events()
        parts: list[bytes] = []
        async for event in self._stream:
            if isinstance(event, RecordData):
                parts.append(bytes(event.data))
            elif isinstance(event, RecordEnd):
                return b"".join(parts)
            elif isinstance(event, MessageEnd):  # pragma: no cover - RecordEnd comes first
                break
        raise DimeTruncatedError("DIME message has no envelope record")

    async def attachment(self) -> AsyncIterator[memoryview]:
        """The payload of record 1 in pieces; ends at its RecordEnd.

        Raises ``DimeError`` when the message is malformed, including a missing
        attachment. The pieces are views of the received bytes (no copy).
        """
        started = False
        async for event in self._stream:
            if isinstance(event, RecordStart):
                started = True
            elif isinstance(event, RecordData):
                self.attachment_length += len(event.data)
                yield event.data
            elif isinstance(event, RecordEnd):
                return
            elif isinstance(event, MessageEnd):
                break
        what = "ends inside its attachment" if started else "has no attachment record"
        raise DimeTruncatedError(f"DIME message {what}")

    async def finish(self) -> None:
        """Read to the end: any further records are skipped (bounded by the
        limits), then end of input and trailing bytes are checked."""
        async for event in self._stream:
            if isinstance(event, MessageEnd):
                break
        while not self._eof:
            piece = await self._content.readany()
            if not piece:
                self._eof = True
                self._reader.receive_data(b"")
            else:
                self._reader.receive_data(piece)
        await self._stream.aclose()
        self._reader.next_event()  # raises unless only zero padding followed
