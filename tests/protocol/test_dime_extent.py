"""DimeExtentTracker: where a DIME message ends, from its headers alone."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.protocol.dime import (
    HEADER_SIZE,
    DimeError,
    DimeLimits,
    RecordHeader,
    TypeFormat,
    encode_message,
)
from concentrador.protocol.dime.extent import DimeExtentTracker
from concentrador.protocol.errors import ProtocolError
from tests.protocol.dime_expect import Code, raises_dime

ENVELOPE = b"<soapenv:Envelope/>"


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, int]:
    """A valid CPCSCC-shaped message and its number of physical records."""
    payload = draw(st.binary(max_size=300))
    chunk = draw(st.none() | st.integers(1, 64))
    message = encode_message(
        draw(st.binary(max_size=40)) or ENVELOPE,
        payload,
        payload_id=draw(st.sampled_from(["", "A1", "0123456789ABCDEF0123456789ABCDEF"])),
        chunk_size=chunk,
    )
    chunks = 1 if chunk is None or len(payload) <= chunk else -(-len(payload) // chunk)
    return message, 1 + chunks


@given(messages(), st.lists(st.integers(0, 2000), max_size=8), st.binary(max_size=30))
def test_message_end_is_found_wherever_the_stream_is_split(
    sample: tuple[bytes, int], cuts: list[int], trailer: bytes
) -> None:
    message, records = sample
    tracker = DimeExtentTracker()
    taken = 0
    for piece in pieces(message + trailer, cuts):
        assert not tracker.complete
        taken += tracker.feed(piece)
        if taken == len(message):
            break
    # Exactly the message is taken, never a byte after its ME record.
    assert taken == len(message) == tracker.received
    assert tracker.complete and tracker.records == records
    assert tracker.feed(trailer + b"more") == 0


@given(messages(), st.data())
def test_every_proper_prefix_is_incomplete(sample: tuple[bytes, int], data: st.DataObject) -> None:
    message, _ = sample
    cut = data.draw(st.integers(0, len(message) - 1))
    tracker = DimeExtentTracker()
    assert tracker.feed(message[:cut]) == cut
    assert not tracker.complete


def test_axis_shortfall_is_visible_as_missing_record_bytes() -> None:
    # Axis sends 2.5 MiB as 3 chunks; cut where its Content-Length would end.
    payload = bytes(2 * 1024 * 1024 + 512 * 1024)
    message = encode_message(ENVELOPE, payload, chunk_size=1024 * 1024)
    tracker = DimeExtentTracker()
    tracker.feed(message[: len(message) - 2 * HEADER_SIZE])
    assert tracker.records == 4
    assert not tracker.in_header and not tracker.complete
    assert tracker.last_record_ends_message
    assert tracker.record_missing == 2 * HEADER_SIZE


def test_boundary_and_partial_header_states() -> None:
    message = encode_message(ENVELOPE, b"abcd", chunk_size=2)
    tracker = DimeExtentTracker()
    assert tracker.at_record_start and tracker.records == 0
    first = RecordHeader.decode(message[:HEADER_SIZE])
    tracker.feed(message[:5])
    assert tracker.in_header and tracker.records == 1 and not tracker.at_record_start
    tracker.feed(message[5 : first.record_length])
    assert tracker.at_record_start and tracker.record_missing == 0
    tracker.feed(message[first.record_length : first.record_length + 1])
    assert tracker.records == 2 and not tracker.at_record_start


def test_garbage_header_raises_a_protocol_error_and_spends_the_tracker() -> None:
    tracker = DimeExtentTracker()
    with raises_dime(Code.VERSION) as caught:
        tracker.feed(b"POST / HTTP/1.1\r\n")
    assert isinstance(caught.value, ProtocolError)
    assert tracker.failed and tracker.received == HEADER_SIZE
    with pytest.raises(RuntimeError):
        tracker.feed(b"x")


def test_record_count_is_bounded() -> None:
    message = encode_message(ENVELOPE, bytes(40), chunk_size=4)  # 1 + 10 records
    tracker = DimeExtentTracker(DimeLimits(max_records=5))
    with raises_dime(Code.TOO_MANY_RECORDS):
        tracker.feed(message)
    assert tracker.failed and tracker.records == 5


@given(st.integers(0, 3), st.integers(0, 70_000), st.integers(0, 0xFFFFFFFF))
def test_skips_fields_and_payload_by_their_padded_lengths(
    id_length: int, type_length: int, data_length: int
) -> None:
    header = RecordHeader(
        message_begin=True,
        message_end=True,
        chunked=False,
        type_format=TypeFormat.UNKNOWN,
        options_length=0,
        id_length=id_length,
        type_length=min(type_length, 0xFFFF),
        data_length=data_length,
    )
    tracker = DimeExtentTracker()
    tracker.feed(header.encode())
    assert tracker.record_missing == header.record_length - HEADER_SIZE
    assert not tracker.complete or header.record_length == HEADER_SIZE


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=5))
def test_hostile_bytes_only_raise_dime_errors(data: bytes, cuts: list[int]) -> None:
    tracker = DimeExtentTracker(DimeLimits(max_records=8))
    try:
        for piece in pieces(data, cuts):
            tracker.feed(piece)
    except DimeError:
        assert tracker.failed
    else:
        assert tracker.received <= len(data)
