"""A 20 MB file end to end: outbox → publisher → 3 blocks → recogerFichero → confirm."""

from __future__ import annotations

import asyncio
import bz2
import hashlib
import os

import pytest

from concentrador.protocol.dime import read_message
from concentrador.protocol.filetypes import TypeClassifier
from concentrador.protocol.messages import (
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    InformacionDisponible,
    InformacionDisponibleResponse,
    RecogerFichero,
    RecogerFicheroResponse,
)
from concentrador.protocol.soap import parse_envelope
from concentrador.spool.layout import SpoolState
from concentrador.spool.outbound.compress import detect_compressor
from concentrador.spool.outbound.publisher import Publisher
from tests.server.conftest import Node, soap_call


@pytest.mark.slow  # 5-15 s: bzip2 of 20 MB; still in the default run
async def test_twenty_megabytes_published_as_three_blocks(node: Node, crec) -> None:
    original = os.urandom(20_000_000)  # random: bzip2 makes it slightly larger
    (node.folder("CREC", SpoolState.OUTBOX) / "F1_0086_20240101_20240102.0").write_bytes(original)
    with detect_compressor() as compressor:
        publisher = Publisher(
            node.spool.peer("CREC"),
            node.ledger,
            classifier=TypeClassifier(),
            compressor=compressor,
            settle_seconds=0,
        )
        results = await asyncio.to_thread(publisher.publish_pending)
    published = results[0].published_name
    assert published == "F1_0086_20240101_20240102.0.bz2"
    assert len(results[0].blocks) == 3

    listing = await soap_call(crec, node.url, InformacionDisponible(("TOD",)).to_xml())
    names = [f.nombre for t, f in InformacionDisponibleResponse.from_xml(listing.body).files()]
    assert names == [f"{published}.{k}_3" for k in (1, 2, 3)]

    pieces = []
    for name in names:
        answer = await soap_call(crec, node.url, RecogerFichero(name).to_xml())
        assert answer.status == 200
        envelope_record, file_record = read_message(answer.raw)
        fichero = RecogerFicheroResponse.from_xml(parse_envelope(envelope_record.data).body).fichero
        assert fichero.nombre == name
        assert fichero.matches(hashlib.md5(file_record.data).hexdigest())
        pieces.append(file_record.data)
    assert bz2.decompress(b"".join(pieces)) == original

    confirm = ConfirmacionRecepcionFichero(published, 0).to_xml()
    answer = await soap_call(crec, node.url, confirm)
    assert ConfirmacionRecepcionFicheroResponse.from_xml(answer.body).codigo == 0
    assert node.names("CREC", SpoolState.PUBLISHED) == []
    assert node.names("CREC", SpoolState.DELIVERED) == names
    listing = await soap_call(crec, node.url, InformacionDisponible(("TOD",)).to_xml())
    assert list(InformacionDisponibleResponse.from_xml(listing.body).files()) == []
