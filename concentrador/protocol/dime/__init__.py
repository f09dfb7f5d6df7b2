"""DIME (draft-nielsen-dime-02) codec for CPCSCC: record header, incremental
reader, streaming writer and the limits a reader enforces.

See ``reader.py`` and ``writer.py`` for the decisions taken where the draft
and CPCSCC.md leave room.
"""

from concentrador.protocol.dime.errors import (
    DimeError,
    DimeErrorCode,
    DimeFormatError,
    DimeLimitError,
    DimeTruncatedError,
    DimeUsageError,
)
from concentrador.protocol.dime.events import (
    NEED_DATA,
    BytesLike,
    DimeEvent,
    DimeRecord,
    MessageEnd,
    RecordData,
    RecordEnd,
    RecordStart,
)
from concentrador.protocol.dime.header import (
    BZIP2_MEDIA_TYPE,
    HEADER_SIZE,
    SOAP_ENVELOPE_TYPE,
    RecordHeader,
    TypeFormat,
    padded_length,
    padding_length,
)
from concentrador.protocol.dime.limits import DimeLimits
from concentrador.protocol.dime.message import read_message
from concentrador.protocol.dime.reader import DimeReader
from concentrador.protocol.dime.writer import (
    AXIS_ENVELOPE_ID,
    DimeMessageWriter,
    encode_message,
    iter_message,
)

__all__ = [
    "AXIS_ENVELOPE_ID",
    "BZIP2_MEDIA_TYPE",
    "HEADER_SIZE",
    "NEED_DATA",
    "SOAP_ENVELOPE_TYPE",
    "BytesLike",
    "DimeError",
    "DimeErrorCode",
    "DimeEvent",
    "DimeFormatError",
    "DimeLimitError",
    "DimeLimits",
    "DimeMessageWriter",
    "DimeReader",
    "DimeRecord",
    "DimeTruncatedError",
    "DimeUsageError",
    "MessageEnd",
    "RecordData",
    "RecordEnd",
    "RecordHeader",
    "RecordStart",
    "TypeFormat",
    "encode_message",
    "iter_message",
    "padded_length",
    "padding_length",
    "read_message",
]
