"""Names and codes are read by XML's white-space rules, not ``str.strip()``
(issue 13, findings 5-7): over real mutual TLS, with the bytes the peer sent.

A name is an xs:string: a padded name is another name, refused by the name
rules, never an alias of the file it resembles. A code is an xs:integer: only
XML white space (space, tab, CR, LF) may surround its ASCII digits.
"""

from __future__ import annotations

import hashlib

import pytest
from lxml import etree

from concentrador.protocol.messages import (
    CP_NAMESPACE,
    ConfirmacionRecepcionFicheroResponse,
    EnviarFichero,
    EnviarFicheroResponse,
    Fichero,
    RecogerFichero,
)
from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node, dime_call, dime_request, soap_call

NAME = "F1_0086_20240101_20240102.0.bz2"
PADDINGS = [
    pytest.param(f"{NAME} ", id="trailing-space"),
    pytest.param(f" {NAME}", id="leading-space"),
    pytest.param(f"{NAME}\u00a0", id="trailing-nbsp"),
    pytest.param(f"\u00a0{NAME}", id="leading-nbsp"),
    pytest.param(f"{NAME}\u3000", id="trailing-ideographic-space"),
    pytest.param(f"{NAME}\n", id="trailing-newline"),
]


def _stored(node: Node) -> list[str]:
    states = (SpoolState.INBOX, SpoolState.MANUAL, SpoolState.PARTIAL, SpoolState.ARCHIVE)
    return [name for state in states for name in node.names("CREC", state)]


@pytest.mark.parametrize("name", PADDINGS)
async def test_enviar_with_a_padded_name_is_2_and_stores_nothing(
    node: Node, crec, name: str
) -> None:
    data = b"BZh9 not really, never read"
    body = EnviarFichero(Fichero(name, hashlib.md5(data).hexdigest())).to_xml()
    answer = await dime_call(crec, node.url, dime_request(body, data))
    assert answer.status == 200, answer.raw[:300]
    assert EnviarFicheroResponse.from_xml(answer.body).codigo == 2
    assert _stored(node) == []


async def test_a_padded_name_does_not_replace_the_file_it_resembles(node: Node, crec) -> None:
    first, second = b"first file", b"second file"
    for name, data in ((NAME, first), (f"{NAME} ", second)):
        body = EnviarFichero(Fichero(name, hashlib.md5(data).hexdigest())).to_xml()
        await dime_call(crec, node.url, dime_request(body, data))
    assert _stored(node) == [NAME]
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == first


@pytest.mark.parametrize("name", PADDINGS)
async def test_recoger_of_a_padded_name_is_client_fichero(node: Node, crec, name: str) -> None:
    node.publish("CREC", NAME, b"data")
    answer = await soap_call(crec, node.url, RecogerFichero(name).to_xml())
    assert answer.status == 500
    assert answer.fault_code == "Client.Fichero"


def _confirmation(code_text: str) -> etree._Element:
    # Built by hand: the model writes only valid integers.
    root = etree.Element(f"{{{CP_NAMESPACE}}}confirmacionRecepcionFichero")
    etree.SubElement(root, f"{{{CP_NAMESPACE}}}nombreFichero").text = NAME
    etree.SubElement(root, f"{{{CP_NAMESPACE}}}codConfirmacion").text = code_text
    return root


@pytest.mark.parametrize("code", ["\u00a00", "0\u00a0", "\u30000", "\u0660", "0_0", "+"])
async def test_confirm_with_a_non_integer_code_unlists_nothing(node: Node, crec, code: str) -> None:
    node.publish("CREC", NAME, b"data")
    answer = await soap_call(crec, node.url, _confirmation(code))
    assert answer.status == 500
    assert answer.fault_code is not None and answer.fault_code.startswith("Client")
    assert node.names("CREC", SpoolState.PUBLISHED) == [NAME]


@pytest.mark.parametrize("code", [" 0", "0\r\n", "\t+0 "])
async def test_confirm_code_with_xml_white_space_is_read(node: Node, crec, code: str) -> None:
    node.publish("CREC", NAME, b"data")
    answer = await soap_call(crec, node.url, _confirmation(code))
    assert answer.status == 200
    assert ConfirmacionRecepcionFicheroResponse.from_xml(answer.body).codigo == 0
    assert node.names("CREC", SpoolState.DELIVERED) == [NAME]
