"""Fuzz: whatever a peer sends, only ProtocolError subclasses escape the SOAP layer.

Mutated valid envelopes and random element trees go through parse_envelope,
dispatch, every message's from_xml (on the Body and on its children) and
back through to_xml; any other exception type is a bug.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from concentrador.protocol.dispatch import identify_operation
from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.faults import Fault, FaultCode
from concentrador.protocol.messages import (
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
)
from concentrador.protocol.soap import SOAP11, SOAP12, SoapVersion, build_envelope, parse_envelope

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
MESSAGE_TYPES: list[type[WireMessage]] = [
    PeticionFechaHora,
    PeticionFechaHoraResponse,
    InformacionDisponible,
    InformacionDisponibleResponse,
    RecogerFichero,
    RecogerFicheroResponse,
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    EnviarFichero,
    EnviarFicheroResponse,
]
SAMPLES: list[WireMessage] = [
    PeticionFechaHora(),
    PeticionFechaHoraResponse(datetime(2005, 8, 24, 12, 45, 13)),
    InformacionDisponible(("CUR", "INC")),
    InformacionDisponibleResponse(
        (TipoFichero("CUR", (DatosFichero("F1_a.bz2", 2048),)), TipoFichero("INC"))
    ),
    RecogerFichero("F1_a.bz2"),
    RecogerFicheroResponse(Fichero("F1_a.bz2", MD5)),
    ConfirmacionRecepcionFichero("F1_a.bz2", 0),
    ConfirmacionRecepcionFicheroResponse(0),
    EnviarFichero(Fichero("F1_a.bz2", MD5)),
    EnviarFicheroResponse(0),
]
SEEDS: list[bytes] = [
    *(build_envelope(m.to_xml(), concentrador_id="0086") for m in SAMPLES),
    *(build_envelope(m.to_xml(), version=SOAP12) for m in SAMPLES[:4]),
    Fault(FaultCode.FICHERO, "not found", "F1_a.bz2").to_envelope(SOAP11),
    Fault(FaultCode.TOD, "TOD alone").to_envelope(SOAP12),
]
TOKENS = [
    b"<",
    b">",
    b"/>",
    b"</",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b'"',
    b"=",
    b":",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"<!DOCTYPE r>",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"<?pi x?>",
    b' xmlns:cp=""',
    b' xmlns="urn:x"',
    b' id=""',
    b' longitud="-1"',
    b"<cp:Fichero>",
    b"<cp:TipoFichero/>",
    b"<faultcode>",
    b"<soapenv:Fault>",
    b"<soapenv:Body>",
    b"99999999999999999999",
    b"TOD",
]

mutation = st.one_of(
    st.tuples(
        st.just("insert"), st.integers(0, 10**6), st.sampled_from(TOKENS) | st.binary(max_size=8)
    ),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 40)),
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("dup"), st.integers(0, 10**6), st.integers(1, 200)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
)


def _mutate(data: bytes, operations: list[tuple[str, int, object]]) -> bytes:
    buffer = bytearray(data)
    for kind, position, argument in operations:
        at = position % (len(buffer) + 1)
        if kind == "insert":
            assert isinstance(argument, bytes)
            buffer[at:at] = argument
        elif kind == "delete":
            assert isinstance(argument, int)
            del buffer[at : at + argument]
        elif kind == "flip" and buffer:
            assert isinstance(argument, int)
            buffer[at % len(buffer)] = argument
        elif kind == "dup":
            assert isinstance(argument, int)
            buffer[at:at] = buffer[at : at + argument]
        elif kind == "truncate":
            del buffer[at:]
    return bytes(buffer)


def _exercise(data: bytes, soap_action: str | None, has_attachment: bool) -> None:
    """Drive every reader over ``data``; let only ProtocolError through unseen."""
    try:
        envelope = parse_envelope(data, max_size=64 * 1024)
    except ProtocolError:
        return
    with contextlib.suppress(ProtocolError):
        identify_operation(envelope, soap_action, has_attachment)
    if envelope.fault is not None:
        for version in SoapVersion:
            with contextlib.suppress(ProtocolError):
                envelope.fault.to_element(version)
    for message_type in MESSAGE_TYPES:
        for source in (envelope.body, envelope.body_elements):
            try:
                message = message_type.from_xml(source)
                if isinstance(message, InformacionDisponible):
                    message.requested_types()
                # What we read must be writable again.
                build_envelope(message.to_xml())
            except ProtocolError:
                pass


actions = st.none() | st.sampled_from(['"urn:recogerFichero"', "enviarFichero", '""', "x/y"])


@given(
    seed=st.sampled_from(SEEDS),
    operations=st.lists(mutation, min_size=1, max_size=6),
    soap_action=actions,
    has_attachment=st.booleans(),
)
@example(seed=SEEDS[0], operations=[("truncate", 0, 0)], soap_action=None, has_attachment=False)
def test_mutated_envelopes_raise_only_protocol_errors(
    seed: bytes,
    operations: list[tuple[str, int, object]],
    soap_action: str | None,
    has_attachment: bool,
) -> None:
    _exercise(_mutate(seed, operations), soap_action, has_attachment)


VOCABULARY = [
    "peticionFechaHora",
    "fechaHora",
    "informacionDisponible",
    "listaTipos",
    "TipoFichero",
    "DatosFichero",
    "recogerFichero",
    "nombreFichero",
    "Fichero",
    "Nombre",
    "Checksum",
    "confirmacionRecepcionFichero",
    "codConfirmacion",
    "codigo",
    "enviarFichero",
    "Fault",
    "faultcode",
    "faultstring",
    "detail",
    "Code",
    "Value",
    "Subcode",
    "Reason",
    "Text",
    "id",
    "x",
]
NAMESPACES = [
    None,
    "http://simel.ree.es/cpcscc/2003/Mensajes",
    "http://schemas.xmlsoap.org/soap/envelope/",
    "http://www.w3.org/2003/05/soap-envelope",
    "urn:other",
]
xml_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), max_size=12
) | st.sampled_from(["0", "-1", "TOD", "CUR", "24/08/2005 12:45:13", "p:Client.X", "cp:"])
leaf = st.tuples(
    st.sampled_from(VOCABULARY),
    st.sampled_from(NAMESPACES),
    st.dictionaries(st.sampled_from(["id", "nombre", "longitud"]), xml_text, max_size=2),
    xml_text,
    st.just([]),
)
trees = st.recursive(
    leaf,
    lambda children: st.tuples(
        st.sampled_from(VOCABULARY),
        st.sampled_from(NAMESPACES),
        st.dictionaries(st.sampled_from(["id", "nombre", "longitud"]), xml_text, max_size=2),
        xml_text,
        st.lists(children, max_size=4),
    ),
    max_leaves=25,
)


def _build(tree: tuple) -> etree._Element:
    name, namespace, attributes, text, children = tree
    element = etree.Element(f"{{{namespace}}}{name}" if namespace else name)
    for key, value in attributes.items():
        element.set(key, value)
    element.text = text
    for child in children:
        element.append(_build(child))
    return element


@given(
    body=st.lists(trees, max_size=3),
    version=st.sampled_from(SoapVersion),
    soap_action=actions,
    has_attachment=st.booleans(),
)
def test_random_body_trees_raise_only_protocol_errors(
    body: list[tuple], version: SoapVersion, soap_action: str | None, has_attachment: bool
) -> None:
    envelope = etree.fromstring(build_envelope(None, version=version, concentrador_id="A"))
    body_element = envelope[-1]
    for tree in body:
        body_element.append(_build(tree))
    _exercise(etree.tostring(envelope), soap_action, has_attachment)


def test_seeds_are_valid_so_mutations_start_from_real_messages() -> None:
    for seed, message in zip(SEEDS, SAMPLES, strict=False):
        envelope = parse_envelope(seed)
        assert type(message).from_xml(envelope.body) == message
    assert parse_envelope(SEEDS[-2]).fault == Fault(FaultCode.FICHERO, "not found", "F1_a.bz2")
