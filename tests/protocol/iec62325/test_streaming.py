"""CompressedSplitter and the incremental base64 codecs: any chunking, strict refusals."""

from __future__ import annotations

import base64
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.iec62325.signature import PLACEHOLDER
from concentrador.protocol.iec62325.streaming import (
    Base64Decoder,
    Base64Encoder,
    Base64Error,
    CompressedSplitter,
    StreamingError,
)

from .signing_fixtures import put_message

P = PLACEHOLDER.encode()
CONTENT = base64.b64encode(bytes(range(256)) * 3)


def split(body: bytes, cuts: list[int] | None = None, **limits: int) -> tuple[bytes, bytes]:
    """(xml, content) after feeding ``body`` cut at ``cuts``."""
    splitter = CompressedSplitter(
        limits.get("max_xml", 1 << 20), limits.get("max_content", 1 << 24)
    )
    positions = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts or [])})
    pieces: list[bytes] = []
    for start, end in pairwise(positions):
        pieces += splitter.feed(body[start:end])
    xml = splitter.close()
    assert splitter.content_length == sum(map(len, pieces))
    return xml, b"".join(pieces)


def test_the_content_is_cut_out_and_the_placeholder_put_in() -> None:
    body = put_message(CONTENT.decode(), wrapped=True)
    xml, content = split(body)
    assert content == CONTENT
    assert xml == body.replace(CONTENT, P)


def test_a_body_without_compressed_is_all_xml() -> None:
    body = put_message(wrapped=True).replace(b"msg:Compressed", b"msg:Other")
    splitter = CompressedSplitter(1 << 20, 1 << 20)
    assert splitter.feed(body) == []
    assert splitter.close() == body and not splitter.found


def test_an_empty_element_gets_the_placeholder() -> None:
    body = put_message(wrapped=True).replace(
        b"<msg:Compressed>QUJD</msg:Compressed>", b"<msg:Compressed/>"
    )
    xml, content = split(body)
    assert content == b""
    assert b"<msg:Compressed>" + P + b"</msg:Compressed>" in xml


def test_compressed_in_comments_cdata_attributes_or_elsewhere_is_not_taken() -> None:
    decoys = (
        b"<!-- <msg:Compressed> --><![CDATA[<msg:Compressed>]]><?pi <msg:Compressed>?>"
        b"<x a=\"<msg:Compressed>\" b='>'/><msg:Compressed>not in Payload!</msg:Compressed>"
        b'<y:Compressed xmlns:y="urn:other">also not</y:Compressed>'
    )
    body = put_message(wrapped=True).replace(b"<msg:Request>", decoys + b"<msg:Request>")
    xml, content = split(body)
    assert content == b"QUJD"
    assert xml == body.replace(b">QUJD<", b">" + P + b"<")


def test_a_default_namespace_and_other_prefixes_are_resolved() -> None:
    body = (
        b'<RequestMessage xmlns="http://iec.ch/TC57/2011/schema/message"><Header/>'
        b'<Payload xmlns:m="http://iec.ch/TC57/2011/schema/message"><m:Compressed>QUJD'
        b"</m:Compressed></Payload></RequestMessage>"
    )
    assert split(body) == (body.replace(b"QUJD", P), b"QUJD")


@pytest.mark.parametrize(
    ("inside", "reason"),
    [
        (b"QU&#x4A;D", "holds '&'"),
        (b"QUJD<![CDATA[QUJD]]>", "no CDATA"),
        (b"QU<!-- x -->JD", "no CDATA, comments"),
        (b"QU<b>JD</b>", "no CDATA, comments or elements"),
        (b"QU.JD", "holds '.'"),
        (b"QU\x00JD", "byte 0x00"),
    ],
)
def test_anything_but_plain_base64_is_refused(inside: bytes, reason: str) -> None:
    body = put_message(wrapped=True).replace(b"QUJD", inside)
    with pytest.raises(StreamingError, match=reason):
        split(body)


def test_two_compressed_elements_are_refused() -> None:
    body = put_message().replace(
        b"</msg:Payload>", b"<msg:Compressed>QUJD</msg:Compressed></msg:Payload>"
    )
    with pytest.raises(StreamingError, match="more than one"):
        split(body)


def test_limits_are_enforced() -> None:
    body = put_message(CONTENT.decode())
    with pytest.raises(StreamingError, match="exceeds 100 bytes"):
        split(body, max_content=100)
    with pytest.raises(StreamingError, match="XML around the payload exceeds 64"):
        split(body, max_xml=64)
    # Without Compressed the XML bound holds too, fed in small chunks.
    with pytest.raises(StreamingError, match="exceeds 64"):
        split(b"<a>" + b"x" * 1000 + b"</a>", list(range(0, 1000, 7)), max_xml=64)


def test_a_truncated_body_is_refused() -> None:
    body = put_message(CONTENT.decode())
    cut = body.index(CONTENT) + 50
    splitter = CompressedSplitter(1 << 20, 1 << 20)
    splitter.feed(body[:cut])
    with pytest.raises(StreamingError, match="ends inside Payload/Compressed"):
        splitter.close()
    splitter = CompressedSplitter(1 << 20, 1 << 20)
    splitter.feed(b"<a><b x='1")
    with pytest.raises(StreamingError, match="ends inside markup"):
        splitter.close()
    with pytest.raises(StreamingError, match="document type"):
        CompressedSplitter(1 << 20, 1 << 20).feed(b"<!DOCTYPE a><a/>")


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=40))
def test_any_chunking_gives_the_same_result(cuts: list[int]) -> None:
    decoys = b"<!-- <msg:Compressed> --><![CDATA[x]]><x a='>'/>"
    body = put_message("QUJD\r\n" * 40, wrapped=True).replace(
        b"<msg:Request>", decoys + b"<msg:Request>"
    )
    assert split(body, cuts) == split(body)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=2000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=20),
)
def test_splitter_and_decoder_round_trip_any_bytes(data: bytes, cuts: list[int]) -> None:
    encoded = base64.b64encode(data)
    xml, content = split(put_message(encoded.decode()), cuts)
    assert xml == put_message(PLACEHOLDER)
    decoder = Base64Decoder()
    positions = sorted({0, len(content), *(c % (len(content) + 1) for c in cuts)})
    out = b"".join(decoder.feed(content[a:b]) for a, b in pairwise(positions))
    assert out + decoder.finish() == data
    assert decoder.decoded_length == len(data)


@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=20),
)
def test_encoder_in_any_chunks_equals_one_shot_base64(data: bytes, cuts: list[int]) -> None:
    encoder = Base64Encoder()
    positions = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    out = b"".join(encoder.feed(data[a:b]) for a, b in pairwise(positions))
    assert out + encoder.finish() == base64.b64encode(data)


@given(data=st.binary(max_size=500), spaces=st.lists(st.integers(0, 800), max_size=30))
def test_decoder_skips_xml_white_space(data: bytes, spaces: list[int]) -> None:
    encoded = bytearray(base64.b64encode(data))
    for position in sorted(spaces, reverse=True):
        encoded[position % (len(encoded) + 1) : position % (len(encoded) + 1)] = b" \r\n\t"[
            position % 4 : position % 4 + 1
        ]
    decoder = Base64Decoder()
    assert decoder.feed(bytes(encoded)) + decoder.finish() == data


@pytest.mark.parametrize(
    ("chunks", "reason"),
    [
        ([b"QU.D"], "invalid base64"),
        ([b"QQ==QUJD"], "padding in the middle"),
        ([b"QQ==", b"QUJD"], "after the padding"),
        ([b"QUJ"], "truncated"),
        ([b"Q==="], "padding in the middle|invalid"),
        ([b"=AAA"], "padding in the middle|invalid"),
    ],
)
def test_decoder_is_strict(chunks: list[bytes], reason: str) -> None:
    decoder = Base64Decoder()
    with pytest.raises(Base64Error, match=reason) as caught:
        for chunk in chunks:
            decoder.feed(chunk)
        decoder.finish()
    assert isinstance(caught.value, ProtocolError)
