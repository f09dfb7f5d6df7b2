"""RequestReframer (pure): Axis 1.x's short DIME Content-Length, re-framed as HTTP chunks.

The output is decoded here with an independent little HTTP/1.x reader, so
every property is checked on what aiohttp's parser would see: the head, the
body it would deliver, and the bytes it would take for the next request.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.protocol.dime import (
    HEADER_SIZE,
    DimeLimits,
    RecordHeader,
    TypeFormat,
    encode_message,
)
from concentrador.server.axis.reframer import (
    DECLARED_LENGTH_HEADER,
    TOO_LONG_REASON,
    BodyCut,
    ContentLengthTolerated,
    RequestReframer,
    RequestRefused,
)

ENVELOPE = b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"/>'
NEXT = b"GET /cpcscc?wsdl HTTP/1.1\r\nHost: localhost\r\n\r\n"
splits = st.lists(st.integers(0, 5000), max_size=10)


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def feed(reframer: RequestReframer, data: bytes, cuts: list[int]) -> bytes:
    return b"".join(reframer.receive(piece) for piece in pieces(data, cuts))


def dechunk(data: bytes) -> tuple[bytes, bytes]:
    """(body, rest) of an HTTP chunked body; asserts it is well formed and ends."""
    body = b""
    while True:
        size_line, crlf, data = data.partition(b"\r\n")
        assert crlf, "chunked body does not end"
        size = int(size_line, 16)
        if size == 0:
            assert data.startswith(b"\r\n")
            return body, data[2:]
        assert data[size : size + 2] == b"\r\n"
        body += data[:size]
        data = data[size + 2 :]


def read_request(data: bytes) -> tuple[bytes, dict[bytes, list[bytes]], bytes, bytes]:
    """(head, headers by lower-case name, body, rest) as an HTTP/1.x parser reads them."""
    head, sep, after = data.partition(b"\r\n\r\n")
    assert sep
    headers: dict[bytes, list[bytes]] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.lower(), []).append(value.strip())
    if b"transfer-encoding" in headers:
        assert headers[b"transfer-encoding"] == [b"chunked"]
        assert b"content-length" not in headers
        body, rest = dechunk(after)
    else:
        length = int(headers.get(b"content-length", [b"0"])[0])
        body, rest = after[:length], after[length:]
    return head, headers, body, rest


def dime_head(length: int | bytes, *, version: bytes = b"1.0", extra: bytes = b"") -> bytes:
    length = str(length).encode() if isinstance(length, int) else length
    return (
        b"POST /cpcscc HTTP/" + version + b"\r\nContent-Type: application/dime\r\n"
        b"Accept: application/soap+xml, application/dime, multipart/related, text/*\r\n"
        b"User-Agent: Axis/1.4\r\nHost: localhost:8443\r\n" + extra + b'SOAPAction: "enviarFichero"'
        b"\r\nContent-Length: " + length + b"\r\n\r\n"
    )


def axis_message(payload_size: int, chunk: int) -> tuple[bytes, int, int]:
    """(message, physical records, the Content-Length Axis 1.x would declare)."""
    payload = (bytes(range(256)) * (payload_size // 256 + 1))[:payload_size]
    message = encode_message(ENVELOPE, payload, chunk_size=chunk)
    chunks = max(1, -(-payload_size // chunk))
    records = 1 + chunks
    return message, records, len(message) - HEADER_SIZE * (records - 2)


@given(st.integers(0, 600), st.integers(1, 80), st.sampled_from([b"1.0", b"1.1"]), splits)
def test_axis_short_content_length_is_read_to_the_dime_end(
    payload_size: int, chunk: int, version: bytes, cuts: list[int]
) -> None:
    message, records, declared = axis_message(payload_size, chunk)
    original = dime_head(declared, version=version)
    reframer = RequestReframer()
    out = feed(reframer, original + message + NEXT, cuts)
    head, headers, body, rest = read_request(out)
    assert body == message
    assert rest == NEXT  # the next request is untouched
    assert headers[DECLARED_LENGTH_HEADER.lower().encode()] == [str(declared).encode()]
    # Every other header line is kept, in order.
    kept = [line for line in original.split(b"\r\n")[:-2] if not line.startswith(b"Content-Len")]
    assert head.split(b"\r\n")[: len(kept)] == kept
    expected = (
        []
        if declared == len(message)
        else [ContentLengthTolerated(declared, len(message), records)]
    )
    assert reframer.events() == expected
    assert reframer.events() == []  # reported once
    assert not reframer.awaiting_surplus and not reframer.passing_through


@given(st.integers(0, 300), st.integers(1, 300), st.binary(max_size=20), splits)
def test_declared_length_covering_the_message_is_kept(
    payload_size: int, chunk: int, trailer: bytes, cuts: list[int]
) -> None:
    message, _, _ = axis_message(payload_size, chunk)
    body_sent = message + trailer  # declared correct, or too long with trailing bytes
    reframer = RequestReframer()
    out = feed(reframer, dime_head(len(body_sent), version=b"1.1") + body_sent + NEXT, cuts)
    _, _, body, rest = read_request(out)
    assert (body, rest) == (body_sent, NEXT)
    assert reframer.events() == []


def test_short_body_that_axis_cannot_explain_ends_at_its_content_length() -> None:
    # Two records: Axis counts both, so no byte past Content-Length is taken.
    message = encode_message(ENVELOPE, bytes(500))
    declared = len(message) - 12
    reframer = RequestReframer()
    request, refused = reframer.receive_requests(dime_head(declared) + message + NEXT)
    assert isinstance(request, bytes)
    _, _, body, rest = read_request(request)
    assert body == message[:declared] and rest == b""
    # What follows is no request line: refused (400, then the connection closes).
    assert isinstance(refused, RequestRefused)
    assert refused.reason.startswith("malformed request method")
    assert reframer.events() == [] and not reframer.awaiting_surplus


PLAIN_REQUESTS = [
    b"GET /cpcscc?wsdl HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"POST /x HTTP/1.1\r\nContent-Type: text/xml\r\nContent-Length: 11\r\n\r\n<a>body</a>",
    b"POST /x HTTP/1.0\r\ncontent-type: text/xml; charset=utf-8\r\ncontent-length: 3\r\n\r\nabc",
    b"POST /x HTTP/1.0\r\nContent-Type: application/dime\r\n\r\n",  # no length: no body
    b"GET /x HTTP/1.1\r\nContent-Type: application/dime\r\nContent-Length: 2\r\n\r\nab",
    b"\r\n",  # stray empty line between requests
]
LAST_REQUESTS = [
    b"",
    b"POST /x HTTP/1.1\r\nContent-Type: application/dime\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
    b"POST /x HTTP/1.1\nContent-Type: application/dime\nContent-Length: 1\n\nA",
    dime_head(b"12", extra=b"Transfer-Encoding: chunked\r\n") + b"c\r\nxxxxxxxxxxxx\r\n0\r\n\r\n",
    dime_head(b"12, 12") + b"x" * 12,
    dime_head(b"+12") + b"x" * 12,
    dime_head(b"9" * 40) + b"x" * 12,
    b"POST /x HTTP/1.1\r\n Folded: header\r\nContent-Type: application/dime\r\n"
    b"Content-Length: 1\r\n\r\nA",
]


@given(
    st.lists(st.sampled_from(PLAIN_REQUESTS), max_size=6),
    st.sampled_from(LAST_REQUESTS),
    splits,
)
def test_other_requests_pass_through_byte_for_byte(
    requests: list[bytes], last: bytes, cuts: list[int]
) -> None:
    # After the last one (chunked, upgrade, or a head we do not follow) even an
    # Axis-style DIME request is left alone: we no longer know where requests start.
    message, _, declared = axis_message(300, 64)
    stream = b"".join(requests) + last + (dime_head(declared) + message if last else b"")
    reframer = RequestReframer()
    assert feed(reframer, stream, cuts) == stream
    assert reframer.events() == []


def test_oversized_head_is_left_to_the_parser() -> None:
    reframer = RequestReframer(max_head=1024)
    head = dime_head(10, extra=b"X-Junk: " + b"j" * 2000 + b"\r\n")
    assert reframer.receive(head[:1500]) == head[:1500]
    assert reframer.passing_through
    assert reframer.receive(head[1500:] + bytes(10)) == head[1500:] + bytes(10)


def test_head_is_held_until_complete() -> None:
    reframer = RequestReframer()
    head = dime_head(0)
    assert reframer.receive(head[:-1]) == b""
    out = reframer.receive(head[-1:])
    assert out.endswith(
        b"Transfer-Encoding: chunked\r\n"
        + DECLARED_LENGTH_HEADER.encode()
        + b": 0\r\n\r\n0\r\n\r\n"
    )


def test_media_type_parameters_and_case_are_ignored() -> None:
    head = dime_head(4).replace(b"application/dime", b"Application/DIME; charset=binary")
    _, headers, body, _ = read_request(RequestReframer().receive(head + b"abcd"))
    assert body == b"abcd" and headers[b"transfer-encoding"] == [b"chunked"]


def test_peer_sent_marker_is_replaced() -> None:
    head = dime_head(4, extra=DECLARED_LENGTH_HEADER.encode() + b": 999\r\n")
    _, headers, _, _ = read_request(RequestReframer().receive(head + b"abcd"))
    assert headers[DECLARED_LENGTH_HEADER.lower().encode()] == [b"4"]


# ---------------------------------------------------------------- hostile


def record(
    data: bytes = b"",
    *,
    begin: bool = False,
    end: bool = False,
    chunked: bool = False,
    type_format: TypeFormat = TypeFormat.UNCHANGED,
    type_: bytes = b"",
    data_length: int | None = None,
) -> bytes:
    header = RecordHeader(
        begin,
        end,
        chunked,
        type_format,
        0,
        0,
        len(type_),
        len(data) if data_length is None else data_length,
    )
    return header.encode() + type_ + bytes(-len(type_) % 4) + data + bytes(-len(data) % 4)


@pytest.mark.parametrize("small_chunks", [1, 7])
def test_never_ending_body_is_cut_at_twelve_bytes_per_record(small_chunks: int) -> None:
    # Envelope, some 4-byte chunks, then a last chunk announcing 4 MiB; its
    # Content-Length ends right after that header and the bytes never stop.
    head_records = record(
        ENVELOPE,
        begin=True,
        type_format=TypeFormat.ABSOLUTE_URI,
        type_=b"http://schemas.xmlsoap.org/soap/envelope/",
    )
    head_records += record(
        b"BZh9", chunked=True, type_format=TypeFormat.MEDIA_TYPE, type_=b"application/x-bzip2"
    )
    head_records += record(b"abcd", chunked=True) * (small_chunks - 1)
    head_records += record(end=True, data_length=4 << 20)[:HEADER_SIZE]
    declared = len(head_records)
    stream = head_records + bytes(100_000)
    reframer = RequestReframer()
    _, _, body, rest = read_request(reframer.receive(dime_head(declared) + stream))
    # Axis would have left out 12 bytes per continuation chunk header: that much, no more.
    assert len(body) == declared + HEADER_SIZE * small_chunks
    assert body == stream[: len(body)]
    assert rest == b""  # the rest of a refused body never reaches the parser
    assert reframer.discarding and reframer.receive(b"GET / HTTP/1.1\r\n\r\n") == b""
    assert reframer.events() == [BodyCut(declared, len(body), TOO_LONG_REASON)]


@given(st.integers(3, 40), st.integers(1, 2000), splits)
def test_surplus_never_exceeds_the_records_allowance(
    max_records: int, declared: int, cuts: list[int]
) -> None:
    # Tiny records forever: each header raises the allowance by 12 bytes,
    # but the record limit stops it.
    record = b"\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04ABCD"  # 16 bytes, TYPE_T 0
    first = b"\x0c\x00" + record[2:]
    stream = first + record * 5000
    reframer = RequestReframer(DimeLimits(max_records=max_records))
    out = feed(reframer, dime_head(declared) + stream, cuts)
    _, _, body, rest = read_request(out)
    assert declared <= len(body) <= declared + HEADER_SIZE * max_records
    assert body == stream[: len(body)]
    # Cut (when the walk got past the Content-Length; the rest is dropped) or
    # ended there (when the record limit was hit inside it): never read on.
    if reframer.events() == []:
        assert len(body) == declared and rest == stream[declared:]
    else:
        assert rest == b"" and reframer.discarding


@pytest.mark.parametrize("declared", [16 * 8, 16 * 10])
def test_record_limit_reached_past_the_length_ends_the_body_there(declared: int) -> None:
    tiny = record(b"abcd", chunked=True)  # 16 bytes each
    stream = record(b"abcd", begin=True, chunked=True, type_format=TypeFormat.UNKNOWN)
    stream += tiny * 100
    reframer = RequestReframer(DimeLimits(max_records=10))
    _, _, body, rest = read_request(reframer.receive(dime_head(declared) + stream))
    # Past its Content-Length the walk may go on up to the 10th record, not an 11th.
    assert body == stream[: 16 * 10] and rest == b""
    (event,) = reframer.events()
    assert isinstance(event, BodyCut) and "max_records=10" in event.reason


def test_non_dime_bytes_past_the_length_end_the_body() -> None:
    message, _, declared = axis_message(1000, 100)
    truncated = message[: declared - 40]  # incomplete within its declared length...
    stream = truncated + b"\x00" * 40 + b"POST / HTTP/1.1\r\n\r\n"  # ...then not DIME
    reframer = RequestReframer()
    _, _, body, rest = read_request(reframer.receive(dime_head(declared) + stream))
    assert len(body) > declared and body == stream[: len(body)] and rest == b""
    (event,) = reframer.events()
    assert isinstance(event, BodyCut) and "VERSION" in event.reason


def test_quiet_peer_gets_its_body_ended_by_cut() -> None:
    message, records, declared = axis_message(1000, 100)
    sent = message[:declared]  # a client that counted like Axis but sends no more
    reframer = RequestReframer()
    out = reframer.receive(dime_head(declared) + sent)
    assert reframer.awaiting_surplus
    assert reframer.events() == []
    ending = reframer.cut()
    _, _, body, rest = read_request(out + ending)
    assert (body, rest) == (sent, b"")
    assert reframer.events() == [BodyCut(declared, declared, "no more bytes arrived")]
    assert reframer.cut() == b""
    assert records > 2
    # The quiet peer was waiting for its answer: what it sends next is a new request.
    assert reframer.receive(NEXT) == NEXT
