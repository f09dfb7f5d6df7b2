"""The whole streamed path with helper A's builders: the server signs a binary get
answer over the base64 it streams, the client splits the envelope and verifies."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from lxml import etree

from concentrador.protocol.iec62325 import (
    Base64Decoder,
    Base64Encoder,
    CompressedSplitter,
    SignatureError,
    binary_get_response,
    build_504_envelope,
    canonical_parts,
    content_digest,
    message_from_body,
    put_binary_request,
    sign,
    split_at_placeholder,
    verify,
)
from concentrador.protocol.soapenv import SoapVersion

from .signing_fixtures import Keys, make_keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("pki") / "certs")


def _encoded(data: bytes, chunk: int = 4096) -> list[bytes]:
    encoder = Base64Encoder()
    out = [encoder.feed(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return [*out, encoder.finish()]


@pytest.mark.parametrize("version", list(SoapVersion))
@pytest.mark.parametrize(
    "build",
    [
        lambda: binary_get_response("F1_0086.0.bz2", datetime(2024, 5, 1, tzinfo=UTC)),
        lambda: put_binary_request("F1_0086.0.bz2"),
    ],
    ids=["get-response", "put-request"],
)
def test_streamed_sign_split_verify_decode(keys: Keys, version: SoapVersion, build: object) -> None:
    data = os.urandom(200_000)
    message = build()  # type: ignore[operator]
    before, after = canonical_parts(message)
    sign(message, keys.crec, content_digest(before, _encoded(data), after))
    head, tail = split_at_placeholder(build_504_envelope(message, version))
    wire = head + b"".join(_encoded(data)) + tail

    splitter = CompressedSplitter(max_xml=1 << 20, max_content=1 << 20)
    decoder, pieces, decoded = Base64Decoder(), [], b""
    for start in range(0, len(wire), 1000):
        for piece in splitter.feed(wire[start : start + 1000]):
            pieces.append(piece)
            decoded += decoder.feed(piece)
    envelope = etree.fromstring(splitter.close())
    body = envelope[-1]
    received = message_from_body(list(body))
    assert received is not None
    assert verify(received, content=pieces) == keys.crec.certificate
    assert decoded + decoder.finish() == data
    with pytest.raises(SignatureError, match="digest does not match"):
        verify(received, content=[*pieces[:-1], pieces[-1][:-4] + b"AAAA"])
