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
extra record and sends those bytes after the declared body. The daemon's
listener tolerates it *before* HTTP parsing
(:mod:`concentrador.server.axis.runner`): such a body reaches us
re-framed as ``Transfer-Encoding: chunked``, whole, with the original
length in ``Concentrador-Declared-Length`` so that a body cut at the
tolerance limit gets a fault saying so. Where the app is served without that
adapter (a plain ``AppRunner``, or a proxy that forwards Content-Length
bodies) the body still ends at Content-Length, the DIME message looks
truncated by exactly ``12 * (records - 2)`` bytes, and a
:class:`~concentrador.protocol.dime.extent.DimeExtentTracker` run alongside
the reader recognises that signature so the fault names the bug and its fix.
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
    RecordStart,
)
from concentrador.protocol.dime.extent import DimeExtentTracker
from concentrador.protocol.errors import ProtocolError
from concentrador.server.axis.reframer import DECLARED_LENGTH_HEADER

__all__ = [
    "AXIS_CONTENT_LENGTH_MESSAGE",
    "AxisContentLengthBug",
    "BodyTooLarge",
    "DimeBodyIncomplete",
    "IncomingDime",
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


class DimeBodyIncomplete(DimeTruncatedError):
    """A re-framed DIME body (see ``axis_length_fix``) ended before its message did."""

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


def _axis_shortfall(tracker: DimeExtentTracker) -> int | None:
    """The bytes missing when they are exactly 12 per extra record, else None."""
    if tracker.failed or tracker.in_header or tracker.records < 3:
        return None
    missing = tracker.record_missing
    return missing if missing == HEADER_SIZE * (tracker.records - 2) else None


def _declared_length(request: web.BaseRequest) -> int | None:
    """The Content-Length a re-framed request had, if it is one."""
    value = request.headers.get(DECLARED_LENGTH_HEADER, "")
    if request.content_length is None and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


class IncomingDime:
    """A DIME request body read incrementally from an aiohttp request."""

    def __init__(self, request: web.BaseRequest, limits: DimeLimits) -> None:
        self._content = request.content
        self._reader = DimeReader(limits)
        # Content-Length framing is the only case where Axis's miscount bites.
        self._tracker: DimeExtentTracker | None = None
        if request.content_length is not None:
            self._tracker = DimeExtentTracker(limits)
        self._declared = _declared_length(request)
        self._received = 0
        self._eof = False
        self.attachment_length = 0

    def _truncation(self, exc: DimeTruncatedError) -> DimeTruncatedError:
        """The clearest error for a DIME message that ended early."""
        tracker = self._tracker
        shortfall = _axis_shortfall(tracker) if tracker is not None else None
        if shortfall is not None:
            return AxisContentLengthBug(
                f"{AXIS_CONTENT_LENGTH_MESSAGE} (the body ended "
                f"{shortfall} bytes short of its last DIME record)"
            )
        declared = self._declared
        if declared is not None and self._received > declared:
            return DimeBodyIncomplete(
                f"DIME message incomplete after {self._received} bytes: past its "
                f"Content-Length of {declared} only the 12 bytes per DIME record that "
                "Axis 1.x leaves uncounted are read"
            )
        if declared is not None:
            return DimeBodyIncomplete(
                f"DIME message incomplete at the end of its Content-Length of {declared} "
                f"bytes ({exc})"
            )
        return exc

    def _feed(self, piece: bytes) -> None:
        self._received += len(piece)
        if self._tracker is not None:
            try:
                self._tracker.feed(piece)
            except DimeError:
                self._tracker = None  # the reader will say what is wrong
        self._reader.receive_data(piece)

    async def _events(self) -> AsyncIterator[RecordStart | RecordData | RecordEnd | MessageEnd]:
        reader = self._reader
        while True:
            try:
                event = reader.next_event()
            except DimeTruncatedError as exc:
                error = self._truncation(exc)
                if error is exc:
                    raise
                raise error from exc
            if event is NEED_DATA:
                if self._eof:  # pragma: no cover - the reader raises after EOF instead
                    raise DimeTruncatedError("DIME input ended")
                piece = await self._content.readany()
                if not piece:
                    self._eof = True
                    reader.receive_data(b"")
                else:
                    self._feed(piece)
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
                self._feed(piece)
        await self._stream.aclose()
        self._reader.next_event()  # raises unless only zero padding followed
