"""Which profile a request speaks: the 504 path, or a RequestMessage in the Body."""

from __future__ import annotations

import base64
import os

import pytest

from concentrador.protocol.iec62325 import put_binary_request, query_request
from concentrador.protocol.messages import PeticionFechaHora
from concentrador.protocol.soap import SOAP12, build_envelope
from concentrador.server.iec62325.peek import PEEK_AFTER, MessageKind, message_kind
from concentrador.spool.layout import SpoolState
from tests.server.conftest import soap_call
from tests.server.iec62325.conftest import body_of, call, signing_key, stored, url_504

NAME = "F1_0086_20240101_20240102.0.bz2"


async def test_wsdl_of_the_504_endpoint(start_504, crec) -> None:
    node = await start_504()
    async with crec.get(url_504(node) + "?wsdl") as response:
        text = await response.text()
    assert response.status == 200
    assert "ServiceEME" in text and url_504(node) in text
    async with crec.get(node.url + "?wsdl") as response:
        assert "ServiceEME" not in await response.text()


async def test_a_v23_peer_calling_504_is_told_so(start_504, open_client) -> None:
    node = await start_504()
    otro = open_client("OTRO-client")
    answer = await call(otro, url_504(node), body_of(query_request()))
    assert answer.status == 500 and answer.code == "HAND-003"
    assert "CPCSCC v2.3" in answer.errors[0].details
    # The same at the v2.3 path: a RequestMessage in the Body is the 504 profile.
    answer = await call(otro, node.url, body_of(query_request()))
    assert answer.code == "HAND-003"


async def test_a_504_peer_calling_v23_is_told_so(start_504, crec) -> None:
    node = await start_504()
    answer = await soap_call(crec, node.url, PeticionFechaHora().to_xml())
    assert answer.status == 500 and answer.fault_code == "Client"
    assert "IEC 62325-504" in answer.envelope.fault.string


async def test_a_504_request_at_the_v23_path_is_served(start_504, crec) -> None:
    node = await start_504()
    answer = await call(crec, node.url, body_of(query_request()))
    assert answer.status == 200, answer.raw[:600]


async def test_soap_12(start_504, crec) -> None:
    node = await start_504()
    answer = await call(
        crec, url_504(node), body_of(query_request(), version=SOAP12), version=SOAP12
    )
    assert answer.status == 200 and b"http://www.w3.org/2003/05/soap-envelope" in answer.raw
    bad = await call(crec, url_504(node), build_envelope(None, version=SOAP12), version=SOAP12)
    assert bad.status == 500 and bad.code == "HAND-006"
    assert b"http://www.w3.org/2003/05/soap-envelope" in bad.raw


async def test_a_big_put_at_the_v23_path_is_peeked_and_streamed(start_504, crec, pki) -> None:
    node = await start_504()
    data = os.urandom(2 << 20)  # past the v2.3 envelope limit of 1 MiB
    message = put_binary_request(NAME)
    key = signing_key(pki, "CREC-client")
    answer = await call(crec, node.url, body_of(message, key=key, content=base64.b64encode(data)))
    assert answer.status == 200, answer.raw[:600]
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == data
    assert stored(node) == {"inbox": [NAME]}


async def test_a_big_v23_body_is_still_too_large(start_504, crec) -> None:
    node = await start_504()
    body = build_envelope(PeticionFechaHora().to_xml()).replace(
        b"<soapenv:Body>", b" " * (2 << 20) + b"<soapenv:Body>"
    )
    async with crec.post(node.url, data=body, headers={"Content-Type": "text/xml"}) as response:
        assert response.status == 500
        assert b"limit" in await response.read()


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (body_of(query_request()), MessageKind.IEC62325),
        (body_of(query_request())[:150], MessageKind.UNDECIDED),
        (build_envelope(PeticionFechaHora().to_xml()), MessageKind.OTHER),
        (b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>", MessageKind.OTHER),
        (b"not xml at all", MessageKind.OTHER),
        (b"<Envelope><Body><RequestMessage/></Body></Envelope>", MessageKind.OTHER),
    ],
)
def test_message_kind(head: bytes, kind: MessageKind) -> None:
    assert message_kind(head).kind is kind


def test_peek_threshold_is_below_the_envelope_limit() -> None:
    assert PEEK_AFTER < 1 << 20
