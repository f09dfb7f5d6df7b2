"""Events the DIME reader emits, h11-style.

A message reads as::

    RecordStart(0, ...)  RecordData(0, ...)*  RecordEnd(0, n0)
    RecordStart(1, ...)  RecordData(1, ...)*  RecordEnd(1, n1)
    ...
    MessageEnd()

with :data:`NEED_DATA` whenever the reader has to be fed more bytes. Indexes
are *logical*: a payload chunked over several physical records (CF=1) is one
``RecordStart``/``RecordEnd`` pair with all its data in between.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from concentrador.protocol.dime.header import TypeFormat

# What callers may hand to the codec, and what data events contain.
BytesLike = bytes | bytearray | memoryview


class _NeedData(enum.Enum):
    # An enum member is a picklable, typed singleton: ``event is NEED_DATA``.
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class RecordStart:
    """A logical record begins. ``type`` and ``id`` are "" when absent."""

    index: int
    type_format: TypeFormat
    type: str
    id: str


@dataclass(frozen=True, slots=True)
class RecordData:
    """A piece of the current logical record's payload.

    ``data`` is a read-only ``memoryview`` over bytes that were fed to the
    reader (no copy). It stays valid as long as the caller holds it; take
    ``bytes(event.data)`` if a ``bytes`` object is needed.
    """

    index: int
    data: memoryview


@dataclass(frozen=True, slots=True)
class RecordEnd:
    """The logical record ended; ``length`` is its payload size summed over chunks."""

    index: int
    length: int


@dataclass(frozen=True, slots=True)
class MessageEnd:
    """The record carrying ME has ended; the message is complete."""


DimeEvent = RecordStart | RecordData | RecordEnd | MessageEnd


@dataclass(frozen=True, slots=True)
class DimeRecord:
    """A whole logical record, as returned by :func:`read_message` (tests, tools)."""

    index: int
    type_format: TypeFormat
    type: str
    id: str
    data: bytes
