"""peticionFechaHora: ask a peer for its date and time (CPCSCC.md §4.1, §9)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Self

from lxml import etree

from concentrador.protocol.messages.common import (
    MessageError,
    MessageSource,
    WireMessage,
    cp_element,
    cp_subelement,
    find_first,
    scope_of,
    text_of,
)
from concentrador.protocol.xmlparse import xml_trim

__all__ = [
    "WIRE_DATETIME_FORMAT",
    "PeticionFechaHora",
    "PeticionFechaHoraResponse",
    "format_wire_datetime",
    "parse_wire_datetime",
]

WIRE_DATETIME_FORMAT = "%d/%m/%Y %H:%M:%S"

# Accepted when reading only: some stacks answer with xsd:dateTime.
_LENIENT_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")


def format_wire_datetime(moment: datetime) -> str:
    """``DD/MM/YYYY hh:mm:ss`` of the wall-clock time in ``moment``.

    The server passes "now" already converted to its configured time zone;
    the wire format carries no zone, so an aware datetime is written as its
    own local wall time.
    """
    # Formatted by hand: strftime does not zero-pad years below 1000 on glibc.
    return (
        f"{moment.day:02d}/{moment.month:02d}/{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def parse_wire_datetime(text: str) -> datetime:
    """Read a peer's date and time as a naive datetime (the peer's wall time).

    Raises :class:`MessageError` when it matches no accepted format.
    """
    stripped = xml_trim(text)
    for fmt in (WIRE_DATETIME_FORMAT, *_LENIENT_FORMATS):
        try:
            return datetime.strptime(stripped, fmt)
        except ValueError:
            continue
    # fromisoformat copes with fractions and offsets; keep only the wall time
    # because the §4.1 format is zone-less anyway.
    try:
        return datetime.fromisoformat(stripped).replace(tzinfo=None)
    except ValueError:
        pass
    shown = stripped if len(stripped) <= 40 else stripped[:40] + "..."
    raise MessageError(f"fechaHora must be 'DD/MM/YYYY hh:mm:ss', got {shown!r}")


@dataclass(frozen=True, slots=True)
class PeticionFechaHora(WireMessage):
    """The request: an empty ``<cp:peticionFechaHora/>``."""

    ELEMENT: ClassVar[str] = "peticionFechaHora"

    def to_xml(self) -> etree._Element:
        return cp_element(self.ELEMENT)

    @classmethod
    def from_xml(cls, source: MessageSource) -> Self:
        scope_of(source)  # validates the argument; the request has no fields
        return cls()


@dataclass(frozen=True, slots=True)
class PeticionFechaHoraResponse(WireMessage):
    """The answer: the server's local wall-clock time."""

    ELEMENT: ClassVar[str] = "peticionFechaHoraResponse"

    fecha_hora: datetime

    def to_xml(self) -> etree._Element:
        root = cp_element(self.ELEMENT)
        cp_subelement(root, "fechaHora", format_wire_datetime(self.fecha_hora))
        return root

    @classmethod
    def from_xml(cls, source: MessageSource) -> Self:
        field = find_first(scope_of(source), "fechaHora")
        if field is None:
            raise MessageError("peticionFechaHoraResponse has no fechaHora")
        return cls(parse_wire_datetime(text_of(field)))
