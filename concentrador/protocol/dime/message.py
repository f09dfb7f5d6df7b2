"""Whole-message convenience on top of :class:`DimeReader` (tests, tools).

Production code streams with the reader itself; this joins each logical
record's payload into one ``bytes``, so use it only on bounded input.
"""

from __future__ import annotations

from concentrador.protocol.dime.errors import (
    DimeErrorCode,
    DimeUsageError,
)
from concentrador.protocol.dime.events import (
    BytesLike,
    DimeRecord,
    MessageEnd,
    RecordData,
    RecordEnd,
    RecordStart,
)
from concentrador.protocol.dime.limits import DEFAULT_LIMITS, DimeLimits
from concentrador.protocol.dime.reader import DimeReader


def read_message(data: BytesLike, limits: DimeLimits = DEFAULT_LIMITS) -> list[DimeRecord]:
    """Read a whole in-memory DIME message into logical records (tests, tools).

    Applies every check of :class:`DimeReader`, trailing bytes included.
    """
    reader = DimeReader(limits)
    reader.receive_data(data)
    reader.receive_data(b"")
    records: list[DimeRecord] = []
    start: RecordStart | None = None
    pieces: list[memoryview] = []
    while True:
        event = reader.next_event()
        if isinstance(event, RecordStart):
            start, pieces = event, []
        elif isinstance(event, RecordData):
            pieces.append(event.data)
        elif isinstance(event, RecordEnd):
            assert start is not None
            records.append(
                DimeRecord(start.index, start.type_format, start.type, start.id, b"".join(pieces))
            )
        elif isinstance(event, MessageEnd):
            reader.next_event()  # checks the trailing bytes
            return records
        else:  # pragma: no cover - after end of input the reader raises instead
            raise DimeUsageError(
                DimeErrorCode.STATE, "DIME reader asked for data after end of input"
            )
