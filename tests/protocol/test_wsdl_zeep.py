"""The shipped WSDL: zeep loads it offline, and zeep's messages and ours agree both ways."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import zeep
from lxml import etree
from zeep.transports import Transport

from concentrador.protocol.dispatch import Operation, identify_operation
from concentrador.protocol.messages import (
    CP_NAMESPACE,
    PLACEHOLDER_LOCATION,
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    DatosFichero,
    EnviarFichero,
    EnviarFicheroResponse,
    Fichero,
    InformacionDisponible,
    InformacionDisponibleResponse,
    PeticionFechaHora,
    PeticionFechaHoraResponse,
    RecogerFichero,
    RecogerFicheroResponse,
    TipoFichero,
    WireMessage,
    WsdlError,
    load_wsdl,
    render_wsdl,
)
from concentrador.protocol.soap import build_envelope, parse_envelope

pytestmark = pytest.mark.interop

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
WSDL_NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap": "http://schemas.xmlsoap.org/wsdl/soap/",
}


class OfflineTransport(Transport):
    """A zeep transport that fails the test on any network access."""

    def _load_remote_data(self, url: str) -> bytes:
        raise AssertionError(f"zeep tried to fetch {url}")


def _client(tmp_path: Path, wsdl: bytes) -> zeep.Client:
    path = tmp_path / "cpcscc.wsdl"
    path.write_bytes(wsdl)
    return zeep.Client(str(path), transport=OfflineTransport())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> zeep.Client:
    return _client(tmp_path_factory.mktemp("wsdl"), load_wsdl())


def test_wsdl_declares_the_five_operations_with_urn_soap_actions() -> None:
    root = etree.fromstring(load_wsdl())
    assert root.get("targetNamespace") == CP_NAMESPACE
    actions = {
        op.get("name"): op.find("soap:operation", WSDL_NS).get("soapAction")
        for op in root.iterfind("wsdl:binding/wsdl:operation", WSDL_NS)
    }
    assert actions == {op.value: f"urn:{op.value}" for op in Operation}
    assert root.find("wsdl:binding/soap:binding", WSDL_NS).get("style") == "document"
    uses = {body.get("use") for body in root.iterfind(".//soap:body", WSDL_NS)}
    assert uses == {"literal"}


def test_zeep_loads_it_offline_with_the_five_operations(client: zeep.Client) -> None:
    operations = client.service._binding._operations
    assert set(operations) == {op.value for op in Operation}
    for op in Operation:
        assert operations[op.value].soapaction == f"urn:{op.value}"


ZEEP_REQUESTS: list[tuple[str, dict[str, Any], WireMessage]] = [
    ("peticionFechaHora", {}, PeticionFechaHora()),
    (
        "informacionDisponible",
        {"listaTipos": {"TipoFichero": [{"id": "CUR"}, {"id": "INC"}]}},
        InformacionDisponible(("CUR", "INC")),
    ),
    (
        "confirmacionRecepcionFichero",
        {"nombreFichero": "F1_0086_20040612_20040617.9.bz2", "codConfirmacion": 1},
        ConfirmacionRecepcionFichero("F1_0086_20040612_20040617.9.bz2", 1),
    ),
    ("recogerFichero", {"nombreFichero": "P1_x.1_3"}, RecogerFichero("P1_x.1_3")),
    (
        "enviarFichero",
        {"Fichero": {"Nombre": "P1_x.bz2", "Checksum": MD5.upper()}},
        EnviarFichero(Fichero("P1_x.bz2", MD5)),
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "expected"), ZEEP_REQUESTS, ids=lambda v: str(v)[:30])
def test_zeep_built_requests_are_read_by_us(
    client: zeep.Client, name: str, kwargs: dict[str, Any], expected: WireMessage
) -> None:
    message = client.create_message(
        client.service, name, **kwargs, _soapheaders={"Concentrador": {"id": "0086"}}
    )
    envelope = parse_envelope(etree.tostring(message))
    assert envelope.concentrador_id == "0086"
    operation = Operation(name)
    has_attachment = operation.request_has_attachment
    assert identify_operation(envelope, None, has_attachment) is operation
    assert identify_operation(envelope, f'"urn:{name}"', has_attachment) is operation
    assert operation.request_type.from_xml(envelope.body) == expected


OUR_RESPONSES: list[tuple[str, WireMessage, Any]] = [
    (
        "peticionFechaHora",
        PeticionFechaHoraResponse(datetime(2005, 8, 24, 12, 45, 13)),
        "24/08/2005 12:45:13",
    ),
    (
        "informacionDisponible",
        InformacionDisponibleResponse(
            (TipoFichero("CUR", (DatosFichero("F1_a.bz2", 2048),)), TipoFichero("INC"))
        ),
        [("CUR", [("F1_a.bz2", 2048)]), ("INC", [])],
    ),
    ("recogerFichero", RecogerFicheroResponse(Fichero("F1_a.bz2", MD5)), ("F1_a.bz2", MD5)),
    ("confirmacionRecepcionFichero", ConfirmacionRecepcionFicheroResponse(1), 1),
    ("enviarFichero", EnviarFicheroResponse(6), 6),
]


def _plain(result: Any) -> Any:
    """zeep's answer object as plain Python values, for comparison."""
    if isinstance(result, list):  # informacionDisponible: a list of TipoFichero
        return [(t.id, [(d.nombre, d.longitud) for d in t.DatosFichero]) for t in result]
    if hasattr(result, "Checksum"):  # recogerFichero: the Fichero
        return (result.Nombre, result.Checksum)
    return result


@pytest.mark.parametrize(
    ("name", "response", "expected"), OUR_RESPONSES, ids=[n for n, _, _ in OUR_RESPONSES]
)
def test_our_responses_are_read_by_zeep(
    client: zeep.Client, name: str, response: WireMessage, expected: Any
) -> None:
    envelope = etree.fromstring(build_envelope(response.to_xml()))
    assert _plain(client.service._binding.get(name).process_reply(envelope)) == expected


def test_render_wsdl_rewrites_only_the_address(tmp_path: Path) -> None:
    url = "https://concentrador.example.es:8443/cpcscc?x=1&y=2"
    rendered = render_wsdl(url)
    client = _client(tmp_path, rendered)
    assert client.service._binding_options["address"] == url
    original = load_wsdl()
    assert PLACEHOLDER_LOCATION.encode() in original
    assert PLACEHOLDER_LOCATION.encode() not in rendered
    # Apart from the address, the two documents are the same XML.
    restored = etree.fromstring(rendered)
    for address in restored.iterfind(".//soap:address", WSDL_NS):
        address.set("location", PLACEHOLDER_LOCATION)
    assert etree.tostring(restored, method="c14n") == etree.tostring(
        etree.fromstring(original), method="c14n"
    )


@pytest.mark.parametrize(
    "url", ["", "ftp://h/x", "/relative", "https://", "https://h/a b", "https://h/\x00"]
)
def test_render_wsdl_refuses_bad_locations(url: str) -> None:
    with pytest.raises(WsdlError):
        render_wsdl(url)
