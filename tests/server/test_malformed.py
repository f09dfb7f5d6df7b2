"""Hostile and broken requests: always a SOAP fault with HTTP 500, and the server lives on."""

from __future__ import annotations

import pytest

from concentrador.protocol.dime import encode_message
from concentrador.protocol.messages import PeticionFechaHora
from tests.server.conftest import Node, post_raw, soap_call

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
<soapenv:Body><x>&lol3;</x></soapenv:Body></soapenv:Envelope>"""

CASES = {
    "not xml": (b"this is not xml", "text/xml"),
    "xml bomb": (BOMB, "text/xml"),
    "not soap": (b"<root><recogerFichero/></root>", "text/xml"),
    "unknown operation": (
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
        b"<hacerCafe/></e:Body></e:Envelope>",
        "text/xml",
    ),
    "bad dime": (b"\x0c\x20\x00\x00garbage that is not dime", "application/dime"),
    "dime with xml bomb": (encode_message(BOMB, b"data"), "application/dime"),
    "empty body": (b"", "text/xml"),
    "oversized plain body": (b"<a>" + b" " * (2 << 20) + b"</a>", "text/xml"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_malformed_request_is_a_fault_and_the_server_keeps_serving(
    node: Node, crec, case: str
) -> None:
    data, content_type = CASES[case]
    answer = await post_raw(crec, node.url, data, content_type)
    assert answer.status == 500
    assert answer.content_type == "text/xml"
    fault = answer.envelope.fault
    assert fault.is_client
    assert fault.detail  # it came from processing the body
    assert len(fault.string) < 1000 and "\n" not in fault.string
    again = await soap_call(crec, node.url, PeticionFechaHora().to_xml())
    assert again.status == 200


async def test_enviar_without_attachment_is_a_client_fault(node: Node, crec) -> None:
    from concentrador.protocol.messages import EnviarFichero, Fichero

    answer = await soap_call(crec, node.url, EnviarFichero(Fichero("a.bz2", "0" * 32)).to_xml())
    assert answer.status == 500
    assert answer.fault_code == "Client"
    assert "application/dime" in answer.envelope.fault.string


async def test_must_understand_header_is_refused(node: Node, crec) -> None:
    data = (
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header>'
        b'<x:Seguridad xmlns:x="urn:x" e:mustUnderstand="1"/></e:Header><e:Body>'
        b"<peticionFechaHora/></e:Body></e:Envelope>"
    )
    answer = await post_raw(crec, node.url, data, "text/xml")
    assert answer.status == 500
    assert answer.fault_code == "MustUnderstand"
