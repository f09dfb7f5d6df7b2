"""The five operations' messages: exact reference shapes (§4) and liberal reading."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from concentrador.protocol.filetypes import REAL_TYPE_IDS
from concentrador.protocol.messages import (
    CP_NAMESPACE,
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    ConfirmationCode,
    DatosFichero,
    EnviarFichero,
    EnviarFicheroResponse,
    Fichero,
    InformacionDisponible,
    InformacionDisponibleResponse,
    MessageError,
    PeticionFechaHora,
    PeticionFechaHoraResponse,
    PushResult,
    RecogerFichero,
    RecogerFicheroResponse,
    TipoFichero,
    TodMixError,
    WireMessage,
    size_in_kb,
)
from concentrador.protocol.soap import parse_envelope

MD5 = "0123456789abcdef0123456789abcdef"
NAME = "F1_0086_20040612_20040617.9.bz2"


def _with_cp(shape: str) -> bytes:
    """The §4 reference string with the cp declaration on its root element."""
    head, sep, rest = shape.partition(">")
    if head.endswith("/"):
        head, sep = head[:-1], "/>"
    return f'{head} xmlns:cp="{CP_NAMESPACE}"{sep}{rest}'.encode()


# The reference shapes of CPCSCC.md §4, verbatim.
REFERENCE_SHAPES: list[tuple[WireMessage, str]] = [
    (PeticionFechaHora(), "<cp:peticionFechaHora/>"),
    (
        PeticionFechaHoraResponse(datetime(2005, 8, 24, 12, 45, 13)),
        "<cp:peticionFechaHoraResponse><cp:fechaHora>24/08/2005 12:45:13</cp:fechaHora>"
        "</cp:peticionFechaHoraResponse>",
    ),
    (
        InformacionDisponible(("CUR", "INC")),
        '<cp:informacionDisponible><cp:listaTipos><cp:TipoFichero id="CUR"/>'
        '<cp:TipoFichero id="INC"/></cp:listaTipos></cp:informacionDisponible>',
    ),
    (
        InformacionDisponibleResponse(
            (TipoFichero("CUR", (DatosFichero(NAME, 2048),)), TipoFichero("INC"))
        ),
        '<cp:informacionDisponibleResponse><cp:listaTipos><cp:TipoFichero id="CUR">'
        f'<cp:DatosFichero nombre="{NAME}" longitud="2048"/></cp:TipoFichero>'
        '<cp:TipoFichero id="INC"/></cp:listaTipos></cp:informacionDisponibleResponse>',
    ),
    (
        RecogerFichero("NAME"),
        "<cp:recogerFichero><cp:nombreFichero>NAME</cp:nombreFichero></cp:recogerFichero>",
    ),
    (
        RecogerFicheroResponse(Fichero("NAME", MD5)),
        "<cp:recogerFicheroResponse><cp:Fichero><cp:Nombre>NAME</cp:Nombre>"
        f"<cp:Checksum>{MD5}</cp:Checksum></cp:Fichero></cp:recogerFicheroResponse>",
    ),
    (
        ConfirmacionRecepcionFichero("NAME", 0),
        "<cp:confirmacionRecepcionFichero><cp:nombreFichero>NAME</cp:nombreFichero>"
        "<cp:codConfirmacion>0</cp:codConfirmacion></cp:confirmacionRecepcionFichero>",
    ),
    (
        ConfirmacionRecepcionFicheroResponse(0),
        "<cp:confirmacionRecepcionFicheroResponse><cp:codigo>0</cp:codigo>"
        "</cp:confirmacionRecepcionFicheroResponse>",
    ),
    (
        EnviarFichero(Fichero("NAME", MD5)),
        "<cp:enviarFichero><cp:Fichero><cp:Nombre>NAME</cp:Nombre>"
        f"<cp:Checksum>{MD5}</cp:Checksum></cp:Fichero></cp:enviarFichero>",
    ),
    (
        EnviarFicheroResponse(6),
        "<cp:enviarFicheroResponse><cp:codigo>6</cp:codigo></cp:enviarFicheroResponse>",
    ),
]


@pytest.mark.parametrize(
    ("message", "shape"), REFERENCE_SHAPES, ids=[type(m).__name__ for m, _ in REFERENCE_SHAPES]
)
def test_writes_exactly_the_reference_shape(message: WireMessage, shape: str) -> None:
    assert etree.tostring(message.to_xml()) == _with_cp(shape)


@pytest.mark.parametrize(
    ("message", "shape"), REFERENCE_SHAPES, ids=[type(m).__name__ for m, _ in REFERENCE_SHAPES]
)
def test_reads_the_reference_shape(message: WireMessage, shape: str) -> None:
    assert type(message).from_xml(etree.fromstring(_with_cp(shape))) == message


def _body(inner: str) -> etree._Element:
    """The Body of an envelope holding ``inner`` (xsi/xsd/cp/ns1 prefixes bound)."""
    data = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:cp="{CP_NAMESPACE}" xmlns:ns1="{CP_NAMESPACE}">'
        f"<soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"
    ).encode()
    return parse_envelope(data).body


def test_reads_axis_wrapped_style_with_default_namespace_and_xsi_types() -> None:
    body = _body(
        f'<recogerFichero xmlns="{CP_NAMESPACE}">\n'
        f'  <nombreFichero xsi:type="xsd:string">{NAME}</nombreFichero>\n'
        "</recogerFichero>"
    )
    assert RecogerFichero.from_xml(body) == RecogerFichero(NAME)


@pytest.mark.parametrize(
    "padded", [f"{NAME} ", f" {NAME}", f"\u00a0{NAME}", f"{NAME}\u3000", f"\n{NAME}\n"]
)
def test_a_name_is_read_exactly_as_sent_never_trimmed(padded: str) -> None:
    # xs:string: a padded name is another name (refused later by the name
    # rules), never an alias of NAME (issue 13, findings 5 and 6).
    body = _body(
        f'<recogerFichero xmlns="{CP_NAMESPACE}">'
        f"<nombreFichero>{padded}</nombreFichero></recogerFichero>"
    )
    assert RecogerFichero.from_xml(body).nombre_fichero == padded


@pytest.mark.parametrize("code", ["\u00a00", "0\u00a0", "\u30000", "\u0660", "1_0", "0x0", ""])
def test_a_code_follows_the_xs_integer_rule(code: str) -> None:
    body = _body(
        f'<confirmacionRecepcionFichero xmlns="{CP_NAMESPACE}">'
        f"<nombreFichero>{NAME}</nombreFichero>"
        f"<codConfirmacion>{code}</codConfirmacion></confirmacionRecepcionFichero>"
    )
    with pytest.raises(MessageError):
        ConfirmacionRecepcionFichero.from_xml(body)


@pytest.mark.parametrize("code", [" 0", "0\n", "\t+0\r\n"])
def test_a_code_may_carry_xml_white_space(code: str) -> None:
    body = _body(
        f'<confirmacionRecepcionFichero xmlns="{CP_NAMESPACE}">'
        f"<nombreFichero>{NAME}</nombreFichero>"
        f"<codConfirmacion>{code}</codConfirmacion></confirmacionRecepcionFichero>"
    )
    assert ConfirmacionRecepcionFichero.from_xml(body).cod_confirmacion == 0


def test_reads_bare_parameters_without_wrapper_or_namespace() -> None:
    body = _body("<nombreFichero>N</nombreFichero><codConfirmacion> 1 </codConfirmacion>")
    assert ConfirmacionRecepcionFichero.from_xml(body) == ConfirmacionRecepcionFichero("N", 1)
    # The list of Body children works as well as the Body itself.
    assert ConfirmacionRecepcionFichero.from_xml(list(body)) == ConfirmacionRecepcionFichero("N", 1)


def test_ignores_unknown_elements_and_tolerates_odd_case() -> None:
    body = _body(
        "<ns1:informacionDisponible><extra>x</extra><ns1:ListaTipos>"
        '<tipoFichero id=" CUR "><junk/></tipoFichero><Other id="PTE"/>'
        '<ns1:TipoFichero ns1:id="INC"/></ns1:ListaTipos></ns1:informacionDisponible>'
    )
    assert InformacionDisponible.from_xml(body).tipos == ("CUR", "INC")


def test_type_id_as_child_element_is_accepted() -> None:
    body = _body("<listaTipos><TipoFichero><id>CUR</id></TipoFichero></listaTipos>")
    assert InformacionDisponible.from_xml(body).tipos == ("CUR",)


def test_type_without_id_is_an_error() -> None:
    with pytest.raises(MessageError, match="TipoFichero has no id"):
        InformacionDisponible.from_xml(_body("<listaTipos><TipoFichero/></listaTipos>"))


def test_tod_mixed_with_cur_is_flagged() -> None:
    request = InformacionDisponible.from_xml(
        _body('<cp:listaTipos><cp:TipoFichero id="TOD"/><cp:TipoFichero id="CUR"/></cp:listaTipos>')
    )
    with pytest.raises(TodMixError, match="TOD must be requested alone") as info:
        request.validate()
    assert getattr(info.value, "fault_code", None) == "Client.TOD"
    with pytest.raises(TodMixError):
        request.requested_types()


def test_tod_alone_expands_to_the_twenty_real_types_in_order() -> None:
    assert InformacionDisponible(("TOD",)).requested_types() == REAL_TYPE_IDS
    assert InformacionDisponible(("TOD", "TOD")).requested_types() == REAL_TYPE_IDS
    assert len(REAL_TYPE_IDS) == 20 and "TOD" not in REAL_TYPE_IDS


def test_unknown_and_repeated_types_are_kept_once_in_order_and_empty_is_valid() -> None:
    assert InformacionDisponible(("XYZ", "CUR", "XYZ")).requested_types() == ("XYZ", "CUR")
    assert InformacionDisponible(()).requested_types() == ()


def test_too_many_distinct_types_are_refused() -> None:
    with pytest.raises(MessageError, match="at most"):
        InformacionDisponible(tuple(f"T{i}" for i in range(100))).validate()


@pytest.mark.parametrize(
    ("size", "kb"), [(0, 0), (1, 1), (1023, 1), (1024, 1), (1025, 2), (8 * 1024 * 1024, 8192)]
)
def test_size_in_kb_rounds_up(size: int, kb: int) -> None:
    assert size_in_kb(size) == kb
    assert DatosFichero.for_size("n", size) == DatosFichero("n", kb)


def test_negative_size_is_an_error() -> None:
    with pytest.raises(MessageError):
        size_in_kb(-1)


def test_listing_files_in_order() -> None:
    response = InformacionDisponibleResponse(
        [TipoFichero("CUR", [DatosFichero("a", 1), DatosFichero("b", 2)]), TipoFichero("INC")]
    )
    assert list(response.files()) == [("CUR", DatosFichero("a", 1)), ("CUR", DatosFichero("b", 2))]


@pytest.mark.parametrize(
    "datos",
    [
        '<DatosFichero longitud="1"/>',
        '<DatosFichero nombre="a"/>',
        '<DatosFichero nombre="a" longitud="-1"/>',
        '<DatosFichero nombre="a" longitud="1.5"/>',
        '<DatosFichero nombre="a" longitud="12345678901234567890"/>',
    ],
)
def test_bad_listing_entries_are_errors(datos: str) -> None:
    with pytest.raises(MessageError):
        InformacionDisponibleResponse.from_xml(
            _body(f'<listaTipos><TipoFichero id="CUR">{datos}</TipoFichero></listaTipos>')
        )


def test_checksum_upper_case_is_read_and_written_lower() -> None:
    body = _body(f"<Fichero><Nombre>N</Nombre><Checksum> {MD5.upper()} </Checksum></Fichero>")
    fichero = RecogerFicheroResponse.from_xml(body).fichero
    assert fichero == Fichero("N", MD5)
    assert fichero is not None and fichero.matches(MD5.upper()) and not fichero.matches("0" * 32)
    assert (
        etree.tostring(Fichero("N", MD5.upper()).to_xml(etree.Element("x"))).count(MD5.encode())
        == 1
    )


@pytest.mark.parametrize(
    "inner",
    [
        "<cp:recogerFicheroResponse/>",
        "<cp:recogerFicheroResponse><cp:Fichero/></cp:recogerFicheroResponse>",
        "<cp:recogerFicheroResponse><cp:Fichero><cp:Nombre/><cp:Checksum/></cp:Fichero>"
        "</cp:recogerFicheroResponse>",
        "<cp:recogerFicheroResponse><cp:Fichero><cp:Nombre>N</cp:Nombre><cp:Checksum> "
        "</cp:Checksum></cp:Fichero></cp:recogerFicheroResponse>",
        '<cp:recogerFicheroResponse><cp:Fichero><cp:Nombre xsi:nil="true"/>'
        f"<cp:Checksum>{MD5}</cp:Checksum></cp:Fichero></cp:recogerFicheroResponse>",
    ],
)
def test_empty_fichero_reads_as_not_found(inner: str) -> None:
    assert RecogerFicheroResponse.from_xml(_body(inner)).fichero is None


def test_not_found_response_round_trips() -> None:
    element = RecogerFicheroResponse(None).to_xml()
    assert RecogerFicheroResponse.from_xml(element) == RecogerFicheroResponse(None)


def test_enviar_without_fichero_is_an_error() -> None:
    with pytest.raises(MessageError, match="enviarFichero has no Fichero"):
        EnviarFichero.from_xml(_body("<cp:enviarFichero><cp:Fichero/></cp:enviarFichero>"))


def test_enviar_with_bare_fields_is_read() -> None:
    body = _body(f"<Nombre>N</Nombre><Checksum>{MD5}</Checksum>")
    assert EnviarFichero.from_xml(body) == EnviarFichero(Fichero("N", MD5))


@pytest.mark.parametrize("value", ["", "abc", "1e3", "0x10", "1 2", "999999999999999999999"])
@pytest.mark.parametrize(
    ("cls", "inner"),
    [
        (ConfirmacionRecepcionFicheroResponse, "<codigo>{}</codigo>"),
        (EnviarFicheroResponse, "<codigo>{}</codigo>"),
        (
            ConfirmacionRecepcionFichero,
            "<nombreFichero>N</nombreFichero><codConfirmacion>{}</codConfirmacion>",
        ),
    ],
)
def test_integer_garbage_is_a_clear_message_error(
    value: str, cls: type[WireMessage], inner: str
) -> None:
    with pytest.raises(MessageError, match="must be an integer"):
        cls.from_xml(_body(inner.format(value)))


@pytest.mark.parametrize(
    ("cls", "inner", "missing"),
    [
        (RecogerFichero, "<recogerFichero/>", "nombreFichero"),
        (RecogerFichero, "<nombreFichero> </nombreFichero>", "nombreFichero"),
        (ConfirmacionRecepcionFichero, "<nombreFichero>N</nombreFichero>", "codConfirmacion"),
        (ConfirmacionRecepcionFichero, "<codConfirmacion>0</codConfirmacion>", "nombreFichero"),
        (ConfirmacionRecepcionFicheroResponse, "<x/>", "codigo"),
        (EnviarFicheroResponse, "", "codigo"),
        (PeticionFechaHoraResponse, "<peticionFechaHoraResponse/>", "fechaHora"),
    ],
)
def test_missing_fields_are_named(cls: type[WireMessage], inner: str, missing: str) -> None:
    with pytest.raises(MessageError, match=missing):
        cls.from_xml(_body(inner))


def test_codes_and_results() -> None:
    assert ConfirmacionRecepcionFicheroResponse(0).confirmed
    assert not ConfirmacionRecepcionFicheroResponse(7).confirmed
    assert EnviarFicheroResponse(6).result() is PushResult.OUTSIDE_LOAD_WINDOW
    assert EnviarFicheroResponse(6).result().delivered
    assert EnviarFicheroResponse(42).result() is None
    assert PushResult.CHECKSUM_MISMATCH.retryable and not PushResult.TOO_LARGE.retryable
    assert (
        ConfirmacionRecepcionFichero("N", ConfirmationCode.CHECKSUM_FAILED).to_xml()[1].text == "1"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24/08/2005 12:45:13", datetime(2005, 8, 24, 12, 45, 13)),
        ("  1/2/2005 3:04:05 ", datetime(2005, 2, 1, 3, 4, 5)),
        ("2005-08-24T12:45:13", datetime(2005, 8, 24, 12, 45, 13)),
        ("2005-08-24T12:45:13.5+02:00", datetime(2005, 8, 24, 12, 45, 13, 500000)),
    ],
)
def test_fecha_hora_reading(text: str, expected: datetime) -> None:
    body = _body(f"<fechaHora>{text}</fechaHora>")
    assert PeticionFechaHoraResponse.from_xml(body).fecha_hora == expected


@pytest.mark.parametrize("text", ["", "yesterday", "32/01/2005 00:00:00", "24/08/2005 25:00:00"])
def test_fecha_hora_garbage_is_an_error(text: str) -> None:
    with pytest.raises(MessageError, match="fechaHora"):
        PeticionFechaHoraResponse.from_xml(_body(f"<fechaHora>{text}</fechaHora>"))


def test_fecha_hora_writes_the_wall_time_of_an_aware_datetime() -> None:
    moment = datetime(2024, 3, 31, 3, 5, 9, tzinfo=ZoneInfo("Europe/Madrid"))
    assert PeticionFechaHoraResponse(moment).to_xml()[0].text == "31/03/2024 03:05:09"
    assert PeticionFechaHoraResponse(datetime(5, 1, 2)).to_xml()[0].text == "02/01/0005 00:00:00"


def test_values_xml_cannot_carry_are_refused_on_writing() -> None:
    with pytest.raises(MessageError):
        RecogerFichero("bad\x00name").to_xml()
    with pytest.raises(MessageError):
        InformacionDisponible(("CU\x01R",)).to_xml()


def test_non_element_source_is_an_error() -> None:
    with pytest.raises(MessageError):
        RecogerFichero.from_xml(["<nombreFichero>x</nombreFichero>"])  # type: ignore[list-item]
