"""Where a DIME message ends, found from its record headers alone.

HTTP framing and DIME framing can disagree: Apache Axis 1.x declares a
Content-Length 12 bytes short per DIME continuation record (CPCSCC.md §10).
To know where such a body really ends we walk the 12-byte record headers
and skip each record's fields and payload (with their padding) without
looking at them, until the record flagged ME is complete.

This is deliberately *not* a validator: the
:class:`~concentrador.protocol.dime.DimeReader` downstream checks everything
(MB, chunk chains, TYPE_T rules, sizes). The tracker only decodes each header
(so garbage is noticed at once) and bounds the number of records, so that a
hostile stream of tiny records cannot keep it walking.
"""

from __future__ import annotations

from concentrador.protocol.dime.errors import DimeError, DimeErrorCode, DimeLimitError
from concentrador.protocol.dime.events import BytesLike
from concentrador.protocol.dime.header import HEADER_SIZE, RecordHeader
from concentrador.protocol.dime.limits import DimeLimits

__all__ = ["DimeExtentTracker"]


class DimeExtentTracker:
    """Follows DIME record boundaries through a byte stream fed in pieces.

    ``feed(data)`` consumes bytes up to the end of the message and returns how
    many of ``data`` it took; bytes after the ME record are never taken.
    Undecodable headers raise a :class:`~concentrador.protocol.dime.DimeError`
    (then the tracker is spent: ``failed`` is true and ``received`` counts the
    bad header's bytes too).
    """

    def __init__(self, limits: DimeLimits | None = None) -> None:
        self._max_records = (limits or DimeLimits()).max_records
        self.received = 0  # bytes consumed so far
        self.records = 0  # physical record headers begun (a partial header counts)
        self.complete = False  # the ME record has been received, padding included
        self.failed = False
        self._record_end = 0  # stream offset where the record being received ends
        self._last_record_ends_message = False
        self._header = bytearray()

    @property
    def at_record_start(self) -> bool:
        """True when the next byte fed would begin a new record header."""
        return (
            not self.complete
            and not self.failed
            and not self._header
            and self.received == self._record_end
        )

    @property
    def in_header(self) -> bool:
        """True while part of a 12-byte header has been received, not all of it."""
        return bool(self._header)

    @property
    def record_missing(self) -> int:
        """Bytes still needed to finish the record whose header was last decoded
        (0 at a record boundary; meaningless while ``in_header``)."""
        return self._record_end - self.received

    @property
    def last_record_ends_message(self) -> bool:
        """Whether the last decoded header had ME set."""
        return self._last_record_ends_message

    def feed(self, data: BytesLike) -> int:
        """Consume what belongs to the message from ``data``; return the count."""
        if self.failed:
            raise RuntimeError("DimeExtentTracker used after an error")
        position = 0
        size = len(data)
        while position < size and not self.complete:
            offset = self.received + position
            if offset < self._record_end:
                # Inside fields or payload: skip without looking.
                position += min(self._record_end - offset, size - position)
            else:
                if not self._header:
                    if self.records >= self._max_records:
                        self._fail(position)
                        raise DimeLimitError(
                            DimeErrorCode.TOO_MANY_RECORDS,
                            "max_records",
                            self.records + 1,
                            self._max_records,
                            f"record header at byte {offset}",
                            "record count",
                        )
                    self.records += 1
                take = min(HEADER_SIZE - len(self._header), size - position)
                self._header += data[position : position + take]
                position += take
                if len(self._header) < HEADER_SIZE:
                    continue
                start = self.received + position - HEADER_SIZE
                try:
                    header = RecordHeader.decode(bytes(self._header), start)
                except DimeError:
                    self._fail(position)
                    raise
                self._header.clear()
                self._record_end = start + header.record_length
                self._last_record_ends_message = header.message_end
            if self.received + position == self._record_end and self._last_record_ends_message:
                self.complete = True
        self.received += position
        return position

    def _fail(self, position: int) -> None:
        self.failed = True
        self.received += position
