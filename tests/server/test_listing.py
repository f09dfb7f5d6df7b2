"""peticionFechaHora, informacionDisponible and the WSDL, over real mutual TLS."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from concentrador.protocol import ListedFile, listable_name, listing_envelope
from concentrador.protocol.filetypes import REAL_TYPE_IDS
from concentrador.protocol.messages import (
    DatosFichero,
    InformacionDisponible,
    InformacionDisponibleResponse,
    PeticionFechaHora,
    PeticionFechaHoraResponse,
    TipoFichero,
)
from concentrador.protocol.soap import SOAP11, SOAP12, build_envelope
from concentrador.spool.ledger import PublishedEntry
from tests.server.conftest import FROZEN_NOW, Node, soap_call


def listing(answer) -> dict[str, list[tuple[str, int]]]:
    response = InformacionDisponibleResponse.from_xml(answer.body)
    return {t.id: [(f.nombre, f.longitud_kb) for f in t.ficheros] for t in response.tipos}


async def test_fecha_hora_is_node_local_time(node: Node, crec) -> None:
    node.clock[0] = datetime(2024, 7, 1, 22, 30, 5, tzinfo=UTC)  # summer: UTC+2
    answer = await soap_call(crec, node.url, PeticionFechaHora().to_xml())
    assert answer.status == 200
    assert answer.content_type == "text/xml"
    assert "<cp:fechaHora>02/07/2024 00:30:05</cp:fechaHora>" in answer.raw.decode()
    parsed = PeticionFechaHoraResponse.from_xml(answer.body)
    assert parsed.fecha_hora == datetime(2024, 7, 2, 0, 30, 5)


async def test_empty_body_is_fecha_hora(node: Node, crec) -> None:
    answer = await soap_call(crec, node.url, None)
    assert answer.status == 200
    assert PeticionFechaHoraResponse.from_xml(answer.body).fecha_hora == datetime(2024, 1, 15, 11)


async def test_tod_lists_all_real_types_in_order(node: Node, crec) -> None:
    node.publish("CREC", "F1_0086_20240101_20240102.0.bz2", b"x" * 1025)
    node.publish("CREC", "INCID_1.bz2", b"y", file_type="INC")
    node.publish("OTRO", "F1_0086_20240101_20240102.9.bz2", b"z")  # someone else's
    answer = await soap_call(crec, node.url, InformacionDisponible(("TOD",)).to_xml())
    assert answer.status == 200
    got = listing(answer)
    assert list(got) == list(REAL_TYPE_IDS)
    assert got["CUR"] == [("F1_0086_20240101_20240102.0.bz2", 2)]  # 1025 bytes -> 2 KB
    assert got["INC"] == [("INCID_1.bz2", 1)]  # never 0 KB
    assert all(got[t] == [] for t in REAL_TYPE_IDS if t not in ("CUR", "INC"))
    assert b'id="TOD"' not in answer.raw


async def test_tod_mixed_with_other_type_is_client_tod(node: Node, crec) -> None:
    answer = await soap_call(crec, node.url, InformacionDisponible(("CUR", "TOD")).to_xml())
    assert answer.status == 500
    assert answer.fault_code == "Client.TOD"
    assert answer.envelope.fault.detail


async def test_requested_types_unknown_ids_empty_blocks_and_confirmed_hidden(
    node: Node, crec
) -> None:
    for k in (1, 2, 3):
        node.publish("CREC", f"P1_20031120.1.{k}_3", b"b" * 2048, original="P1_20031120.1")
    node.publish("CREC", "F5_0001_20240101_20240102.0.bz2", b"gone")
    node.ledger.set_state("CREC", "F5_0001_20240101_20240102.0.bz2", "delivered")
    answer = await soap_call(crec, node.url, InformacionDisponible(("XYZ", "CUR", "INC")).to_xml())
    got = listing(answer)
    assert list(got) == ["XYZ", "CUR", "INC"]
    assert got["XYZ"] == [] and got["INC"] == []
    assert got["CUR"] == [(f"P1_20031120.1.{k}_3", 2) for k in (1, 2, 3)]


async def test_soap12_request_is_answered_in_soap12(node: Node, crec) -> None:
    answer = await soap_call(
        crec, node.url, InformacionDisponible(("CUR",)).to_xml(), version=SOAP12
    )
    assert answer.status == 200
    assert answer.content_type == "application/soap+xml"
    assert answer.envelope.version is SOAP12
    fault = await soap_call(
        crec, node.url, InformacionDisponible(("CUR", "TOD")).to_xml(), version=SOAP12
    )
    assert fault.status == 500 and fault.envelope.version is SOAP12
    assert fault.fault_code == "Client.TOD"


async def test_wsdl_address_is_request_url(node: Node, crec) -> None:
    async with crec.get(node.url + "?wsdl") as response:
        assert response.status == 200
        root = etree.fromstring(await response.read())
    addresses = root.findall(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert [a.get("location") for a in addresses] == [node.url] * len(addresses)
    async with crec.get(node.url + "?WSDL") as response:
        assert response.status == 200
    async with crec.get(node.url) as response:
        assert response.status == 404


async def test_listing_of_10000_files_is_fast(node: Node) -> None:
    entries = [
        PublishedEntry(
            "CREC",
            f"F1_0086_{i:08d}.bz2",
            f"F1_0086_{i:08d}.bz2",
            "CUR",
            1000 + i,
            "0" * 32,
            FROZEN_NOW,
        )
        for i in range(10_000)
    ]
    node.ledger.record_published(entries)
    from concentrador.server.operations.informacion import published_listing

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        body = listing_envelope(
            InformacionDisponible(("TOD",)), published_listing(node.ledger, "CREC"), SOAP11
        )
        best = min(best, time.perf_counter() - start)
    assert body.count(b"<cp:DatosFichero ") == 10_000
    assert best < 0.150, f"listing took {best * 1000:.0f} ms"


names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
).filter(
    lambda s: (
        all(c in "\t\n\r" or ord(c) >= 0x20 for c in s) and "\ufffe" not in s and "\uffff" not in s
    )
)


@given(
    files=st.lists(
        st.tuples(names, st.sampled_from(["CUR", "INC", "MAG"]), st.integers(0, 10**9)),
        max_size=8,
    ),
    wanted=st.sampled_from([("TOD",), ("CUR",), ("MAG", "zz&<\"'>", "CUR")]),
    version=st.sampled_from([SOAP11, SOAP12]),
)
def test_fast_listing_equals_the_model(files, wanted, version) -> None:
    """The text writer produces exactly what the core model would."""
    request = InformacionDisponible(wanted)
    fast = listing_envelope(request, [ListedFile(*f) for f in files], version)
    model = InformacionDisponibleResponse(
        tuple(
            TipoFichero(t, tuple(DatosFichero.for_size(n, s) for n, ft, s in files if ft == t))
            for t in request.requested_types()
        )
    )
    slow = build_envelope(model.to_xml(), version=version)
    assert etree.tostring(etree.fromstring(fast), method="c14n") == etree.tostring(
        etree.fromstring(slow), method="c14n"
    )


@pytest.mark.parametrize("wanted", [("TOD", "TOD"), ()])
def test_tod_twice_is_fine_and_empty_request_is_empty(wanted) -> None:
    body = listing_envelope(InformacionDisponible(wanted), [], SOAP11)
    expected = len(REAL_TYPE_IDS) if wanted else 0
    assert body.count(b"<cp:TipoFichero ") == expected


def test_a_name_xml_cannot_carry_is_left_out() -> None:
    files = [ListedFile("bad\x01name.bz2", "CUR", 10), ListedFile("F1_ok.bz2", "CUR", 2048)]
    body = listing_envelope(InformacionDisponible(("CUR",)), files, SOAP11)
    assert b"bad" not in body
    assert b'<cp:DatosFichero nombre="F1_ok.bz2" longitud="2"/>' in body
    assert [listable_name(f.name) for f in files] == [False, True]
