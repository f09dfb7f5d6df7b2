"""SOAP envelopes: exact writing, liberal (Axis-style) reading, hostile structure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from concentrador.protocol.dispatch import identify_operation
from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.messages import (
    CP_NAMESPACE,
    ConfirmacionRecepcionFichero,
    EnviarFichero,
    Fichero,
    InformacionDisponible,
    PeticionFechaHora,
    RecogerFichero,
    WireMessage,
)
from concentrador.protocol.soap import (
    SOAP11,
    SOAP12,
    FaultWithContentError,
    MissingBodyError,
    MultipleFaultsError,
    NotSoapError,
    SoapError,
    SoapVersion,
    SoapVersionMismatchError,
    build_envelope,
    parse_envelope,
)
from concentrador.protocol.xmlparse import XmlSyntaxError, XmlTooLargeError, local_name

S11 = "http://schemas.xmlsoap.org/soap/envelope/"
S12 = "http://www.w3.org/2003/05/soap-envelope"

# What Apache Axis 1.4 sends (CPCSCC.md §10): actor on the header, cp bound to
# ns1 in the header and as the default namespace in the body, xsi:type on
# every parameter, indentation.
AXIS_REQUEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Header>
  <ns1:Concentrador soapenv:actor="http://schemas.xmlsoap.org/soap/actor/next"
      soapenv:mustUnderstand="0" xmlns:ns1="http://simel.ree.es/cpcscc/2003/Mensajes">
   <ns1:id>0086</ns1:id>
  </ns1:Concentrador>
 </soapenv:Header>
 <soapenv:Body>
  <confirmacionRecepcionFichero xmlns="http://simel.ree.es/cpcscc/2003/Mensajes">
   <nombreFichero xsi:type="xsd:string">F1_0086_20040612_20040617.9.bz2</nombreFichero>
   <codConfirmacion xsi:type="xsd:int">0</codConfirmacion>
  </confirmacionRecepcionFichero>
 </soapenv:Body>
</soapenv:Envelope>
"""


def _axis(body: str) -> bytes:
    """An Axis-shaped request (same header quirks as AXIS_REQUEST) around ``body``."""
    head, _, _ = AXIS_REQUEST.partition(b"<soapenv:Body>")
    return (
        head + b"<soapenv:Body>\n  " + body.encode() + b"\n </soapenv:Body>\n</soapenv:Envelope>\n"
    )


AXIS_BODIES: list[tuple[str, str, WireMessage]] = [
    (
        "peticionFechaHora",
        f'<peticionFechaHora xmlns="{CP_NAMESPACE}"/>',
        PeticionFechaHora(),
    ),
    (
        "informacionDisponible",
        f'<informacionDisponible xmlns="{CP_NAMESPACE}">\n'
        '   <listaTipos xsi:type="ns2:ListaTipos" xmlns:ns2="urn:types">\n'
        '    <TipoFichero id="CUR" xsi:type="ns2:TipoFichero"/>\n'
        '    <TipoFichero id="MAG"/>\n   </listaTipos>\n  </informacionDisponible>',
        InformacionDisponible(("CUR", "MAG")),
    ),
    (
        "recogerFichero",
        f'<recogerFichero xmlns="{CP_NAMESPACE}">\n'
        '   <nombreFichero xsi:type="xsd:string">P1_x.1_3</nombreFichero>\n  </recogerFichero>',
        RecogerFichero("P1_x.1_3"),
    ),
    (
        "enviarFichero",
        f'<enviarFichero xmlns="{CP_NAMESPACE}">\n   <Fichero xsi:type="ns2:Fichero" '
        'xmlns:ns2="urn:types">\n    <Nombre xsi:type="xsd:string">F5_x.bz2</Nombre>\n'
        '    <Checksum xsi:type="xsd:string">9E107D9D372BB6826BD81D3542A419D6</Checksum>\n'
        "   </Fichero>\n  </enviarFichero>",
        EnviarFichero(Fichero("F5_x.bz2", "9e107d9d372bb6826bd81d3542a419d6")),
    ),
]


@pytest.mark.parametrize(
    ("operation", "body", "expected"), AXIS_BODIES, ids=[a for a, _, _ in AXIS_BODIES]
)
def test_axis_requests_of_every_operation_parse(
    operation: str, body: str, expected: WireMessage
) -> None:
    envelope = parse_envelope(_axis(body))
    assert envelope.concentrador_id == "0086"
    # Axis sends SOAPAction as the bare operation name, quoted.
    op = identify_operation(envelope, f'"{operation}"', operation == "enviarFichero")
    assert op.value == operation
    assert op.request_type.from_xml(envelope.body) == expected


def _envelope(body: str, *, header: str = "", ns: str = S11) -> bytes:
    return (
        f'<e:Envelope xmlns:e="{ns}" xmlns:cp="{CP_NAMESPACE}">{header}'
        f"<e:Body>{body}</e:Body></e:Envelope>"
    ).encode()


def test_build_request_with_identification_header_exact_bytes() -> None:
    body = ConfirmacionRecepcionFichero("F.bz2", 0).to_xml()
    assert build_envelope(body, concentrador_id="0086") == (
        b"<?xml version='1.0' encoding='UTF-8'?>\n"
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soapenv:Header>"
        b'<cp:Concentrador xmlns:cp="http://simel.ree.es/cpcscc/2003/Mensajes"'
        b' soapenv:mustUnderstand="0"><cp:id>0086</cp:id></cp:Concentrador>'
        b"</soapenv:Header><soapenv:Body>"
        b'<cp:confirmacionRecepcionFichero xmlns:cp="http://simel.ree.es/cpcscc/2003/Mensajes">'
        b"<cp:nombreFichero>F.bz2</cp:nombreFichero><cp:codConfirmacion>0</cp:codConfirmacion>"
        b"</cp:confirmacionRecepcionFichero></soapenv:Body></soapenv:Envelope>"
    )


def test_build_without_id_has_no_header_and_empty_body() -> None:
    root = etree.fromstring(build_envelope(None, version=SOAP12))
    assert root.tag == f"{{{S12}}}Envelope"
    assert [child.tag for child in root] == [f"{{{S12}}}Body"]
    assert len(root[0]) == 0


def test_build_does_not_move_the_callers_element() -> None:
    body = ConfirmacionRecepcionFichero("F.bz2", 0).to_xml()
    build_envelope(body)
    assert body.getparent() is None


def test_build_refuses_an_id_xml_cannot_carry() -> None:
    with pytest.raises(SoapError):
        build_envelope(None, concentrador_id="bad\x00id")


def test_version_constants() -> None:
    assert SOAP11.namespace == S11
    assert SOAP11.content_type == "text/xml; charset=utf-8"
    assert SOAP12.namespace == S12
    assert SOAP12.content_type == "application/soap+xml; charset=utf-8"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/xml; charset=utf-8", SOAP11),
        ("TEXT/XML", SOAP11),
        ('application/soap+xml;charset="utf-8"; action="urn:x"', SOAP12),
        ("application/dime", None),
        (None, None),
        ("", None),
    ],
)
def test_version_from_content_type(content_type: str | None, expected: SoapVersion | None) -> None:
    assert SoapVersion.from_content_type(content_type) is expected


def test_axis_request_parses() -> None:
    envelope = parse_envelope(AXIS_REQUEST)
    assert envelope.version is SOAP11
    assert envelope.concentrador_id == "0086"
    assert envelope.fault is None
    assert envelope.must_understand == []
    assert [local_name(e) for e in envelope.body_elements] == ["confirmacionRecepcionFichero"]
    request = ConfirmacionRecepcionFichero.from_xml(envelope.body)
    assert request == ConfirmacionRecepcionFichero("F1_0086_20040612_20040617.9.bz2", 0)


def test_soap12_request_parses() -> None:
    data = _envelope(
        "<cp:peticionFechaHora/>",
        header="<e:Header><x:Concentrador xmlns:x='urn:other'><x:id> 7 </x:id></x:Concentrador>"
        "</e:Header>",
        ns=S12,
    )
    envelope = parse_envelope(data)
    assert envelope.version is SOAP12
    # Local-name match: the header's namespace does not matter, whitespace is trimmed.
    assert envelope.concentrador_id == "7"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "<e:Header/>",
        "<e:Header><cp:Concentrador><cp:id>  </cp:id></cp:Concentrador></e:Header>",
        "<e:Header><cp:Other><cp:id>1</cp:id></cp:Other></e:Header>",
    ],
)
def test_missing_or_empty_id_is_none(header: str) -> None:
    assert parse_envelope(_envelope("", header=header)).concentrador_id is None


def test_agreeing_duplicate_headers_are_tolerated_and_contradicting_ones_refused() -> None:
    block = "<cp:Concentrador><cp:id>{}</cp:id></cp:Concentrador>"
    same = "<e:Header>" + block.format("A") + block.format("A") + "</e:Header>"
    assert parse_envelope(_envelope("", header=same)).concentrador_id == "A"
    different = "<e:Header>" + block.format("A") + block.format("B") + "</e:Header>"
    with pytest.raises(SoapError, match="different Concentrador ids"):
        parse_envelope(_envelope("", header=different))


def test_unknown_must_understand_headers_are_reported() -> None:
    header = (
        "<e:Header><cp:Concentrador e:mustUnderstand='1'><cp:id>A</cp:id></cp:Concentrador>"
        "<x:Security xmlns:x='urn:sec' e:mustUnderstand='true'/>"
        "<x:Trace xmlns:x='urn:t' e:mustUnderstand='0'/></e:Header>"
    )
    envelope = parse_envelope(_envelope("", header=header))
    assert envelope.must_understand == ["{urn:sec}Security"]


def test_comments_and_whitespace_are_not_body_elements() -> None:
    envelope = parse_envelope(_envelope("\n <!-- hi --> <cp:peticionFechaHora/> \n"))
    assert [local_name(e) for e in envelope.body_elements] == ["peticionFechaHora"]
    assert envelope.first_body_element is envelope.body_elements[0]


def test_empty_body() -> None:
    envelope = parse_envelope(_envelope(" "))
    assert envelope.body_elements == []
    assert envelope.first_body_element is None


def test_unqualified_body_inside_qualified_envelope_is_accepted() -> None:
    data = f'<e:Envelope xmlns:e="{S11}"><Body><x/></Body></e:Envelope>'.encode()
    assert [local_name(e) for e in parse_envelope(data).body_elements] == ["x"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not xml at all", XmlSyntaxError),
        (b"<html><body>502 Bad Gateway</body></html>", NotSoapError),
        (f'<x:Body xmlns:x="{S11}"/>'.encode(), NotSoapError),
        (b'<e:Envelope xmlns:e="urn:wrong"><e:Body/></e:Envelope>', SoapVersionMismatchError),
        (b"<Envelope><Body/></Envelope>", SoapVersionMismatchError),
        (f'<e:Envelope xmlns:e="{S11}"><e:Header/></e:Envelope>'.encode(), MissingBodyError),
        (
            f'<e:Envelope xmlns:e="{S11}"><x:Body xmlns:x="urn:x"/></e:Envelope>'.encode(),
            MissingBodyError,
        ),
        (f'<e:Envelope xmlns:e="{S11}"><e:Body/><e:Body/></e:Envelope>'.encode(), SoapError),
        (
            f'<e:Envelope xmlns:e="{S11}"><e:Header/><e:Header/><e:Body/></e:Envelope>'.encode(),
            SoapError,
        ),
        (
            _envelope(
                "<e:Fault><faultcode>e:Server</faultcode></e:Fault>"
                "<e:Fault><faultcode>e:Client</faultcode></e:Fault>"
            ),
            MultipleFaultsError,
        ),
        (
            _envelope("<e:Fault><faultcode>e:Server</faultcode></e:Fault><cp:peticionFechaHora/>"),
            FaultWithContentError,
        ),
        (
            _envelope("<cp:peticionFechaHora/><e:Fault><faultcode>e:Server</faultcode></e:Fault>"),
            FaultWithContentError,
        ),
    ],
)
def test_hostile_or_broken_envelopes_are_refused(data: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error) as info:
        parse_envelope(data)
    assert "\n" not in str(info.value)


def test_oversize_envelope_is_refused_before_parsing() -> None:
    data = _envelope("<cp:x>" + "a" * 2000 + "</cp:x>")
    with pytest.raises(XmlTooLargeError):
        parse_envelope(data, max_size=1000)
    assert parse_envelope(data, max_size=len(data)).body_elements


def test_default_limit_is_one_mebibyte() -> None:
    padding = "a" * (1024 * 1024)
    with pytest.raises(XmlTooLargeError):
        parse_envelope(_envelope(f"<cp:x>{padding}</cp:x>"))


ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=30,
)


@given(concentrador_id=ids, version=st.sampled_from(SoapVersion), with_body=st.booleans())
def test_envelope_round_trip(concentrador_id: str, version: SoapVersion, with_body: bool) -> None:
    body = ConfirmacionRecepcionFichero("N", 2).to_xml() if with_body else None
    envelope = parse_envelope(
        build_envelope(body, version=version, concentrador_id=concentrador_id)
    )
    assert envelope.version is version
    assert envelope.concentrador_id == concentrador_id
    assert envelope.fault is None
    assert len(envelope.body_elements) == (1 if with_body else 0)
