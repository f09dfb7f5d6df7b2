"""Reading captured wire bytes independently of the codecs under test.

The interop tests check the chunking facts of Axis captures with
``walk_physical_records`` (a few lines that trust the capture) rather than
with the DIME reader they are testing; the other helpers split a raw HTTP
request and pull the CPCSCC fields out of an envelope by namespace.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from lxml import etree

from concentrador.protocol.dime import (
    NEED_DATA,
    DimeLimits,
    DimeReader,
    MessageEnd,
    RecordData,
    RecordEnd,
    RecordStart,
)

CP_NS = "http://simel.ree.es/cpcscc/2003/Mensajes"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
DIME_HEADER = 12


@dataclass(frozen=True)
class PhysicalRecord:
    """A DIME record header as it is on the wire (not the codec's view)."""

    message_begin: bool
    message_end: bool
    chunked: bool
    type_format: int
    id: bytes
    type: bytes
    data_length: int


def _padded(length: int) -> int:
    return (length + 3) // 4 * 4


def walk_physical_records(body: bytes) -> list[PhysicalRecord]:
    """Walk the 12-byte headers of a trusted capture, independently of the codec."""
    records: list[PhysicalRecord] = []
    pos = 0
    while pos < len(body):
        byte0, byte1, options_len, id_len, type_len, data_len = struct.unpack_from(
            ">BBHHHI", body, pos
        )
        assert byte0 >> 3 == 1, f"DIME version at byte {pos}"
        fields_at = pos + DIME_HEADER + _padded(options_len)
        type_at = fields_at + _padded(id_len)
        records.append(
            PhysicalRecord(
                message_begin=bool(byte0 & 0x04),
                message_end=bool(byte0 & 0x02),
                chunked=bool(byte0 & 0x01),
                type_format=byte1 >> 4,
                id=body[fields_at : fields_at + id_len],
                type=body[type_at : type_at + type_len],
                data_length=data_len,
            )
        )
        pos = type_at + _padded(type_len) + _padded(data_len)
    assert pos == len(body), "trailing bytes after the last DIME record"
    return records


def read_incrementally(body: bytes, piece: int = 1500) -> list[tuple[int, str, str, bytes]]:
    """Feed ``body`` to DimeReader in socket-sized pieces; return (type_format, type, id, data)."""
    reader = DimeReader(DimeLimits())
    records: list[tuple[int, str, str, bytearray]] = []
    offset = 0
    ended = False
    while not ended:
        event = reader.next_event()
        if event is NEED_DATA:
            reader.receive_data(body[offset : offset + piece])
            offset += piece
        elif isinstance(event, RecordStart):
            assert event.index == len(records)
            records.append((int(event.type_format), event.type, event.id, bytearray()))
        elif isinstance(event, RecordData):
            records[event.index][3].extend(event.data)
        elif isinstance(event, RecordEnd):
            assert event.length == len(records[event.index][3])
        elif isinstance(event, MessageEnd):
            ended = True
    assert offset >= len(body), "reader claimed the end before all bytes were fed"
    reader.receive_data(b"")
    reader.next_event()  # raises if anything but the message was fed
    return [(tf, t, i, bytes(d)) for tf, t, i, d in records]


def split_http(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """(request line, headers with lower-case names, body) of a Content-Length request."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def fichero_fields(envelope: bytes) -> dict[str, str | None]:
    """Concentrador/id, Nombre and Checksum, found by namespace like a strict reader."""
    root = etree.fromstring(envelope, parser=etree.XMLParser(resolve_entities=False))
    assert root.tag == f"{{{SOAP11_NS}}}Envelope"
    header = root.find(f"{{{SOAP11_NS}}}Header/{{{CP_NS}}}Concentrador")
    assert header is not None, "no cp:Concentrador header"
    fichero = root.find(f"{{{SOAP11_NS}}}Body/{{{CP_NS}}}enviarFichero/{{{CP_NS}}}Fichero")
    assert fichero is not None, "no enviarFichero/Fichero wrapper in the cp namespace"
    return {
        "id": header.findtext(f"{{{CP_NS}}}id"),
        "actor": header.get(f"{{{SOAP11_NS}}}actor"),
        "mustUnderstand": header.get(f"{{{SOAP11_NS}}}mustUnderstand"),
        "xsi_type": fichero.get(f"{{{XSI_NS}}}type"),
        "Nombre": fichero.findtext(f"{{{CP_NS}}}Nombre"),
        "Checksum": fichero.findtext(f"{{{CP_NS}}}Checksum"),
    }
