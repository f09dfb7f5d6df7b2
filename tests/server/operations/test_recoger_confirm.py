"""recogerFichero and confirmacionRecepcionFichero (CPCSCC.md §4.3, §4.4)."""

from __future__ import annotations

import hashlib
import os

import pytest

from concentrador.protocol.dime import read_message
from concentrador.protocol.messages import (
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    RecogerFichero,
    RecogerFicheroResponse,
)
from concentrador.protocol.soap import SOAP12, parse_envelope
from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node, soap_call

NAME = "F1_0086_20240101_20240102.0.bz2"


async def fetch(session, node: Node, name: str, **kwargs):
    return await soap_call(session, node.url, RecogerFichero(name).to_xml(), **kwargs)


async def confirm(session, node: Node, name: str, code: int = 0) -> int:
    answer = await soap_call(session, node.url, ConfirmacionRecepcionFichero(name, code).to_xml())
    assert answer.status == 200
    return ConfirmacionRecepcionFicheroResponse.from_xml(answer.body).codigo


async def test_recoger_streams_the_file_as_dime(node: Node, crec) -> None:
    data = os.urandom(600_000)  # several read pieces, not a multiple of 4
    node.publish("CREC", NAME, data)
    answer = await fetch(crec, node, NAME)
    assert answer.status == 200
    assert answer.content_type == "application/dime"
    envelope_record, file_record = read_message(answer.raw)
    assert file_record.type == "application/x-bzip2"
    response = RecogerFicheroResponse.from_xml(parse_envelope(envelope_record.data).body)
    assert response.fichero.nombre == NAME
    assert response.fichero.checksum == hashlib.md5(data).hexdigest()
    assert file_record.data == data


async def test_recoger_uses_the_ledger_checksum_not_a_rehash(node: Node, crec) -> None:
    node.publish("CREC", NAME, b"abc")
    (node.folder("CREC", SpoolState.PUBLISHED) / NAME).write_bytes(b"xyz")  # same size
    answer = await fetch(crec, node, NAME)
    envelope_record, file_record = read_message(answer.raw)
    checksum = RecogerFicheroResponse.from_xml(parse_envelope(envelope_record.data).body)
    assert checksum.fichero.checksum == hashlib.md5(b"abc").hexdigest()
    assert file_record.data == b"xyz"


async def test_recoger_answers_in_soap12(node: Node, crec) -> None:
    node.publish("CREC", NAME, b"data")
    answer = await fetch(crec, node, NAME, version=SOAP12)
    envelope_record, _ = read_message(answer.raw)
    assert parse_envelope(envelope_record.data).version is SOAP12


@pytest.mark.parametrize(
    "name",
    ["NO_EXISTE.bz2", "../OTRO/published/" + NAME, "..", "/etc/passwd", "a\\b", ".hidden"],
)
async def test_recoger_unknown_or_unsafe_is_client_fichero(node: Node, crec, name: str) -> None:
    node.publish("OTRO", NAME, b"theirs")
    answer = await fetch(crec, node, name)
    assert answer.status == 500
    assert answer.fault_code == "Client.Fichero"
    assert answer.envelope.fault.detail


async def test_recoger_of_another_peers_file_is_client_fichero(node: Node, crec) -> None:
    node.publish("OTRO", NAME, b"theirs")
    answer = await fetch(crec, node, NAME)
    assert answer.fault_code == "Client.Fichero"


async def test_confirm_0_delivers_and_unlists(node: Node, crec) -> None:
    node.publish("CREC", NAME, b"data")
    assert await confirm(crec, node, NAME, 0) == 0
    assert node.names("CREC", SpoolState.PUBLISHED) == []
    assert node.names("CREC", SpoolState.DELIVERED) == [NAME]
    assert node.ledger.lookup("CREC", NAME).state == "delivered"
    # Confirmed: no longer served, and a second confirmation is an error.
    assert (await fetch(crec, node, NAME)).fault_code == "Client.Fichero"
    assert await confirm(crec, node, NAME, 0) == 1


@pytest.mark.parametrize("code", [1, 2])
async def test_confirm_1_or_2_keeps_the_file_published(node: Node, crec, code: int) -> None:
    node.publish("CREC", NAME, b"data")
    assert await confirm(crec, node, NAME, code) == 0
    assert node.names("CREC", SpoolState.PUBLISHED) == [NAME]
    assert node.ledger.lookup("CREC", NAME).state == "published"


async def test_confirm_odd_code_is_1(node: Node, crec) -> None:
    node.publish("CREC", NAME, b"data")
    assert await confirm(crec, node, NAME, 7) == 1
    assert node.names("CREC", SpoolState.PUBLISHED) == [NAME]


@pytest.mark.parametrize("name", ["NO_EXISTE.bz2", "../CREC/published/x", "/etc/passwd"])
async def test_confirm_unknown_or_unsafe_is_1(node: Node, crec, name: str) -> None:
    assert await confirm(crec, node, name) == 1


async def test_confirm_another_peers_file_is_1(node: Node, crec) -> None:
    node.publish("OTRO", NAME, b"theirs")
    assert await confirm(crec, node, NAME) == 1
    assert node.names("OTRO", SpoolState.PUBLISHED) == [NAME]


async def test_split_file_is_confirmed_by_original_only(node: Node, crec) -> None:
    original = "P1_20031120.1"
    blocks = [f"{original}.{k}_3" for k in (1, 2, 3)]
    for block in blocks:
        node.publish("CREC", block, block.encode(), original=original)
    assert await confirm(crec, node, blocks[0]) == 1
    assert node.names("CREC", SpoolState.PUBLISHED) == blocks
    assert await confirm(crec, node, original) == 0
    assert node.names("CREC", SpoolState.PUBLISHED) == []
    assert node.names("CREC", SpoolState.DELIVERED) == blocks
    assert {e.state for e in node.ledger.entries_of("CREC", original)} == {"delivered"}
