"""Streaming writer of the two-record CPCSCC DIME message (CPCSCC.md §5, §10).

Record 1 is the SOAP envelope (TYPE_T 0x02, ``SOAP_ENVELOPE_TYPE``, MB);
record 2 is the file (TYPE_T 0x01, ``application/x-bzip2``, ME). The payload
is pushed through in pieces and never joined: ``write`` returns the piece
itself (or ``memoryview`` slices of it where a chunk boundary cuts it) between
the record headers. ``total_length`` is known up front, because Axis's server
cannot read HTTP-chunked requests and needs a Content-Length (§10).

Default DIME ids follow Apache Axis 1.x, which peers have seen for years:
the envelope record's id is Axis's fixed ``uuid:714C6C40-...`` string and the
attachment's id is 32 random upper-case hex characters (Axis's session-id
style). CPCSCC never references either (§4.3), so they are cosmetic: drawn
from ``random``, not ``uuid.uuid4()``, whose ``os.urandom`` is a system call
per small file served (and system calls are dear in some sandboxes).

With ``chunk_size`` the payload goes out as chunked records of that size
(Axis uses 1 MiB, and only when the payload is larger); the envelope is never
chunked (it is small, and Axis chunks only attachments larger than a chunk).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from concentrador.protocol.dime.errors import (
    DimeErrorCode,
    DimeUsageError,
)
from concentrador.protocol.dime.events import BytesLike
from concentrador.protocol.dime.header import (
    BZIP2_MEDIA_TYPE,
    HEADER_SIZE,
    MAX_DATA_LENGTH,
    MAX_FIELD_LENGTH,
    SOAP_ENVELOPE_TYPE,
    RecordHeader,
    TypeFormat,
    padded_length,
    padding_length,
)

AXIS_ENVELOPE_ID = "uuid:714C6C40-4531-442E-A498-3AC614200295"

_ZEROS = b"\x00\x00\x00"


def _pad(length: int) -> bytes:
    return _ZEROS[: padding_length(length)]


def _field(value: bytes) -> bytes:
    return value + _pad(len(value))


def _encode_text(name: str, value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > MAX_FIELD_LENGTH:
        raise DimeUsageError(
            DimeErrorCode.CONFIGURATION, f"DIME {name} is {len(raw)} bytes, over {MAX_FIELD_LENGTH}"
        )
    return raw


class DimeMessageWriter:
    """Push-style writer: ``begin()``, ``write(piece)`` for each payload piece,
    ``end()``. The concatenation of everything returned is exactly
    ``total_length`` bytes."""

    def __init__(
        self,
        envelope: bytes,
        payload_length: int,
        *,
        payload_type: str = BZIP2_MEDIA_TYPE,
        envelope_id: str | None = None,
        payload_id: str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        if len(envelope) > MAX_DATA_LENGTH:
            raise DimeUsageError(
                DimeErrorCode.CONFIGURATION, f"DIME envelope of {len(envelope)} bytes is too large"
            )
        if payload_length < 0:
            raise DimeUsageError(
                DimeErrorCode.CONFIGURATION, f"DIME payload length {payload_length} is negative"
            )
        if chunk_size is not None and not 1 <= chunk_size <= MAX_DATA_LENGTH:
            raise DimeUsageError(
                DimeErrorCode.CONFIGURATION, f"DIME chunk size {chunk_size} is outside 1..2**32-1"
            )
        if chunk_size is None and payload_length > MAX_DATA_LENGTH:
            raise DimeUsageError(
                DimeErrorCode.CONFIGURATION,
                f"DIME payload of {payload_length} bytes needs a chunk_size (32-bit DATA_LENGTH)",
            )
        self._envelope = envelope
        self._payload_length = payload_length
        self._payload_type = _encode_text("TYPE", payload_type)
        if not self._payload_type:
            raise DimeUsageError(DimeErrorCode.CONFIGURATION, "DIME payload media type is empty")
        self._envelope_id = _encode_text(
            "ID", AXIS_ENVELOPE_ID if envelope_id is None else envelope_id
        )
        self._payload_id = _encode_text(
            "ID", f"{random.getrandbits(128):032X}" if payload_id is None else payload_id
        )
        self._chunk_size = (
            payload_length if chunk_size is None or payload_length <= chunk_size else chunk_size
        )
        # Number of payload records; a 0-byte payload is still one record.
        self._chunk_count = -(-payload_length // self._chunk_size) if payload_length else 1
        self._chunk_index = 0  # index of the chunk whose header went out last
        self._chunk_remaining = 0  # bytes still owed to that chunk
        self._written = 0
        self._state = "new"

    # ------------------------------------------------------------ sizes

    @property
    def total_length(self) -> int:
        """Exact byte length of the whole message (for Content-Length)."""
        envelope_record = (
            HEADER_SIZE
            + padded_length(len(self._envelope_id))
            + len(_field(SOAP_ENVELOPE_TYPE.encode()))
            + padded_length(len(self._envelope))
        )
        payload_fields = padded_length(len(self._payload_id)) + padded_length(
            len(self._payload_type)
        )
        count = self._chunk_count
        payload_records = (
            count * HEADER_SIZE
            + payload_fields
            + (count - 1) * padded_length(self._chunk_size)
            + padded_length(self._chunk_length(count - 1))
        )
        return envelope_record + payload_records

    def _chunk_length(self, index: int) -> int:
        if index < self._chunk_count - 1:
            return self._chunk_size
        return self._payload_length - self._chunk_size * (self._chunk_count - 1)

    def _chunk_header(self, index: int) -> bytes:
        first = index == 0
        last = index == self._chunk_count - 1
        length = self._chunk_length(index)
        header = RecordHeader(
            message_begin=False,
            message_end=last,
            chunked=not last,
            type_format=TypeFormat.MEDIA_TYPE if first else TypeFormat.UNCHANGED,
            options_length=0,
            id_length=len(self._payload_id) if first else 0,
            type_length=len(self._payload_type) if first else 0,
            data_length=length,
        ).encode()
        if first:
            return header + _field(self._payload_id) + _field(self._payload_type)
        return header

    # -------------------------------------------------------- streaming

    def begin(self) -> bytes:
        """The envelope record and the header of the first payload record."""
        if self._state != "new":
            raise DimeUsageError(DimeErrorCode.STATE, "DimeMessageWriter.begin() called twice")
        self._state = "open"
        soap_type = SOAP_ENVELOPE_TYPE.encode()
        envelope_header = RecordHeader(
            message_begin=True,
            message_end=False,
            chunked=False,
            type_format=TypeFormat.ABSOLUTE_URI,
            options_length=0,
            id_length=len(self._envelope_id),
            type_length=len(soap_type),
            data_length=len(self._envelope),
        ).encode()
        self._chunk_remaining = self._chunk_length(0)
        return b"".join(
            (
                envelope_header,
                _field(self._envelope_id),
                _field(soap_type),
                self._envelope,
                _pad(len(self._envelope)),
                self._chunk_header(0),
            )
        )

    def write(self, piece: BytesLike) -> list[BytesLike]:
        """Output for the next payload piece: the piece itself, or slices of it
        with the padding and headers of chunk boundaries in between."""
        if self._state != "open":
            raise DimeUsageError(
                DimeErrorCode.STATE, f"DimeMessageWriter.write() while {self._state}"
            )
        size = len(piece)
        if self._written + size > self._payload_length:
            raise DimeUsageError(
                DimeErrorCode.PAYLOAD_LENGTH,
                f"DIME payload overrun: {self._written + size} bytes written, "
                f"{self._payload_length} announced",
            )
        self._written += size
        out: list[BytesLike] = []
        position = 0
        view: memoryview | None = None
        while position < size:
            if not self._chunk_remaining:
                # Close the finished chunk and open the next one.
                previous = self._chunk_length(self._chunk_index)
                self._chunk_index += 1
                out.append(_pad(previous) + self._chunk_header(self._chunk_index))
                self._chunk_remaining = self._chunk_length(self._chunk_index)
            take = min(self._chunk_remaining, size - position)
            if take == size:
                out.append(piece)
            else:
                if view is None:
                    view = memoryview(piece)
                out.append(view[position : position + take])
            position += take
            self._chunk_remaining -= take
        return out

    def end(self) -> bytes:
        """The padding of the last record. Raises :class:`DimeUsageError` (``PAYLOAD_LENGTH``)
        when fewer bytes were written than announced."""
        if self._state != "open":
            raise DimeUsageError(
                DimeErrorCode.STATE, f"DimeMessageWriter.end() while {self._state}"
            )
        if self._written != self._payload_length:
            raise DimeUsageError(
                DimeErrorCode.PAYLOAD_LENGTH,
                f"DIME payload underrun: {self._written} bytes written, "
                f"{self._payload_length} announced",
            )
        self._state = "ended"
        return _pad(self._chunk_length(self._chunk_count - 1))


def iter_message(
    envelope: bytes,
    payload_length: int,
    pieces: Iterable[BytesLike],
    *,
    payload_type: str = BZIP2_MEDIA_TYPE,
    envelope_id: str | None = None,
    payload_id: str | None = None,
    chunk_size: int | None = None,
) -> Iterator[BytesLike]:
    """Yield the whole message, streaming ``pieces`` (which must add up to
    ``payload_length`` bytes); the keywords are those of :class:`DimeMessageWriter`."""
    writer = DimeMessageWriter(
        envelope,
        payload_length,
        payload_type=payload_type,
        envelope_id=envelope_id,
        payload_id=payload_id,
        chunk_size=chunk_size,
    )
    yield writer.begin()
    for piece in pieces:
        yield from writer.write(piece)
    yield writer.end()


def encode_message(
    envelope: bytes,
    payload: BytesLike,
    *,
    payload_type: str = BZIP2_MEDIA_TYPE,
    envelope_id: str | None = None,
    payload_id: str | None = None,
    chunk_size: int | None = None,
) -> bytes:
    """The whole message as one ``bytes`` (tests, small payloads)."""
    return b"".join(
        iter_message(
            envelope,
            len(payload),
            [payload],
            payload_type=payload_type,
            envelope_id=envelope_id,
            payload_id=payload_id,
            chunk_size=chunk_size,
        )
    )
