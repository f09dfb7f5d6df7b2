"""Property tests: whatever the writer produces, the reader gives back, however
the bytes are cut on the way (down to 1-byte feeds)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from concentrador.protocol.dime import (
    BZIP2_MEDIA_TYPE,
    NEED_DATA,
    SOAP_ENVELOPE_TYPE,
    DimeMessageWriter,
    DimeReader,
    MessageEnd,
    RecordData,
    RecordEnd,
    RecordStart,
    TypeFormat,
    encode_message,
)


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given positions (any order, repeats allowed)."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def stream_read(pieces: list[bytes]) -> tuple[list[object], list[bytes]]:
    """Feed ``pieces`` one by one; return the non-data events and each record's payload."""
    reader = DimeReader()
    others: list[object] = []
    payloads: list[bytearray] = []
    for piece in [*pieces, b""]:
        reader.receive_data(piece)
        while (event := reader.next_event()) is not NEED_DATA:
            if isinstance(event, RecordData):
                assert len(event.data) > 0
                payloads[event.index] += event.data
            else:
                if isinstance(event, RecordStart):
                    payloads.append(bytearray())
                others.append(event)
    return others, [bytes(p) for p in payloads]


chunk_sizes = st.none() | st.integers(1, 600)
ids = st.text(max_size=40)


@settings(deadline=None)
@given(
    envelope=st.binary(max_size=300),
    payload=st.binary(max_size=3000),
    chunk_size=chunk_sizes,
    payload_id=ids,
    write_cuts=st.lists(st.integers(0, 3000), max_size=8),
    read_cuts=st.lists(st.integers(0, 4000), max_size=30),
)
def test_write_then_read(
    envelope: bytes,
    payload: bytes,
    chunk_size: int | None,
    payload_id: str,
    write_cuts: list[int],
    read_cuts: list[int],
) -> None:
    writer = DimeMessageWriter(envelope, len(payload), payload_id=payload_id, chunk_size=chunk_size)
    parts = [writer.begin()]
    for piece in cut(payload, write_cuts):
        parts.extend(writer.write(piece))
    parts.append(writer.end())
    message = b"".join(parts)
    assert len(message) == writer.total_length
    # Streaming the payload in pieces gives the same bytes as writing it at once.
    assert message == encode_message(
        envelope, payload, payload_id=payload_id, chunk_size=chunk_size
    )

    others, payloads = stream_read(cut(message, read_cuts))
    assert payloads == [envelope, payload]
    assert others == [
        RecordStart(0, TypeFormat.ABSOLUTE_URI, SOAP_ENVELOPE_TYPE, writer_envelope_id(message)),
        RecordEnd(0, len(envelope)),
        RecordStart(1, TypeFormat.MEDIA_TYPE, BZIP2_MEDIA_TYPE, payload_id),
        RecordEnd(1, len(payload)),
        MessageEnd(),
    ]


def writer_envelope_id(message: bytes) -> str:
    id_length = int.from_bytes(message[4:6], "big")
    return message[12 : 12 + id_length].decode()


@settings(deadline=None, max_examples=50)
@given(
    envelope=st.binary(max_size=40),
    payload=st.binary(max_size=400),
    chunk_size=chunk_sizes,
)
def test_one_byte_feeds(envelope: bytes, payload: bytes, chunk_size: int | None) -> None:
    message = encode_message(envelope, payload, payload_id="X", chunk_size=chunk_size)
    others, payloads = stream_read([message[i : i + 1] for i in range(len(message))])
    assert payloads == [envelope, payload]
    assert others[-1] == MessageEnd()
    assert others[-2] == RecordEnd(1, len(payload))
