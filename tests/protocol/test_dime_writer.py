"""DimeMessageWriter: exact bytes, chunking the way Axis does, and misuse."""

from __future__ import annotations

import re
import struct

import pytest

from concentrador.protocol.dime import (
    AXIS_ENVELOPE_ID,
    DimeMessageWriter,
    encode_message,
    iter_message,
    read_message,
)
from tests.protocol.dime_expect import Code, raises_dime

SOAP = b"http://schemas.xmlsoap.org/soap/envelope/"
BZ2 = b"application/x-bzip2"
MIB = 1024 * 1024


def physical_records(message: bytes) -> list[tuple[int, int, bytes, bytes, int]]:
    """(flags, TYPE_T, id, type, data length) of each record, parsed with struct."""
    out = []
    position = 0
    while position < len(message):
        byte0, byte1, options, id_len, type_len, data_len = struct.unpack_from(
            ">BBHHHI", message, position
        )
        position += 12 + options + (-options % 4)
        record_id = message[position : position + id_len]
        position += id_len + (-id_len % 4)
        record_type = message[position : position + type_len]
        position += type_len + (-type_len % 4)
        position += data_len + (-data_len % 4)
        out.append((byte0, byte1 >> 4, record_id, record_type, data_len))
    assert position == len(message)
    return out


def test_known_answer_of_the_unchunked_message() -> None:
    message = encode_message(b"<e/>x", b"BZh91", envelope_id="uuid:1", payload_id="A1")
    expected = (
        struct.pack(">BBHHHI", 0x0C, 0x20, 0, 6, len(SOAP), 5)
        + b"uuid:1\0\0"
        + SOAP
        + b"\0\0\0"
        + b"<e/>x\0\0\0"
        + struct.pack(">BBHHHI", 0x0A, 0x10, 0, 2, len(BZ2), 5)
        + b"A1\0\0"
        + BZ2
        + b"\0"
        + b"BZh91\0\0\0"
    )
    assert message == expected


def test_chunked_like_axis_continuations_have_no_type_and_no_id() -> None:
    payload = bytes(2 * MIB + 5)
    message = encode_message(b"<e/>", payload, payload_id="0" * 32, chunk_size=MIB)
    assert physical_records(message) == [
        (0x0C, 2, AXIS_ENVELOPE_ID.encode(), SOAP, 4),
        (0x09, 1, b"0" * 32, BZ2, MIB),
        (0x09, 0, b"", b"", MIB),
        (0x0A, 0, b"", b"", 5),
    ]
    assert read_message(message)[1].data == payload


def test_a_payload_of_exactly_one_chunk_is_not_chunked() -> None:
    message = encode_message(b"<e/>", bytes(MIB), chunk_size=MIB)
    assert [flags for flags, *_ in physical_records(message)] == [0x0C, 0x0A]
    longer = encode_message(b"<e/>", bytes(MIB + 1), chunk_size=MIB)
    assert [flags for flags, *_ in physical_records(longer)] == [0x0C, 0x09, 0x0A]


def test_default_ids_follow_axis() -> None:
    records = [read_message(encode_message(b"<e/>", b"x"))[1] for _ in range(2)]
    assert read_message(encode_message(b"<e/>", b""))[0].id == AXIS_ENVELOPE_ID
    assert all(re.fullmatch("[0-9A-F]{32}", record.id) for record in records)
    assert records[0].id != records[1].id


def test_write_returns_the_piece_itself_when_no_boundary_cuts_it() -> None:
    piece = b"p" * 1000
    writer = DimeMessageWriter(b"<e/>", 3000, chunk_size=1500)
    writer.begin()
    first = writer.write(piece)
    assert len(first) == 1 and first[0] is piece
    second = writer.write(piece)  # crosses the chunk boundary at 1500
    assert [bytes(part) for part in second] == [
        b"p" * 500,
        struct.pack(">BBHHHI", 0x0A, 0x00, 0, 0, 0, 1500),
        b"p" * 500,
    ]
    assert all(isinstance(part, memoryview) and part.obj is piece for part in second[::2])


def test_total_length_matches_the_bytes_for_padding_cases() -> None:
    for envelope_size in range(5):
        for payload_size in range(9):
            for chunk_size in (None, 1, 2, 3, 4, 7):
                writer = DimeMessageWriter(
                    bytes(envelope_size), payload_size, payload_id="abc", chunk_size=chunk_size
                )
                output = b"".join(
                    [writer.begin(), *writer.write(bytes(payload_size)), writer.end()]
                )
                assert len(output) == writer.total_length, (envelope_size, payload_size)


def test_iter_message_streams_pieces_without_joining_them() -> None:
    pieces = [b"a" * 10, b"b" * 20, b"c" * 30]
    parts = list(iter_message(b"<e/>", 60, pieces, payload_id="i"))
    assert any(part is piece for part in parts for piece in pieces)
    assert read_message(b"".join(parts))[1].data == b"".join(pieces)


def test_overrun_is_refused_at_write() -> None:
    writer = DimeMessageWriter(b"<e/>", 4)
    writer.begin()
    writer.write(b"abc")
    with raises_dime(Code.PAYLOAD_LENGTH, match="overrun"):
        writer.write(b"de")


def test_underrun_is_refused_at_end() -> None:
    writer = DimeMessageWriter(b"<e/>", 4)
    writer.begin()
    writer.write(b"abc")
    with raises_dime(Code.PAYLOAD_LENGTH, match="underrun"):
        writer.end()


def test_call_order_is_enforced() -> None:
    writer = DimeMessageWriter(b"<e/>", 0)
    with raises_dime(Code.STATE):
        writer.write(b"")
    writer.begin()
    with raises_dime(Code.STATE):
        writer.begin()
    assert writer.end() == b""
    with raises_dime(Code.STATE):
        writer.write(b"")
    with raises_dime(Code.STATE):
        writer.end()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"payload_length": -1},
        {"chunk_size": 0},
        {"payload_type": ""},
        {"payload_type": "t" * 0x10000},
        {"payload_id": "i" * 0x10000},
        {"payload_length": 2**32},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    arguments: dict[str, object] = {"payload_length": 1} | kwargs
    with raises_dime(Code.CONFIGURATION):
        DimeMessageWriter(b"<e/>", **arguments)  # type: ignore[arg-type]


def test_payloads_over_4_gib_are_possible_with_chunks() -> None:
    writer = DimeMessageWriter(b"", 2**32, payload_id="", chunk_size=2**31)
    envelope_record = 12 + 44 + 44  # header, Axis id, SOAP type (41 -> 44), empty envelope
    payload_records = 2 * 12 + 20 + 2**32  # BZ2 type 19 -> 20
    assert writer.total_length == envelope_record + payload_records
