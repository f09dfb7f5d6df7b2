"""Fuzz target: hostile bytes must only ever raise ProtocolError subclasses.

Inputs are valid messages (chunked or not) mutated by byte flips,
truncation, splicing and insertion, plus raw random bytes, fed in random
pieces. When the reader does accept an input, its events must still be
consistent (every RecordEnd length equals the data emitted for it, and no
more payload comes out than went in).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concentrador.protocol.dime import (
    NEED_DATA,
    DimeLimits,
    DimeReader,
    MessageEnd,
    RecordData,
    RecordEnd,
    RecordStart,
    encode_message,
)
from concentrador.protocol.errors import ProtocolError


@st.composite
def valid_messages(draw: st.DrawFn) -> bytes:
    return encode_message(
        draw(st.binary(max_size=64)),
        draw(st.binary(max_size=256)),
        payload_id=draw(st.sampled_from(["", "A1", "0123456789ABCDEF0123456789ABCDEF"])),
        chunk_size=draw(st.none() | st.integers(1, 64)),
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_messages()))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert", "delete", "set"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "set" and data:
            # Header-sized words are where lengths live: hit them with extremes.
            data[position : position + 4] = draw(
                st.sampled_from([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\x7f\xff\xff\xff"])
            )
        elif kind == "truncate":
            del data[position:]
        elif kind == "splice":
            other = draw(valid_messages())
            data[position:] = other[draw(st.integers(0, len(other))) :]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 16))]
    return bytes(data)


hostile = mutated() | st.binary(max_size=200) | st.binary(max_size=200).map(lambda b: b"\x0c" + b)
limits = st.sampled_from(
    [DimeLimits(), DimeLimits(max_envelope=16, max_attachment=32, max_records=5)]
)


def check(data: bytes, cuts: list[int], reader_limits: DimeLimits) -> None:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    reader = DimeReader(reader_limits)
    emitted: dict[int, int] = {}
    total = 0
    try:
        for a, b in [*itertools.pairwise(points), (len(data), len(data))]:
            reader.receive_data(data[a:b])
            while (event := reader.next_event()) is not NEED_DATA:
                if isinstance(event, RecordStart):
                    assert event.index == len(emitted)
                    emitted[event.index] = 0
                elif isinstance(event, RecordData):
                    emitted[event.index] += len(event.data)
                    total += len(event.data)
                elif isinstance(event, RecordEnd):
                    assert event.length == emitted[event.index]
                else:
                    assert isinstance(event, MessageEnd)
    except ProtocolError as error:
        message = str(error)
        assert message and "\n" not in message
        return
    assert reader.message_complete
    assert total <= len(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile, cuts=st.lists(st.integers(0, 1000), max_size=6), reader_limits=limits)
def test_fuzz_only_protocol_errors(data: bytes, cuts: list[int], reader_limits: DimeLimits) -> None:
    check(data, cuts, reader_limits)


@pytest.mark.slow
@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile, cuts=st.lists(st.integers(0, 1000), max_size=12), reader_limits=limits)
def test_fuzz_only_protocol_errors_long(
    data: bytes, cuts: list[int], reader_limits: DimeLimits
) -> None:
    check(data, cuts, reader_limits)
