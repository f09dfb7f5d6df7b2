"""The 12-byte DIME record header and the DimeLimits value object."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.protocol.dime import (
    HEADER_SIZE,
    DimeLimits,
    RecordHeader,
    TypeFormat,
    padded_length,
    padding_length,
)
from concentrador.protocol.errors import ProtocolError
from tests.protocol.dime_expect import Code, raises_dime


def test_header_encodes_fields_at_their_draft_positions() -> None:
    header = RecordHeader(
        message_begin=True,
        message_end=False,
        chunked=True,
        type_format=TypeFormat.ABSOLUTE_URI,
        options_length=0x0102,
        id_length=0x0304,
        type_length=0x0506,
        data_length=0x0708090A,
    )
    # 0x08 = VERSION 1 in the top 5 bits; | MB(0x04) | CF(0x01) = 0x0D.
    # 0x20 = TYPE_T 2 in the high nibble, reserved nibble 0.
    assert header.encode() == bytes.fromhex("0d20 0102 0304 0506 0708090a")


@given(
    mb=st.booleans(),
    me=st.booleans(),
    cf=st.booleans(),
    type_format=st.sampled_from(TypeFormat),
    options_length=st.integers(0, 0xFFFF),
    id_length=st.integers(0, 0xFFFF),
    type_length=st.integers(0, 0xFFFF),
    data_length=st.integers(0, 0xFFFFFFFF),
)
def test_header_round_trips(
    mb: bool,
    me: bool,
    cf: bool,
    type_format: TypeFormat,
    options_length: int,
    id_length: int,
    type_length: int,
    data_length: int,
) -> None:
    header = RecordHeader(
        mb, me, cf, type_format, options_length, id_length, type_length, data_length
    )
    raw = header.encode()
    assert len(raw) == HEADER_SIZE
    assert RecordHeader.decode(raw) == header


@pytest.mark.parametrize("version", [0, 2, 3, 31])
def test_decode_rejects_versions_other_than_1(version: int) -> None:
    raw = struct.pack(">BBHHHI", version << 3 | 0x06, 0x10, 0, 0, 0, 0)
    with raises_dime(Code.VERSION, match=f"VERSION is {version}"):
        RecordHeader.decode(raw, offset=40)


@pytest.mark.parametrize("nibble", [1, 8, 15])
def test_decode_rejects_reserved_bits(nibble: int) -> None:
    raw = struct.pack(">BBHHHI", 0x0E, 0x10 | nibble, 0, 0, 0, 0)
    with raises_dime(Code.RESERVED_BITS):
        RecordHeader.decode(raw)


@pytest.mark.parametrize("type_t", range(5, 16))
def test_decode_rejects_undefined_type_t(type_t: int) -> None:
    raw = struct.pack(">BBHHHI", 0x0E, type_t << 4, 0, 0, 0, 0)
    with raises_dime(Code.TYPE_FORMAT, match=f"0x{type_t:02x}"):
        RecordHeader.decode(raw)


def test_encode_refuses_lengths_that_do_not_fit() -> None:
    with raises_dime(Code.CONFIGURATION, match="DATA_LENGTH"):
        RecordHeader(False, False, False, TypeFormat.NONE, 0, 0, 0, 2**32).encode()
    with raises_dime(Code.CONFIGURATION, match="TYPE_LENGTH"):
        RecordHeader(False, False, False, TypeFormat.NONE, 0, 0, 0x10000, 0).encode()


def test_record_length_counts_header_fields_and_padding() -> None:
    header = RecordHeader(True, True, False, TypeFormat.MEDIA_TYPE, 1, 5, 19, 9)
    assert header.fields_length == 4 + 8 + 20
    assert header.record_length == 12 + 32 + 12


@given(st.integers(0, 10**9))
def test_padding_reaches_the_next_multiple_of_four(length: int) -> None:
    assert 0 <= padding_length(length) <= 3
    assert padded_length(length) % 4 == 0
    assert padded_length(length) - length == padding_length(length)


def test_limits_defaults_match_cpcscc() -> None:
    limits = DimeLimits()
    assert limits.max_envelope == 1_048_576
    assert limits.max_attachment == 8_388_608
    assert (limits.max_type_length, limits.max_id_length, limits.max_options_length) == (
        256,
        256,
        256,
    )
    assert limits.max_records == 4096


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_envelope": -1},
        {"max_attachment": 1.5},
        {"max_records": 0},
        {"max_type_length": 0x10000},
        {"max_id_length": True},
    ],
)
def test_limits_refuse_nonsense(kwargs: dict[str, object]) -> None:
    with raises_dime(Code.CONFIGURATION) as info:
        DimeLimits(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ProtocolError)
    assert isinstance(info.value, ValueError)
