"""Dispatch: the CPCSCC.md §1 rules, in order (wrapper, SOAPAction, parameters)."""

from __future__ import annotations

import pytest

from concentrador.protocol.dispatch import (
    Operation,
    UnknownOperationError,
    identify_operation,
    operation_from_soap_action,
    read_request,
)
from concentrador.protocol.messages import (
    CP_NAMESPACE,
    ConfirmacionRecepcionFichero,
    EnviarFichero,
    Fichero,
    InformacionDisponible,
    PeticionFechaHora,
    RecogerFichero,
)
from concentrador.protocol.soap import Envelope, parse_envelope

MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def _envelope(body: str) -> Envelope:
    return parse_envelope(
        (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns:cp="{CP_NAMESPACE}"><s:Body>{body}</s:Body></s:Envelope>'
        ).encode()
    )


@pytest.mark.parametrize("operation", list(Operation))
@pytest.mark.parametrize("style", ["prefixed", "default-ns", "no-ns", "lower-case"])
def test_rule1_wrapper_name_wins_over_soap_action(operation: Operation, style: str) -> None:
    name = operation.value.lower() if style == "lower-case" else operation.value
    wrapper = {
        "prefixed": f"<cp:{name}/>",
        "default-ns": f'<{name} xmlns="{CP_NAMESPACE}"/>',
        "no-ns": f"<{name}/>",
        "lower-case": f"<cp:{name}/>",
    }[style]
    # A contradicting SOAPAction must not matter: the Body comes first.
    assert identify_operation(_envelope(wrapper), '"urn:recogerFichero"', False) is operation


@pytest.mark.parametrize(
    "action",
    [
        "informacionDisponible",
        '"informacionDisponible"',
        "urn:informacionDisponible",
        '"urn:informacionDisponible"',
        "http://simel.ree.es/cpcscc/2003/Mensajes/informacionDisponible",
        '"http://simel.ree.es/cpcscc/informacionDisponible"',
        " 'urn:INFORMACIONDISPONIBLE' ",
    ],
)
def test_rule2_soap_action_spellings(action: str) -> None:
    assert operation_from_soap_action(action) is Operation.INFORMACION_DISPONIBLE
    # A body the parameter rule would give to recogerFichero: the action wins.
    envelope = _envelope("<nombreFichero>X</nombreFichero>")
    assert identify_operation(envelope, action, False) is Operation.INFORMACION_DISPONIBLE


@pytest.mark.parametrize("action", [None, "", '""', "urn:", "urn:somethingElse", "/"])
def test_soap_action_naming_nothing(action: str | None) -> None:
    assert operation_from_soap_action(action) is None


def test_unknown_wrapper_falls_through_to_soap_action() -> None:
    envelope = _envelope(
        "<cp:somethingElse><cp:nombreFichero>X</cp:nombreFichero></cp:somethingElse>"
    )
    assert (
        identify_operation(envelope, "urn:peticionFechaHora", False)
        is Operation.PETICION_FECHA_HORA
    )


@pytest.mark.parametrize(
    ("body", "has_attachment", "expected"),
    [
        ("", False, Operation.PETICION_FECHA_HORA),
        ("  <!-- nothing -->  ", False, Operation.PETICION_FECHA_HORA),
        (
            '<listaTipos><TipoFichero id="CUR"/></listaTipos>',
            False,
            Operation.INFORMACION_DISPONIBLE,
        ),
        (
            "<nombreFichero>N</nombreFichero><codConfirmacion>0</codConfirmacion>",
            False,
            Operation.CONFIRMACION_RECEPCION_FICHERO,
        ),
        ("<nombreFichero>N</nombreFichero>", False, Operation.RECOGER_FICHERO),
        ("<nombreFichero>N</nombreFichero>", True, Operation.RECOGER_FICHERO),
        (
            f"<Fichero><Nombre>N</Nombre><Checksum>{MD5}</Checksum></Fichero>",
            True,
            Operation.ENVIAR_FICHERO,
        ),
        # Parameters inside an unrecognised wrapper are still seen.
        (
            "<cp:request><cp:nombreFichero>N</cp:nombreFichero>"
            "<cp:codConfirmacion>0</cp:codConfirmacion></cp:request>",
            False,
            Operation.CONFIRMACION_RECEPCION_FICHERO,
        ),
    ],
)
def test_rule3_parameters(body: str, has_attachment: bool, expected: Operation) -> None:
    assert identify_operation(_envelope(body), None, has_attachment) is expected


def test_fichero_without_attachment_is_explained() -> None:
    envelope = _envelope(f"<Fichero><Nombre>N</Nombre><Checksum>{MD5}</Checksum></Fichero>")
    with pytest.raises(UnknownOperationError, match="no attachment"):
        identify_operation(envelope, None, False)


def test_unidentifiable_request_is_refused() -> None:
    with pytest.raises(UnknownOperationError, match="cannot tell the operation") as info:
        identify_operation(_envelope("<cp:hello/>"), '"urn:hello"', False)
    assert info.value.fault_from_body


def test_a_fault_is_not_a_request() -> None:
    envelope = _envelope("<s:Fault><faultcode>s:Server</faultcode></s:Fault>")
    with pytest.raises(UnknownOperationError, match="Fault"):
        identify_operation(envelope, "urn:recogerFichero", False)


@pytest.mark.parametrize(
    ("body", "attachment", "expected"),
    [
        ("", False, PeticionFechaHora()),
        (
            '<listaTipos><TipoFichero id="TOD"/></listaTipos>',
            False,
            InformacionDisponible(("TOD",)),
        ),
        ("<nombreFichero>N</nombreFichero>", False, RecogerFichero("N")),
        (
            "<nombreFichero>N</nombreFichero><codConfirmacion>2</codConfirmacion>",
            False,
            ConfirmacionRecepcionFichero("N", 2),
        ),
        (
            f"<Fichero><Nombre>N</Nombre><Checksum>{MD5}</Checksum></Fichero>",
            True,
            EnviarFichero(Fichero("N", MD5)),
        ),
    ],
)
def test_read_request_from_bare_parameters(body: str, attachment: bool, expected: object) -> None:
    operation, request = read_request(_envelope(body), None, attachment)
    assert request == expected
    assert operation.request_type is type(expected)


def test_operation_metadata() -> None:
    assert Operation.ENVIAR_FICHERO.soap_action == '"urn:enviarFichero"'
    assert Operation.ENVIAR_FICHERO.request_has_attachment
    assert Operation.RECOGER_FICHERO.response_has_attachment
    assert not Operation.RECOGER_FICHERO.request_has_attachment
    assert {op.value for op in Operation} == {
        "peticionFechaHora",
        "informacionDisponible",
        "recogerFichero",
        "confirmacionRecepcionFichero",
        "enviarFichero",
    }
