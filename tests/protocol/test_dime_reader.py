"""DimeReader: a hand-built known answer, streaming behaviour, and hostile input.

Messages here are built byte by byte with ``struct`` from draft-nielsen-dime-02
(``raw_record``), never with the writer, so the reader is checked against the
spec and not against our own encoder.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Iterable

import pytest

from concentrador.protocol.dime import (
    NEED_DATA,
    DimeLimits,
    DimeReader,
    DimeRecord,
    MessageEnd,
    RecordData,
    RecordEnd,
    RecordStart,
    TypeFormat,
    read_message,
)
from concentrador.protocol.errors import ProtocolError
from tests.protocol.dime_expect import Code, raises_dime

SOAP = b"http://schemas.xmlsoap.org/soap/envelope/"
BZ2 = b"application/x-bzip2"
MIB = 1024 * 1024


def pad(field: bytes, fill: int = 0) -> bytes:
    return field + bytes([fill]) * (-len(field) % 4)


def raw_record(
    *,
    mb: bool = False,
    me: bool = False,
    cf: bool = False,
    type_t: int = 1,
    options: bytes = b"",
    id_: bytes = b"",
    type_: bytes = b"",
    data: bytes = b"",
    version: int = 1,
    reserved: int = 0,
    data_length: int | None = None,
    data_pad: int = 0,
) -> bytes:
    """One physical record, straight from the draft's layout."""
    header = struct.pack(
        ">BBHHHI",
        version << 3 | mb << 2 | me << 1 | cf,
        type_t << 4 | reserved,
        len(options),
        len(id_),
        len(type_),
        len(data) if data_length is None else data_length,
    )
    return header + pad(options) + pad(id_) + pad(type_) + pad(data, data_pad)


def envelope_record(data: bytes = b"<e/>", **kw: object) -> bytes:
    fields: dict[str, object] = {"mb": True, "type_t": 2, "id_": b"uuid:1", "type_": SOAP}
    fields.update(kw)
    return raw_record(data=data, **fields)  # type: ignore[arg-type]


def payload_record(data: bytes = b"BZh9", **kw: object) -> bytes:
    fields: dict[str, object] = {"me": True, "type_t": 1, "id_": b"A1", "type_": BZ2}
    fields.update(kw)
    return raw_record(data=data, **fields)  # type: ignore[arg-type]


def events_of(pieces: Iterable[bytes]) -> list[object]:
    reader = DimeReader()
    events: list[object] = []
    for piece in [*pieces, b""]:
        reader.receive_data(piece)
        while (event := reader.next_event()) is not NEED_DATA:
            if isinstance(event, RecordData):
                event = RecordData(event.index, bytes(event.data))  # type: ignore[arg-type]
            events.append(event)
    return events


# ----------------------------------------------------------------- known answer


def test_known_answer_vector() -> None:
    # Envelope: 11 bytes -> 1 byte of padding; id "uuid:1" (6) -> 2; SOAP type is 41 -> 3.
    envelope = b"<soap:Env/>"
    vector = (
        bytes.fromhex("0c20 0000 0006 0029 0000000b")
        + b"uuid:1\0\0"
        + SOAP
        + b"\0\0\0"
        + envelope
        + b"\0"
        # Payload: chunked 3 + 2 bytes. First chunk: CF, TYPE_T 1, id "A1", type 19 bytes.
        + bytes.fromhex("0910 0000 0002 0013 00000003")
        + b"A1\0\0"
        + BZ2
        + b"\0"
        + b"BZh\0"
        # Continuation: ME, TYPE_T 0 (unchanged), no id/type.
        + bytes.fromhex("0a00 0000 0000 0000 00000002")
        + b"91\0\0"
    )
    assert events_of([vector]) == [
        RecordStart(0, TypeFormat.ABSOLUTE_URI, SOAP.decode(), "uuid:1"),
        RecordData(0, envelope),  # type: ignore[arg-type]
        RecordEnd(0, 11),
        RecordStart(1, TypeFormat.MEDIA_TYPE, BZ2.decode(), "A1"),
        RecordData(1, b"BZh"),  # type: ignore[arg-type]
        RecordData(1, b"91"),  # type: ignore[arg-type]
        RecordEnd(1, 5),
        MessageEnd(),
    ]
    assert read_message(vector) == [
        DimeRecord(0, TypeFormat.ABSOLUTE_URI, SOAP.decode(), "uuid:1", envelope),
        DimeRecord(1, TypeFormat.MEDIA_TYPE, BZ2.decode(), "A1", b"BZh91"),
    ]
    # Byte by byte gives the same records (headers and fields split across feeds).
    byte_events = events_of(vector[i : i + 1] for i in range(len(vector)))
    assert [e for e in byte_events if not isinstance(e, RecordData)] == [
        e for e in events_of([vector]) if not isinstance(e, RecordData)
    ]
    assert b"".join(e.data for e in byte_events if isinstance(e, RecordData)) == envelope + b"BZh91"


def test_unknown_and_none_records_and_options_are_read() -> None:
    message = (
        raw_record(mb=True, type_t=3, options=b"\x00\x01\x00\x01x", data=b"abc")
        + raw_record(type_t=4, id_=b"nothing")
        + raw_record(me=True, type_t=1, type_=b"text/plain", data=b"z")
    )
    assert read_message(message) == [
        DimeRecord(0, TypeFormat.UNKNOWN, "", "", b"abc"),
        DimeRecord(1, TypeFormat.NONE, "", "nothing", b""),
        DimeRecord(2, TypeFormat.MEDIA_TYPE, "text/plain", "", b"z"),
    ]


def test_data_events_are_zero_copy_slices_of_the_fed_bytes() -> None:
    payload = bytes(range(256)) * 256
    message = envelope_record() + payload_record(payload)
    reader = DimeReader()
    reader.receive_data(message)
    data_events = []
    while not isinstance(event := reader.next_event(), MessageEnd):
        if isinstance(event, RecordData):
            data_events.append(event)
    assert all(isinstance(e.data, memoryview) and e.data.obj is message for e in data_events)
    assert bytes(data_events[-1].data) == payload


def test_bytearray_input_is_copied_so_the_caller_may_reuse_it() -> None:
    buffer = bytearray(envelope_record(b"abcd") + payload_record(b"wxyz"))
    reader = DimeReader()
    reader.receive_data(buffer)
    buffer[:] = b"\xff" * len(buffer)  # would raise BufferError if the reader held an export
    seen = []
    while not isinstance(event := reader.next_event(), MessageEnd):
        if isinstance(event, RecordData):
            seen.append(bytes(event.data))
    assert seen == [b"abcd", b"wxyz"]


def test_trailing_zero_padding_is_accepted() -> None:
    message = envelope_record() + payload_record()
    assert len(read_message(message + b"\0" * 7)) == 2


def _stream_peak(limits: DimeLimits, chunk_size: int | None) -> tuple[int, int]:
    """Feed an 8 MiB attachment in 64 KiB pieces (re-using one bytes object, so
    the input itself costs nothing) and return (payload bytes seen, peak memory)."""
    piece = bytes(64 * 1024)
    total = 8 * MIB
    chunks = [total] if chunk_size is None else [chunk_size] * (total // chunk_size)
    reader = DimeReader(limits)
    seen = 0
    others: list[object] = []
    tracemalloc.start()
    try:
        reader.receive_data(envelope_record())
        for number, length in enumerate(chunks):
            first, last = number == 0, number == len(chunks) - 1
            header = struct.pack(
                ">BBHHHI",
                0x08 | (not last) | last << 1,
                0x10 if first else 0,
                0,
                0,
                len(BZ2) if first else 0,
                length,
            )
            reader.receive_data(header + (pad(BZ2) if first else b""))
            for _ in range(length // len(piece)):
                reader.receive_data(piece)
                while (event := reader.next_event()) is not NEED_DATA:
                    if isinstance(event, RecordData):
                        seen += len(event.data) if event.index == 1 else 0
                    else:
                        others.append(event)
        reader.receive_data(b"")
        assert reader.next_event() is NEED_DATA
        assert others[-2:] == [RecordEnd(1, total), MessageEnd()]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seen, peak


@pytest.mark.parametrize("chunk_size", [None, MIB])
def test_an_8_mib_attachment_streams_in_constant_memory(chunk_size: int | None) -> None:
    seen, peak = _stream_peak(DimeLimits(), chunk_size)
    assert seen == 8 * MIB
    assert peak < 256 * 1024, f"reader peaked at {peak} bytes"


# ------------------------------------------------------------------- limits


def test_a_4_gib_claim_raises_on_the_bare_header() -> None:
    reader = DimeReader()
    reader.receive_data(envelope_record())
    for _ in range(3):
        reader.next_event()  # start, data, end of the envelope
    reader.receive_data(struct.pack(">BBHHHI", 0x0A, 0x10, 0, 0, len(BZ2), 0xFFFFFFFF))
    tracemalloc.start()
    try:
        with raises_dime(Code.ATTACHMENT_TOO_LARGE) as info:
            reader.next_event()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert (info.value.limit_name, info.value.value, info.value.limit) == (
        "max_attachment",
        0xFFFFFFFF,
        8 * MIB,
    )
    assert "max_attachment=8388608" in str(info.value)


def test_a_4_gib_claim_within_generous_limits_allocates_nothing() -> None:
    reader = DimeReader(DimeLimits(max_attachment=2**32))
    reader.receive_data(envelope_record())
    reader.receive_data(payload_record(b"", data_length=0xFFFFFFFF))
    tracemalloc.start()
    try:
        events = [reader.next_event() for _ in range(5)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(events[3], RecordStart)
    assert events[4] is NEED_DATA
    assert peak < 64 * 1024


def test_envelope_limit() -> None:
    header_only = struct.pack(">BBHHHI", 0x0C, 0x20, 0, 0, len(SOAP), MIB + 1)
    reader = DimeReader()
    reader.receive_data(header_only)
    with raises_dime(Code.ENVELOPE_TOO_LARGE) as info:
        reader.next_event()
    assert info.value.value == MIB + 1


def test_attachment_limit_is_cumulative_over_chunks() -> None:
    limits = DimeLimits(max_attachment=10)
    first = payload_record(b"123456", me=False, cf=True)
    second_header = struct.pack(">BBHHHI", 0x0A, 0x00, 0, 0, 0, 5)
    reader = DimeReader(limits)
    reader.receive_data(envelope_record() + first + second_header)
    with raises_dime(Code.ATTACHMENT_TOO_LARGE) as info:
        while reader.next_event() is not NEED_DATA:
            pass
    assert info.value.value == 11


@pytest.mark.parametrize(
    ("record", "error", "limit_name"),
    [
        (payload_record(type_=b"t" * 257), Code.TYPE_TOO_LONG, "max_type_length"),
        (payload_record(id_=b"i" * 257), Code.ID_TOO_LONG, "max_id_length"),
        (payload_record(options=b"o" * 257), Code.OPTIONS_TOO_LONG, "max_options_length"),
    ],
)
def test_field_length_limits(record: bytes, error: Code, limit_name: str) -> None:
    with raises_dime(error) as info:
        read_message(envelope_record() + record)
    assert (info.value.limit_name, info.value.value, info.value.limit) == (limit_name, 257, 256)


def test_too_many_records_default_limit() -> None:
    # 4097 physical records: an envelope, then 4096 empty chunks (all legal otherwise).
    continuation = struct.pack(">BBHHHI", 0x09, 0x00, 0, 0, 0, 0)
    message = (
        envelope_record()
        + payload_record(b"", me=False, cf=True)
        + continuation * 4094
        + struct.pack(">BBHHHI", 0x0A, 0x00, 0, 0, 0, 0)
    )
    with raises_dime(Code.TOO_MANY_RECORDS) as info:
        read_message(message)
    assert (info.value.value, info.value.limit) == (4097, 4096)
    assert len(read_message(message, DimeLimits(max_records=4097))) == 2


# ----------------------------------------------------------- framing errors

GOOD = envelope_record() + payload_record()


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (raw_record(mb=True, me=True, type_t=3, version=0), Code.VERSION),
        (raw_record(mb=True, me=True, type_t=3, version=2), Code.VERSION),
        (raw_record(mb=True, me=True, type_t=3, reserved=4), Code.RESERVED_BITS),
        (envelope_record(mb=False) + payload_record(), Code.MESSAGE_BEGIN),
        (envelope_record() + payload_record(mb=True), Code.MESSAGE_BEGIN),
        (envelope_record(), Code.MISSING_MESSAGE_END),
        (envelope_record() + payload_record(me=False), Code.MISSING_MESSAGE_END),
        (GOOD + b"\x01", Code.TRAILING_DATA),
        (GOOD + b"\0\0" + GOOD, Code.TRAILING_DATA),
        (envelope_record(me=True) + payload_record(), Code.TRAILING_DATA),
        (envelope_record(type_t=0), Code.TYPE_FORMAT),
        (envelope_record(type_t=5), Code.TYPE_FORMAT),
        (envelope_record(type_t=15), Code.TYPE_FORMAT),
        (envelope_record(type_t=3) + payload_record(), Code.TYPE_FORMAT),
        (envelope_record(type_t=4) + payload_record(), Code.TYPE_FORMAT),
        (envelope_record(type_t=4, type_=b"", data=b"x") + payload_record(), Code.TYPE_FORMAT),
        (envelope_record() + payload_record(type_=b""), Code.TYPE_FORMAT),
        (envelope_record(type_=b"\xff\xfe") + payload_record(), Code.FIELD),
        (envelope_record() + payload_record(id_=b"\xc3"), Code.FIELD),
        (envelope_record(options=b"o", data=b"") + payload_record(), None),
        (envelope_record(data=b"abcde", data_pad=1) + payload_record(), Code.PADDING),
        (envelope_record(id_=b"abc") + payload_record(), None),
        (b"", Code.TRUNCATED),
        (GOOD[:5], Code.TRUNCATED),
        (GOOD[:20], Code.TRUNCATED),
        (GOOD[: len(envelope_record()) - 1], Code.TRUNCATED),
        (GOOD[:-1], Code.TRUNCATED),
    ],
)
def test_hostile_message(message: bytes, error: Code | None) -> None:
    if error is None:  # control cases: the same shape without the fault reads fine
        assert len(read_message(message)) == 2
        return
    with raises_dime(error) as info:
        read_message(message)
    assert isinstance(info.value, ProtocolError)
    assert str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("field", ["options", "id_", "type_"])
def test_non_zero_padding_of_any_field(field: str) -> None:
    values = {"options": b"o", "id_": b"i", "type_": b"application/x"}
    record = bytearray(payload_record(**{field: values[field]}))
    # The padding byte right after the field: header, then earlier fields.
    order = ["options", "id_", "type_"]
    lengths = {"options": 0, "id_": 2, "type_": len(BZ2)} | {field: len(values[field])}
    position = 12
    for name in order:
        if name == field:
            position += lengths[name]
            break
        position += lengths[name] + (-lengths[name] % 4)
    record[position] = 0x20
    with raises_dime(Code.PADDING):
        read_message(envelope_record() + bytes(record))


def test_trailing_error_names_the_offset_of_the_first_non_zero_byte() -> None:
    with raises_dime(Code.TRAILING_DATA, match=f"0x0c at offset {len(GOOD) + 2}"):
        read_message(GOOD + b"\0\0" + GOOD)


def test_every_cut_of_a_valid_message_is_reported() -> None:
    boundary = len(envelope_record())
    for cut in range(len(GOOD)):
        expected = Code.MISSING_MESSAGE_END if cut == boundary else Code.TRUNCATED
        with raises_dime(expected):
            read_message(GOOD[:cut])


# ------------------------------------------------------------ chunk rules

FIRST_CHUNK = payload_record(b"abcd", me=False, cf=True)


@pytest.mark.parametrize(
    ("continuation", "error"),
    [
        (raw_record(me=True, type_t=1, data=b"ef"), Code.CHUNK),
        (raw_record(me=True, type_t=0, id_=b"x", data=b"ef"), Code.CHUNK),
        (raw_record(me=True, type_t=0, type_=b"x/y", data=b"ef"), Code.CHUNK),
        (raw_record(me=True, mb=True, type_t=0, data=b"ef"), Code.MESSAGE_BEGIN),
        (raw_record(me=True, cf=True, type_t=0, data=b"ef"), Code.CHUNK),
        (raw_record(type_t=0, data=b"ef"), Code.MISSING_MESSAGE_END),
        (b"", Code.TRUNCATED),
        (raw_record(me=True, type_t=0, data=b"ef"), None),
        (raw_record(me=True, type_t=0, options=b"opt", data=b"ef"), None),
    ],
)
def test_chunk_rules(continuation: bytes, error: Code | None) -> None:
    message = envelope_record() + FIRST_CHUNK + continuation
    if error is None:
        assert read_message(message)[1].data == b"abcdef"
        return
    with raises_dime(error):
        read_message(message)


def test_me_on_a_chunk_with_cf_is_refused() -> None:
    with raises_dime(Code.CHUNK, match="ME set"):
        read_message(envelope_record() + payload_record(cf=True))


# ------------------------------------------------------------- misuse


def test_the_reader_is_dead_after_an_error() -> None:
    reader = DimeReader()
    reader.receive_data(envelope_record(version=3))
    with raises_dime(Code.VERSION):
        reader.next_event()
    with raises_dime(Code.STATE, match="already failed"):
        reader.next_event()


def test_data_after_end_of_input_is_a_usage_error() -> None:
    reader = DimeReader()
    reader.receive_data(b"")
    reader.receive_data(b"")  # repeating end of input is harmless
    with raises_dime(Code.STATE):
        reader.receive_data(b"x")


def test_message_complete_flag() -> None:
    reader = DimeReader()
    reader.receive_data(GOOD)
    while not isinstance(reader.next_event(), MessageEnd):
        assert not reader.message_complete
    assert reader.message_complete
