"""SOAP faults: §3 codes, SOAP 1.1/1.2 shapes, liberal reading, unknown codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from concentrador.protocol.dispatch import UnknownOperationError
from concentrador.protocol.faults import (
    Fault,
    FaultCode,
    FaultReceivedError,
    MalformedFaultError,
    fault_for_error,
)
from concentrador.protocol.messages import MessageError, TodMixError
from concentrador.protocol.soap import (
    SOAP11,
    SOAP12,
    SoapError,
    SoapVersion,
    SoapVersionMismatchError,
    parse_envelope,
)

S11 = "http://schemas.xmlsoap.org/soap/envelope/"
S12 = "http://www.w3.org/2003/05/soap-envelope"
CP = "http://simel.ree.es/cpcscc/2003/Mensajes"


def _fault11(inner: str) -> bytes:
    return (
        f'<soapenv:Envelope xmlns:soapenv="{S11}"><soapenv:Body>'
        f"<soapenv:Fault>{inner}</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()


def _read(data: bytes) -> Fault:
    fault = parse_envelope(data).fault
    assert fault is not None
    return fault


def test_soap11_fault_shape() -> None:
    element = Fault(FaultCode.FICHERO, "file not found", "F1.bz2").to_element(SOAP11)
    assert element.tag == f"{{{S11}}}Fault"
    assert [child.tag for child in element] == ["faultcode", "faultstring", "detail"]
    code = element.findtext("faultcode")
    assert code == "soapenv:Client.Fichero"
    # The prefix really is bound to the envelope namespace.
    assert element.nsmap["soapenv"] == S11
    assert element.findtext("faultstring") == "file not found"
    assert element.find("detail")[0].tag == f"{{{CP}}}mensaje"


def test_soap11_fault_without_detail_has_no_detail_element() -> None:
    element = Fault(FaultCode.AUTENTICACION, "unknown peer").to_element(SOAP11)
    assert element.find("detail") is None


@pytest.mark.parametrize(
    ("code", "value", "subcode"),
    [
        ("Client.Fichero", "soapenv:Sender", "cp:Client.Fichero"),
        ("Client.TOD", "soapenv:Sender", "cp:Client.TOD"),
        ("Server.Generico", "soapenv:Receiver", "cp:Server.Generico"),
        ("Client", "soapenv:Sender", None),
        ("Server", "soapenv:Receiver", None),
        ("VersionMismatch", "soapenv:VersionMismatch", None),
        ("Odd.Code", "soapenv:Receiver", "cp:Odd.Code"),
    ],
)
def test_soap12_fault_mapping(code: str, value: str, subcode: str | None) -> None:
    element = Fault(code, "why", "d").to_element(SOAP12)
    ns = {"e": S12}
    assert element.xpath("e:Code/e:Value/text()", namespaces=ns) == [value]
    assert element.xpath("e:Code/e:Subcode/e:Value/text()", namespaces=ns) == (
        [subcode] if subcode else []
    )
    assert element.xpath("e:Reason/e:Text/@xml:lang", namespaces=ns) == ["en"]
    assert element.xpath("e:Detail/*/text()", namespaces=ns) == ["d"]


def test_read_compares_the_local_part_whatever_the_prefix() -> None:
    data = (
        f'<S:Envelope xmlns:S="{S11}"><S:Body><S:Fault>'
        "<faultcode>S:Client.Autenticacion</faultcode><faultstring> nope </faultstring>"
        "</S:Fault></S:Body></S:Envelope>"
    ).encode()
    fault = _read(data)
    assert fault.code == "Client.Autenticacion"
    assert fault.known is FaultCode.AUTENTICACION
    assert fault.string == "nope"
    assert fault.detail is None


def test_unprefixed_code_is_read() -> None:
    assert _read(_fault11("<faultcode>Client.TOD</faultcode>")).known is FaultCode.TOD


def test_axis_fault_with_hostname_detail() -> None:
    fault = _read(
        _fault11(
            "<faultcode>soapenv:Server.userException</faultcode>"
            "<faultstring>java.rmi.RemoteException: boom</faultstring>"
            '<detail><ns1:hostname xmlns:ns1="http://xml.apache.org/axis/">node1</ns1:hostname>'
            "</detail>"
        )
    )
    assert fault.code == "Server.userException"
    assert fault.known is None
    assert fault.is_server and not fault.is_client
    assert fault.detail == "node1"


@pytest.mark.parametrize(
    ("code", "base", "is_client"),
    [
        ("Client.Whatever", "Client", True),
        ("Client", "Client", True),
        ("Server.Generico", "Server", False),
        ("MustUnderstand", "MustUnderstand", False),
    ],
)
def test_unknown_codes_are_kept_and_classified(code: str, base: str, is_client: bool) -> None:
    fault = _read(_fault11(f"<faultcode>soapenv:{code}</faultcode>"))
    assert fault.code == code
    assert fault.base_class == base
    assert fault.is_client is is_client


def test_soap12_fault_from_another_stack() -> None:
    data = (
        f'<env:Envelope xmlns:env="{S12}"><env:Body><env:Fault>'
        "<env:Code><env:Value>env:Sender</env:Value>"
        '<env:Subcode><env:Value xmlns:m="urn:other">m:BadThing</env:Value></env:Subcode>'
        "</env:Code>"
        '<env:Reason><env:Text xml:lang="es">malo</env:Text><env:Text xml:lang="en">bad</env:Text>'
        "</env:Reason></env:Fault></env:Body></env:Envelope>"
    ).encode()
    fault = _read(data)
    # A foreign-namespace subcode is appended to the mapped base class.
    assert fault.code == "Client.BadThing"
    assert fault.string == "malo"
    assert fault.detail is None


def test_soap12_fault_without_subcode_maps_receiver_to_server() -> None:
    data = (
        f'<env:Envelope xmlns:env="{S12}"><env:Body><env:Fault>'
        "<env:Code><env:Value>env:Receiver</env:Value></env:Code>"
        "</env:Fault></env:Body></env:Envelope>"
    ).encode()
    assert _read(data).code == "Server"


@pytest.mark.parametrize(
    "inner",
    ["", "<faultstring>x</faultstring>", "<faultcode>  </faultcode>", "<faultcode>p:</faultcode>"],
)
def test_fault_without_code_is_malformed(inner: str) -> None:
    with pytest.raises(MalformedFaultError):
        parse_envelope(_fault11(inner))


def test_empty_detail_is_present_but_empty() -> None:
    fault = _read(_fault11("<faultcode>soapenv:Client</faultcode><detail/>"))
    assert fault.detail == ""


def test_huge_fault_text_is_clipped() -> None:
    fault = _read(
        _fault11(f"<faultcode>soapenv:Server</faultcode><faultstring>{'x' * 9000}</faultstring>")
    )
    assert len(fault.string) < 5000


def test_invalid_code_cannot_be_written() -> None:
    with pytest.raises(SoapError):
        Fault("has space", "x").to_element()
    with pytest.raises(SoapError):
        Fault("Client", "bad\x01text").to_element()


def test_prefixed_and_enum_codes_are_normalised() -> None:
    assert Fault("soapenv:Client.Fichero", "x").code == "Client.Fichero"
    assert Fault(FaultCode.GENERICO, "x").code == "Server.Generico"
    assert Fault(FaultCode.GENERICO, "x") == Fault("Server.Generico", "x")


def test_fault_for_error_codes_and_detail() -> None:
    tod = fault_for_error(TodMixError("TOD must be alone"))
    assert (tod.code, tod.string, tod.detail) == (
        "Client.TOD",
        "TOD must be alone",
        "TOD must be alone",
    )
    message = fault_for_error(MessageError("codigo must be an integer"))
    assert message.code == "Client" and message.detail is not None
    unknown = fault_for_error(UnknownOperationError("which operation?"))
    assert unknown.code == "Client" and unknown.detail == "which operation?"
    # Envelope-level problems are not about the Body: no detail.
    mismatch = fault_for_error(SoapVersionMismatchError("wrong namespace"))
    assert mismatch.code == "VersionMismatch" and mismatch.detail is None


def test_fault_received_error_carries_the_fault() -> None:
    fault = Fault(FaultCode.FICHERO, "gone")
    error = FaultReceivedError(fault)
    assert error.fault is fault
    assert str(error) == "peer answered fault Client.Fichero: gone"


NAME_START = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
codes = st.one_of(
    st.sampled_from(FaultCode).map(str),
    st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(NAME_START),
        st.text(alphabet=NAME_START + "0123456789.-", max_size=20),
    ),
)
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), max_size=60
).map(str.strip)
# Detail is read back as its whitespace-normalised text.
details = st.none() | texts.map(lambda t: " ".join(t.split()))


@given(code=codes, string=texts, detail=details, version=st.sampled_from(SoapVersion))
def test_fault_round_trip(code: str, string: str, detail: str | None, version: SoapVersion) -> None:
    fault = Fault(code, string, detail)
    envelope = parse_envelope(fault.to_envelope(version))
    assert envelope.version is version
    assert envelope.fault == fault
    assert envelope.body_elements[0].tag == f"{{{version.namespace}}}Fault"


def test_fault_envelope_is_a_complete_soap_message() -> None:
    data = Fault(FaultCode.GENERICO, "disk full").to_envelope(SOAP12)
    root = etree.fromstring(data)
    assert root.tag == f"{{{S12}}}Envelope"
    assert data.startswith(b"<?xml")
