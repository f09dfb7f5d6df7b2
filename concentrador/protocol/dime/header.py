"""The 12-byte DIME record header (draft-nielsen-dime-02, CPCSCC.md §5).

Layout, big-endian::

    byte 0   VERSION(5 bits, = 1) | MB | ME | CF
    byte 1   TYPE_T(4 bits) | reserved(4 bits, = 0)
    2..3     OPTIONS_LENGTH
    4..5     ID_LENGTH
    6..7     TYPE_LENGTH
    8..11    DATA_LENGTH

followed by OPTIONS, ID, TYPE and DATA, each zero-padded to a multiple of 4
bytes (the lengths exclude the padding).

This module checks only what a single header can tell on its own (version,
reserved bits, a known TYPE_T). Rules that depend on the record's position
in the message live in the reader.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from concentrador.protocol.dime.errors import (
    DimeErrorCode,
    DimeFormatError,
    DimeUsageError,
)

HEADER_SIZE = 12
DIME_VERSION = 1

_FLAG_MB = 0x04
_FLAG_ME = 0x02
_FLAG_CF = 0x01

MAX_FIELD_LENGTH = 0xFFFF  # OPTIONS/ID/TYPE lengths are 16-bit
MAX_DATA_LENGTH = 0xFFFFFFFF  # DATA_LENGTH is 32-bit

SOAP_ENVELOPE_TYPE = "http://schemas.xmlsoap.org/soap/envelope/"
BZIP2_MEDIA_TYPE = "application/x-bzip2"

_STRUCT = struct.Struct(">BBHHHI")


class TypeFormat(enum.IntEnum):
    """TYPE_T: how to read the TYPE field."""

    UNCHANGED = 0x00  # continuation chunk: same type as the first chunk
    MEDIA_TYPE = 0x01  # RFC 2616 media type, e.g. application/x-bzip2
    ABSOLUTE_URI = 0x02  # e.g. http://schemas.xmlsoap.org/soap/envelope/
    UNKNOWN = 0x03  # no TYPE; payload type unknown
    NONE = 0x04  # no TYPE and no DATA


def padding_length(length: int) -> int:
    """Bytes of zero padding that follow a field of ``length`` bytes."""
    return -length % 4


def padded_length(length: int) -> int:
    """``length`` rounded up to the next multiple of 4."""
    return length + padding_length(length)


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """One decoded (or to-be-encoded) physical record header."""

    message_begin: bool
    message_end: bool
    chunked: bool  # CF: the payload continues in the next record
    type_format: TypeFormat
    options_length: int
    id_length: int
    type_length: int
    data_length: int

    @property
    def fields_length(self) -> int:
        """Bytes between the header and DATA: OPTIONS, ID and TYPE with padding."""
        return (
            padded_length(self.options_length)
            + padded_length(self.id_length)
            + padded_length(self.type_length)
        )

    @property
    def record_length(self) -> int:
        """Total bytes of the physical record, header and all padding included."""
        return HEADER_SIZE + self.fields_length + padded_length(self.data_length)

    def encode(self) -> bytes:
        """The 12 header bytes. Raises :class:`DimeUsageError` on lengths
        that do not fit their fields (a caller bug, never peer input)."""
        for name, value, maximum in (
            ("OPTIONS_LENGTH", self.options_length, MAX_FIELD_LENGTH),
            ("ID_LENGTH", self.id_length, MAX_FIELD_LENGTH),
            ("TYPE_LENGTH", self.type_length, MAX_FIELD_LENGTH),
            ("DATA_LENGTH", self.data_length, MAX_DATA_LENGTH),
        ):
            if not 0 <= value <= maximum:
                raise DimeUsageError(
                    DimeErrorCode.CONFIGURATION, f"DIME {name} {value} is outside 0..{maximum}"
                )
        flags = (
            (_FLAG_MB if self.message_begin else 0)
            | (_FLAG_ME if self.message_end else 0)
            | (_FLAG_CF if self.chunked else 0)
        )
        return _STRUCT.pack(
            DIME_VERSION << 3 | flags,
            int(self.type_format) << 4,
            self.options_length,
            self.id_length,
            self.type_length,
            self.data_length,
        )

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> RecordHeader:
        """Decode 12 bytes. ``offset`` (the header's position in the message)
        only goes into error messages.

        Raises :class:`DimeFormatError` (``VERSION``, ``RESERVED_BITS``, or
        ``TYPE_FORMAT`` for a TYPE_T above 0x04).
        """
        if len(data) != HEADER_SIZE:
            raise DimeUsageError(
                DimeErrorCode.CONFIGURATION,
                f"a DIME header is {HEADER_SIZE} bytes, got {len(data)}",
            )
        byte0, byte1, options_length, id_length, type_length, data_length = _STRUCT.unpack(data)
        version = byte0 >> 3
        if version != DIME_VERSION:
            raise DimeFormatError(
                DimeErrorCode.VERSION,
                f"DIME record header at byte {offset}: VERSION is {version}, expected 1 "
                f"(first byte 0x{byte0:02x})",
            )
        if byte1 & 0x0F:
            raise DimeFormatError(
                DimeErrorCode.RESERVED_BITS,
                f"DIME record header at byte {offset}: reserved bits are 0x{byte1 & 0x0F:x}, "
                "must be 0",
            )
        raw_type_format = byte1 >> 4
        try:
            type_format = TypeFormat(raw_type_format)
        except ValueError:
            raise DimeFormatError(
                DimeErrorCode.TYPE_FORMAT,
                f"DIME record header at byte {offset}: TYPE_T 0x{raw_type_format:02x} "
                "is not defined (0x00..0x04)",
            ) from None
        return cls(
            message_begin=bool(byte0 & _FLAG_MB),
            message_end=bool(byte0 & _FLAG_ME),
            chunked=bool(byte0 & _FLAG_CF),
            type_format=type_format,
            options_length=options_length,
            id_length=id_length,
            type_length=type_length,
            data_length=data_length,
        )
