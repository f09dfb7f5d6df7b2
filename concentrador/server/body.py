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
tolerance limit gets a fault saying so. That listener is the one place the
bug is handled; an app served without it reads such a body as truncated.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from aiohttp import web

from concentrador.protocol import (
    NEED_DATA,
    DimeLimitError,
    DimeLimits,
    DimeReader,
    DimeTruncatedError,
    MessageEnd,
    ProtocolError,
    RecordData,
    RecordEnd,
    RecordStart,
)
from concentrador.server.axis.reframer import DECLARED_LENGTH_HEADER

__all__ = [
    "BodyTooLarge",
    "DimeBodyIncomplete",
    "DimeExtraRecord",
    "IncomingDime",
    "read_plain_body",
]


class BodyTooLarge(ProtocolError):
    """A plain SOAP request over the envelope limit (answered as a Client fault)."""

    fault_from_body = True


class DimeBodyIncomplete(DimeTruncatedError):
    """A re-framed DIME body (see ``axis_length_fix``) ended before its message did."""

    fault_from_body = True


class DimeExtraRecord(ProtocolError):
    """A DIME request with a third logical record: CPCSCC.md §5 allows two."""

    fault_from_body = True

    def __init__(self) -> None:
        super().__init__(
            "DIME message has more than two records: CPCSCC allows the SOAP envelope "
            "and one file attachment only"
        )


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
        self._declared = _declared_length(request)
        self._received = 0
        self._records_ended = 0
        self._eof = False
        self.attachment_length = 0
        # One event stream for the whole body: read_envelope, attachment and
        # finish each consume their part of it (nothing runs until iterated).
        self._stream = self._events()

    def _truncation(self, exc: DimeTruncatedError) -> DimeTruncatedError:
        """The clearest error for a DIME message that ended early."""
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
        self._reader.receive_data(piece)

    async def _events(
        self,
    ) -> AsyncGenerator[RecordStart | RecordData | RecordEnd | MessageEnd, None]:
        reader = self._reader
        while True:
            try:
                event = reader.next_event()
            except DimeTruncatedError as exc:
                error = self._truncation(exc)
                if error is exc:
                    raise
                raise error from exc
            except DimeLimitError as exc:
                # Past two records any header is one too many, whatever it announces.
                if self._records_ended >= 2:
                    raise DimeExtraRecord() from exc
                raise
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
            if isinstance(event, RecordStart) and event.index >= 2:
                raise DimeExtraRecord()
            if isinstance(event, RecordEnd):
                self._records_ended += 1
            yield event

    async def read_envelope(self) -> bytes:
        """Record 0's bytes (bounded by the reader's ``max_envelope``)."""
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
        """Read to the end: an attachment not read yet is skipped (bounded by
        the limits), a third record refused (:class:`DimeExtraRecord`), then
        end of input and trailing bytes are checked."""
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
